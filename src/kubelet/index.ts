// The kubelet room owns the pod lifecycle on this node: pod sources (manifest folder; the API server in
// cluster mode), the pure pod-action planner and its thin executor, per-UID pod workers, the PLEG relist,
// pod status computation, events, images, volumes, and the kubelet's local HTTP endpoints.
export { Kubelet, type KubeletOptions, type PodRecord, type StatusListener } from './kubelet.ts';
export { ManifestSource, readManifestDir, parseManifest, FILE_SOURCE, type ManifestError, type SourceSnapshot } from './manifest-source.ts';
export {
  KubeletServer,
  KubeletApiServer,
  startKubeletApi,
  computeApiServingPlan,
  type HealthCheck,
  type HttpRoute,
  type StreamRequest,
  type StreamServer,
  type MachineFacts,
} from './server/index.ts';
export { createStreamServer, type StreamServerOptions } from './streaming/index.ts';
export { openContainerLog, podFromRuntime, computePodLogOptions, type PodLogOptions, type PodLookup } from './logs/index.ts';
export { MemoryRecorder, type EventRecorder, type EventSink, type RecordedEvent, type ObjectRef } from './events.ts';
export type { NodeFacts } from './container-config.ts';
export type { ConfigDataSource } from './env.ts';
export type { TokenSource } from './volumes/index.ts';
export { TokenManager, ServiceAccountTokenError, type TokenFailure } from './token-manager.ts';
export { DEFAULT_CRASH_BACKOFF, type BackoffPolicy } from './backoff.ts';
export { computePodActions, containerHash } from './pod-actions.ts';
export { computePodStatus, getQOSClass } from './pod-status.ts';
export { applyPodDefaults, validatePod, formatFieldErrors } from './pod-spec.ts';
export { cpuMillis, bytes, parseQuantity } from './quantity.ts';
export { ClusterPodSource, API_SOURCE } from './cluster/pod-source.ts';
export { StatusManager } from './cluster/status-manager.ts';
export { ApiEventSink } from './cluster/event-sink.ts';
export { ApiConfigData } from './cluster/config-data.ts';
export { serviceEnv, servicesForPod } from './cluster/service-env.ts';
export { admitPod, allocatableOf, type AdmitResult, type NodeResources } from './admission.ts';
export { admitAppArmor, admitSysctls, buildSecurityAdmission, buildSysctlAllowlist, fsGroupOf } from './security-context.ts';
export { isMirrorPod } from './cluster/mirror-pods.ts';
export * from './node/index.ts';
export * from './eviction/index.ts';
export * from './gc/index.ts';
