// The kubelet room owns the pod lifecycle on this node. kubelet.ts composes it: per-UID pod workers over the
// rooms below, each named by its job.
//   pod/       pure decisions about one pod: validation, admission, the action planner, status, crash-loop back-off
//   runtime/   what is done to the container runtime: PLEG relist, the sync executor, container config, images
//   prober/    liveness/readiness/startup probes and the exec/http/tcp/grpc handlers hooks share with them
//   sources/   where pods and their data come from: manifest folder, API server, ConfigMaps/Secrets, tokens
//   status/    what is reported: events and the pod status sent to the API server
//   volumes/ logs/ node/ eviction/ gc/ server/ streaming/   as their own index.ts says
export { Kubelet, type KubeletOptions, type PodRecord, type SourceRejection, type StatusListener } from './kubelet.ts';
export * from './pod/index.ts';
export * from './runtime/index.ts';
export * from './prober/index.ts';
export * from './sources/index.ts';
export * from './status/index.ts';
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
export type { TokenSource } from './volumes/index.ts';
export * from './node/index.ts';
export * from './eviction/index.ts';
export * from './gc/index.ts';
