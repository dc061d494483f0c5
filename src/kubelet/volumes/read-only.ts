import type { Volume } from 'kubernetes-types/core/v1';

/** Volume types whose mounts are always read-only (the plugins' GetAttributes().ReadOnly upstream, CVE-2017-1002102). */
export const isForcedReadOnly = (v: Volume | undefined): boolean => !!(v && (v.secret || v.configMap || v.downwardAPI || v.projected));
