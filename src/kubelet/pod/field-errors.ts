// A validation problem as upstream's field.Error prints it (k8s.io/apimachinery/pkg/util/validation/field), shared by
// pod validation (pod-spec.ts) and the security-context checks it calls.

export interface FieldError {
  /** Field path as upstream prints it: spec.containers[0].image */
  field: string;
  /** Upstream-style detail: `Required value`, `Duplicate value: "x"`, `Invalid value: ...: ...` */
  detail: string;
}

export const formatFieldErrors = (errs: FieldError[]): string => errs.map((e) => `${e.field}: ${e.detail}`).join(', ');
