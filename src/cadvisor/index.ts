// The cadvisor room owns node and container statistics read from the kernel itself: cgroup v1/v2 files,
// /proc and statfs, sampled on a jittered housekeeping tick (--housekeeping-interval, default 10 s) with a short
// ring buffer per container for rates, and never a child process or a `docker stats` per sample. It exports a
// StatsProvider (latest snapshot + onHousekeeping hook) consumed by the Summary API (/stats/summary), the
// Prometheus endpoints (/metrics/cadvisor, /metrics/resource, /metrics/probes, /metrics), `berth stats`, and the
// eviction manager / garbage collector. It may import only cri types and lib.
//
// Quick guide for consumers:
//   const snap = provider.latest();                 // StatsSnapshot | undefined
//   snap.node.memory?.workingSetBytes, snap.node.fs?.availableBytes, snap.node.imageFs?.inodesFree,
//   snap.node.rlimit?.curProc / maxPid, snap.pods[i].memory?.workingSetBytes, snap.pods[i].cpu?.usageNanoCores,
//   snap.pods[i].containers[j].memory / cpu / rootfs / logs, snap.pods[i].volumes, snap.pods[i].ephemeralStorage
//   provider.onHousekeeping((snap) => …)            // after every pass; returns unsubscribe
//   memory.available = provider.machine().memoryCapacityBytes − snap.node.memory.workingSetBytes (upstream's signal)
export type * from './types.ts';
export type { StatsProvider } from './provider.ts';
export { Housekeeping, type HousekeepingOptions, type StatsRuntime } from './housekeeping.ts';
export { buildSummary, type SummaryOptions } from './summary.ts';
export { createCadvisorRegistry, createResourceRegistry, createProbeMetrics, createBerthMetrics, type BerthMetrics, type ProbeRunLike } from './prometheus.ts';
export { createStatsRoutes, findRoute, routesHandler, type HttpRoute, type StatsRoutesOptions } from './http.ts';
export { controllerDir, parseMountInfo, type CgroupLayout } from './cgroups.ts';
