// The node's presence in the cluster: registering (or adopting) the Node object, computing and posting its status
// (addresses, capacity/allocatable, nodeInfo, images, pressure and Ready conditions) and renewing its Lease in
// kube-node-lease. The computation is pure (node-status.ts, buildLease); NodeManager and NodeLeaseController do the
// API calls; machine.ts reads the host. The Kubelet wires its runtime and PLEG health in through NodeManagerOptions.
export {
  NodeManager,
  type NodeManagerOptions,
  type NodeApi,
  type NodeRuntime,
  type PlegHealth,
} from './node-manager.ts';
export {
  NodeLeaseController,
  type NodeLeaseControllerOptions,
  type LeaseApi,
  type LeaseIdentity,
  buildLease,
  formatMicroTime,
  NODE_LEASE_NAMESPACE,
  DEFAULT_LEASE_DURATION_SECONDS,
} from './lease.ts';
export { hostMachineReader, type MachineReader, type HostMachineReaderOptions } from './machine.ts';
export {
  computeNodeStatus,
  computeResources,
  computeNodeImages,
  computeThresholdsCrossed,
  computePressure,
  computeReadinessErrors,
  computeRuntimeNotReady,
  formatAggregate,
  computePlegHealth,
  computeAdoptionPatch,
  buildInitialNode,
  buildNodeStatusPatch,
  isNodeStatusChanged,
  formatBinaryQuantity,
  formatCpuQuantity,
  formatGoDuration,
  formatTime,
  KUBELET_VERSION,
  KUBERNETES_API_VERSION,
  DEFAULT_EVICTION_HARD,
  KUBELET_CONDITION_TYPES,
  type MachineInfo,
  type NodeStats,
  type FsStats,
  type EvictionThresholds,
  type Reservations,
  type NodePressure,
  type NodeStatusInput,
  type PressureObservations,
} from './node-status.ts';
