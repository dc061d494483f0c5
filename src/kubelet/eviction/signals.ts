// Signal observations from stats (pkg/kubelet/eviction/helpers.go makeSignalObservations): what each eviction
// signal measures now, as available/capacity, plus per-pod usage for ranking. The eviction manager owns this
// small input shape so it can be fed by the cadvisor room's StatsProvider (see stats-adapter.ts) or, without
// it, by the node's machine reader (node-level signals only).

import type { Signal } from './thresholds.ts';

/** Usage of one container, as the Summary API's ContainerStats (undefined = not measured). */
export interface ContainerUsage {
  name: string;
  memoryWorkingSetBytes?: number | undefined;
  rootfsBytes?: number | undefined;
  rootfsInodes?: number | undefined;
  logsBytes?: number | undefined;
  logsInodes?: number | undefined;
}

/** Usage of one pod (Summary API PodStats, trimmed to what ranking needs). */
export interface PodUsage {
  uid: string;
  memoryWorkingSetBytes?: number | undefined;
  processCount?: number | undefined;
  containers: ContainerUsage[];
  /** Local volumes (emptyDir, configMap, secret, downwardAPI, hostPath), by volume name. */
  volumes: { name: string; usedBytes?: number | undefined; inodesUsed?: number | undefined }[];
}

export interface FsUsage {
  availableBytes?: number | undefined;
  capacityBytes?: number | undefined;
  inodesFree?: number | undefined;
  inodes?: number | undefined;
}

/**
 * The stats the eviction manager reads each synchronize: node memory (available = capacity − working set, as
 * cAdvisor), nodefs (the root dir's filesystem), imagefs (Docker's data root), pids, and per-pod usage. A missing
 * figure is unknown: its signal is not observed and never crosses a threshold.
 */
export interface EvictionStats {
  timeMs: number;
  memory?: { availableBytes: number; capacityBytes: number } | undefined;
  nodeFs?: FsUsage | undefined;
  imageFs?: FsUsage | undefined;
  pids?: { max: number; running: number } | undefined;
  /** Per-pod usage; pods absent here have "no stats" (upstream ranks them first). */
  pods: PodUsage[];
}

export interface Observation {
  available: number;
  capacity: number;
  timeMs: number;
}

export type Observations = Partial<Record<Signal, Observation>>;

/** makeSignalObservations. */
export function makeSignalObservations(s: EvictionStats): Observations {
  const out: Observations = {};
  const t = s.timeMs;
  if (s.memory) out['memory.available'] = { available: s.memory.availableBytes, capacity: s.memory.capacityBytes, timeMs: t };
  const fs = (avail: Signal, inodes: Signal, f: FsUsage | undefined): void => {
    if (!f) return;
    if (f.availableBytes !== undefined && f.capacityBytes !== undefined) out[avail] = { available: f.availableBytes, capacity: f.capacityBytes, timeMs: t };
    if (f.inodesFree !== undefined && f.inodes !== undefined) out[inodes] = { available: f.inodesFree, capacity: f.inodes, timeMs: t };
  };
  fs('nodefs.available', 'nodefs.inodesFree', s.nodeFs);
  fs('imagefs.available', 'imagefs.inodesFree', s.imageFs);
  if (s.pids) out['pid.available'] = { available: s.pids.max - s.pids.running, capacity: s.pids.max, timeMs: t };
  return out;
}
