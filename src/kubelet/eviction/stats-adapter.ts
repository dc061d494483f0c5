// Feeds the eviction manager's EvictionStats from what the node can measure: the cadvisor room's snapshot
// (node working set, filesystems, pids and per-pod usage), or, when no stats provider runs, the node's machine
// reader (node-level signals only: every pod then has "no stats" and ranking falls back to priority).
import type { StatsSnapshot } from '../../cadvisor/index.ts';
import type { NodeStats } from '../node/index.ts';
import type { EvictionStats, FsUsage } from './signals.ts';

const fsOf = (f: { availableBytes?: number; capacityBytes?: number; inodesFree?: number; inodes?: number } | undefined): FsUsage | undefined =>
  f ? { availableBytes: f.availableBytes, capacityBytes: f.capacityBytes, inodesFree: f.inodesFree, inodes: f.inodes } : undefined;

/** A cadvisor snapshot → eviction stats (memory.available = capacity − node working set, as cAdvisor/upstream). */
export function evictionStatsFromSnapshot(snap: StatsSnapshot, memoryCapacityBytes: number): EvictionStats {
  const n = snap.node;
  const ws = n.memory?.workingSetBytes;
  return {
    timeMs: snap.timeMs,
    memory: ws === undefined ? undefined : { availableBytes: Math.max(0, memoryCapacityBytes - ws), capacityBytes: memoryCapacityBytes },
    nodeFs: fsOf(n.fs),
    imageFs: fsOf(n.imageFs),
    pids: n.rlimit ? { max: n.rlimit.maxPid, running: n.rlimit.curProc } : undefined,
    pods: snap.pods.map((p) => ({
      uid: p.pod.uid,
      memoryWorkingSetBytes: p.memory?.workingSetBytes,
      processCount: p.pids?.current,
      containers: p.containers.map((c) => ({
        name: c.name,
        memoryWorkingSetBytes: c.memory?.workingSetBytes,
        rootfsBytes: c.rootfs?.usedBytes,
        rootfsInodes: c.rootfs?.inodesUsed,
        logsBytes: c.logs?.usedBytes,
        logsInodes: c.logs?.inodesUsed,
      })),
      volumes: p.volumes.map((v) => ({ name: v.name, usedBytes: v.usedBytes, inodesUsed: v.inodesUsed })),
    })),
  };
}

/** The machine reader's node readings → eviction stats without per-pod usage. */
export function evictionStatsFromNodeStats(s: NodeStats, memoryCapacityBytes: number, now: number): EvictionStats {
  return {
    timeMs: now,
    memory: s.memoryAvailableBytes === undefined ? undefined : { availableBytes: s.memoryAvailableBytes, capacityBytes: memoryCapacityBytes },
    nodeFs: s.nodeFs,
    imageFs: s.imageFs,
    pids: s.pids,
    pods: [],
  };
}
