// The eviction manager (pkg/kubelet/eviction): thresholds on the node's signals (memory.available,
// nodefs/imagefs available and inodesFree, pid.available) with hard and soft (grace period) variants and minimum
// reclaim, the MemoryPressure/DiskPressure/PIDPressure conditions with their transition period, admission under
// pressure, and when a threshold is met: node-level reclaim first (container and image GC), then one pod evicted
// per interval, ranked as upstream. Pure decisions in plan.ts/rank.ts, the loop in manager.ts.
export {
  SIGNALS,
  DEFAULT_EVICTION_HARD_MAP,
  EvictionConfigError,
  parseThresholdConfig,
  parseThresholdStatement,
  parseLangleMap,
  thresholdQuantity,
  describeThreshold,
  allocatableReservation,
  type Signal,
  type Threshold,
  type ThresholdValue,
  type NodeConditionType,
  type EvictionConfigInput,
} from './thresholds.ts';
export { makeSignalObservations, type EvictionStats, type PodUsage, type ContainerUsage, type Observations } from './signals.ts';
export { isCriticalPod, rankForSignal, evictionMessage, type ActivePod } from './rank.ts';
export { computeEvictionPlan, admitUnderPressure, thresholdsMet, INITIAL_EVICTION_STATE, type EvictionPlan, type EvictionState } from './plan.ts';
export { EvictionManager, EVICTION_MONITORING_PERIOD_MS, type EvictionManagerOptions } from './manager.ts';
export { evictionStatsFromSnapshot, evictionStatsFromNodeStats } from './stats-adapter.ts';
