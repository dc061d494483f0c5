// The pod room owns the pure decisions about one pod, with no I/O: defaulting and validation (pod-spec,
// field-errors), admission on this node (admission, security-context), the pod-action planner (pod-actions) and
// its crash-loop back-off, the status the kubelet reports (pod-status), the active deadline, resource
// quantities, and the readers over the observed state (what the runtime holds for a pod) they all work on.
export { computePodActions, containerHash } from './pod-actions.ts';
export { computePodStatus, getQOSClass } from './pod-status.ts';
export { applyPodDefaults, validatePod, formatFieldErrors, type FieldError } from './pod-spec.ts';
export { cpuMillis, bytes, parseQuantity } from './quantity.ts';
export { admitPod, allocatableOf, type AdmitResult, type NodeResources } from './admission.ts';
export { admitAppArmor, admitSysctls, buildSecurityAdmission, buildSysctlAllowlist, fsGroupOf } from './security-context.ts';
export { DEFAULT_CRASH_BACKOFF, type BackoffPolicy } from './crash-loop-backoff.ts';
