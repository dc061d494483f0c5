// The proxy room owns kube-proxy's job in iptables mode for this node: change trackers fed by Service /
// EndpointSlice (v1, v1beta1) / Endpoints / Node informers, a pure rule builder that writes kube-proxy's chains
// (KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-*, …) in iptables-save's canonical text, sync planning (full = reconcile
// against iptables-save, partial = only the changed Services' chains), the iptables-restore executor (legacy or
// nft, optionally inside a network namespace), the canary check, stale-chain and UDP conntrack cleanup,
// healthCheckNodePort listeners, and the CLI-facing pieces (`runCleanup`, `describeServiceRules`). The nftables
// mode (src/proxy/nftables/) shares the informer side and sync loop (frontend.ts), conntrack and health check pieces.
// It imports only lib; the composition root wires informers and the real executor.

export type {
  ServicePortInfo,
  EndpointInfo,
  NodeInfo,
  Protocol,
  EndpointSliceV1beta1,
  ServiceEndpoints,
} from './types.ts';
export { ServiceProxy } from './proxier.ts';
export type { ServiceProxyOptions, SyncReport } from './proxier.ts';
export type { ProxyEventHandler, ProxyNodeOptions } from './frontend.ts';
export { ChangeSet, ServiceChangeTracker, EndpointsChangeTracker } from './change-tracker.ts';
export type { PendingChanges } from './change-tracker.ts';
export { DEFAULT_PROXY_CONFIG, resolveProxyConfig, validateProxyConfig } from './config.ts';
export type { ProxyConfig, ProxyMode } from './config.ts';
export {
  createIptablesExecutor,
  CommandIptablesExecutor,
  IptablesRestoreError,
  chooseBackend,
  resolveBinaries,
  supportsRandomFully,
} from './executor.ts';
export type { IptablesExecutor, IptablesBackend, BackendChoice, CreateExecutorOptions } from './executor.ts';
export { createSysctl } from './sysctl.ts';
export type { Sysctl } from './sysctl.ts';
export { createConntrack, computeConntrackCleanup } from './conntrack.ts';
export type { Conntrack, ConntrackDeletion } from './conntrack.ts';
export { createServiceHealthServer } from './healthcheck.ts';
export type { ServiceHealthServer, HealthServerOptions } from './healthcheck.ts';
export { runCleanup, cleanupWith, cleanupNftables, computeCleanupPlan } from './cleanup.ts';
export type { CleanupResult, RunCleanupOptions, CleanupPlan } from './cleanup.ts';
export { describeServiceRules, findServiceRules, runRules } from './describe.ts';
export type { ServiceRules } from './describe.ts';
export type { ProxyMetricsSnapshot, HistogramSnapshot } from './metrics.ts';
export { buildServicePortRules, buildGlobalRules } from './rules.ts';
export type { ServicePortRules, GlobalRules, BuildContext, RuleOptions } from './rules.ts';
export { computeFullSyncPlan, computePartialSyncPlan } from './plan.ts';
export type { SyncPlan, PlanStats } from './plan.ts';
export { parseIptablesSave } from './iptables-save.ts';
export { disabledProxy } from './disabled.ts';
// nftables mode (`--proxy-mode nftables`): berth's own `ip kube-proxy` table, upstream's nftables layout.
export { NftablesProxy } from './nftables/proxier.ts';
export type { NftProxyOptions, NftSyncReport } from './nftables/proxier.ts';
export { CommandNftExecutor, NftError, deleteTable as deleteNftTable, nftInstalled } from './nftables/executor.ts';
export type { NftExecutor } from './nftables/executor.ts';
export { describeNftServiceRules, findNftServiceRules, runNftRules } from './nftables/describe.ts';
export { buildNftServicePort, buildSetup as buildNftSetup } from './nftables/ruleset.ts';
export { NftState, planFull as planNftFull, planPartial as planNftPartial } from './nftables/plan.ts';
export { parseNftTable } from './nftables/listing.ts';
