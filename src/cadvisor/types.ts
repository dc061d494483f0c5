// The shapes the stats provider hands out. Every figure is read from the kernel (cgroup files, /proc, statfs)
// on a housekeeping tick; a snapshot is immutable once published. Sizes are bytes, times are ms since the epoch
// (`…Ms`) or the kernel's own nanoseconds (`…NanoSeconds`). `undefined` means "not measured" (no such file, no
// such cgroup, or not yet sampled), never zero. The names follow the Summary API's fields (stats.k8s.io/v1alpha1)
// so summary.ts is a thin mapping.

export interface CpuSample {
  timeMs: number;
  /** Cumulative CPU time of the cgroup (cpuacct.usage / cpu.stat usage_usec), ns. */
  usageCoreNanoSeconds: number;
  userNanoSeconds: number;
  systemNanoSeconds: number;
  /** Rate over the last two samples of the ring buffer, in nano-cores (1e9 = one core). */
  usageNanoCores?: number;
  throttling?: { periods: number; throttledPeriods: number; throttledTimeNanoSeconds: number };
}

export interface MemorySample {
  timeMs: number;
  usageBytes: number;
  /** usage − inactive_file, floored at 0 (cAdvisor's working set; what eviction and `kubectl top` use). */
  workingSetBytes: number;
  rssBytes: number;
  cacheBytes: number;
  swapBytes?: number;
  mappedFileBytes?: number;
  pageFaults: number;
  majorPageFaults: number;
  /** The cgroup's limit; undefined when unlimited. */
  limitBytes?: number;
  /** limit − working set when there is a limit (node: capacity − working set). */
  availableBytes?: number;
  maxUsageBytes?: number;
  failcnt?: number;
  /** OOM kills inside the cgroup (memory.oom_control oom_kill / memory.events oom_kill). */
  oomKills?: number;
}

export interface BlkioSample {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface PidsSample {
  current: number;
  /** undefined = "max". */
  limit?: number;
}

export interface InterfaceSample {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

export interface NetworkSample {
  timeMs: number;
  /** The interface the Summary's top-level fields describe (eth0 in a pod; the default-route one on the node). */
  defaultInterface?: string;
  interfaces: InterfaceSample[];
}

export interface FsSample {
  timeMs: number;
  capacityBytes?: number;
  availableBytes?: number;
  usedBytes?: number;
  inodes?: number;
  inodesFree?: number;
  inodesUsed?: number;
}

/** What one cgroup tells (any controller may be missing). */
export interface CgroupSample {
  cpu?: CpuSample;
  memory?: MemorySample;
  pids?: PidsSample;
  blkio?: BlkioSample;
}

export interface PodRef {
  name: string;
  namespace: string;
  uid: string;
}

export interface ContainerSample extends CgroupSample {
  /** Docker container ID. */
  id: string;
  /** Kubernetes container name (`POD` for the sandbox). */
  name: string;
  /** Docker's container name (cAdvisor's `name` label), e.g. k8s_app_web_default_<uid>_0. */
  dockerName: string;
  pod: PodRef;
  image: string;
  startTimeMs: number;
  /** The cgroup path relative to the hierarchy root, e.g. /kubepods/burstable/pod<uid>/<id>. */
  cgroupPath: string;
  /** Writable layer (refreshed on a slower period than the tick; see housekeeping.ts). */
  rootfs?: FsSample;
  logs?: FsSample;
}

export interface VolumeSample extends FsSample {
  name: string;
}

export interface PodSample extends CgroupSample {
  pod: PodRef;
  startTimeMs: number;
  /** The pod cgroup (/kubepods/<qos>/pod<uid>); undefined until found. */
  cgroupPath?: string;
  network?: NetworkSample;
  /** App and init containers that are running; the sandbox is not listed (as the Summary API). */
  containers: ContainerSample[];
  sandbox?: ContainerSample;
  volumes: VolumeSample[];
  /** Sum of the containers' rootfs + logs + the pod's emptyDir-like volumes (upstream's ephemeral-storage). */
  ephemeralStorage?: FsSample;
}

export interface SystemContainerSample extends CgroupSample {
  name: 'kubelet' | 'runtime' | 'pods';
  startTimeMs: number;
  cgroupPath: string;
}

export interface NodeSample extends CgroupSample {
  startTimeMs: number;
  network?: NetworkSample;
  /** nodefs: the filesystem holding berth's root dir. */
  fs?: FsSample;
  /** imagefs: the filesystem holding Docker's data root (usedBytes = sum of image sizes when known). */
  imageFs?: FsSample;
  rlimit?: { timeMs: number; maxPid: number; curProc: number };
  load?: { load1: number; load5: number; load15: number };
  systemContainers: SystemContainerSample[];
}

export interface MachineInfo {
  numCores: number;
  cpuModel: string;
  cpuMHz?: number;
  memoryCapacityBytes: number;
  machineId: string;
  systemUuid: string;
  bootId: string;
  kernelVersion: string;
  osImage: string;
  cgroupVersion: 1 | 2;
  cgroupDriver: 'cgroupfs' | 'systemd';
}

export interface StatsSnapshot {
  timeMs: number;
  /** CPU time this housekeeping pass cost berth (process.cpuUsage delta), µs. */
  passCpuMicros: number;
  node: NodeSample;
  pods: PodSample[];
}
