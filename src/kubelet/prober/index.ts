// The prober room owns liveness, readiness and startup probes (one worker per container and probe type,
// thresholds, results) and the handlers probes and lifecycle hooks share: one exec, httpGet, tcpSocket or grpc
// action against a container (upstream's pkg/kubelet/lifecycle/handlers.go and pkg/probe).
export { ProbeManager, type ProbeManagerOptions, type ProbeRun, type ProbeType } from './prober.ts';
export { runHandler, type ProbeOutcome } from './handlers.ts';
