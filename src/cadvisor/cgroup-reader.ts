// Reads one cgroup per call for housekeeping: resolves its controller directories once, keeps the rarely
// changing figures (SlowFields) for SLOW_EVERY passes, and turns cumulative CPU into a rate from a short ring
// of previous samples.
import { controllerDir, type CgroupLayout, type ReadFn, type V1Controller } from './cgroups.ts';
import { readCgroupV1, readSlowV1, type SlowFields, type V1Dirs } from './cgroup-v1.ts';
import { readCgroupV2, readSlowV2 } from './cgroup-v2.ts';
import type { CgroupSample, CpuSample } from './types.ts';

/** A fixed-size ring of the latest samples (rates need two). */
export class Ring<T> {
  private readonly items: T[] = [];
  private readonly size: number;
  constructor(size: number) {
    this.size = size;
  }
  push(x: T): void {
    this.items.push(x);
    if (this.items.length > this.size) this.items.shift();
  }
  last(): T | undefined {
    return this.items[this.items.length - 1];
  }
}

/** nano-cores between two cumulative CPU samples; undefined without a positive interval or on a counter reset. */
export function computeNanoCores(prev: CpuSample | undefined, cur: CpuSample): number | undefined {
  if (!prev || cur.timeMs <= prev.timeMs || cur.usageCoreNanoSeconds < prev.usageCoreNanoSeconds) return undefined;
  return Math.round(((cur.usageCoreNanoSeconds - prev.usageCoreNanoSeconds) * 1000) / (cur.timeMs - prev.timeMs));
}

/** One cgroup housekeeping samples, with its ring and caches. */
export interface CgroupRef {
  path: string;
  /** v1 only: per-controller paths when they differ (a process, not a container). */
  v1Paths?: Map<string, string>;
  cpu: Ring<CpuSample>;
  /** Block I/O is read for app containers only (`berth stats` shows it; nothing else does). */
  blkio?: boolean;
  dirs?: V1Dirs | string;
  slow?: SlowFields;
  slowPass?: number;
}

export const newRef = (path: string, more: Partial<Pick<CgroupRef, 'v1Paths' | 'blkio'>> = {}): CgroupRef => ({ path, cpu: new Ring(3), ...more });

/** Limits, peaks and OOM counters are re-read every this many passes (1 min at the default 10 s). */
export const SLOW_EVERY = 6;

export class CgroupReader {
  private readonly layout: CgroupLayout;
  private readonly read: ReadFn;
  private passNo = 0;
  constructor(layout: CgroupLayout, read: ReadFn) {
    this.layout = layout;
    this.read = read;
  }

  /** Called once at the start of each housekeeping pass. */
  nextPass(): void {
    this.passNo++;
  }

  /** Reads the cgroup (slow figures from cache unless due) and sets usageNanoCores from its ring. */
  sample(ref: CgroupRef, t: number, isRoot = false): CgroupSample {
    const dirs = (ref.dirs ??= this.dirsFor(ref.path, ref.v1Paths));
    if (!ref.slow || ref.slowPass === undefined || this.passNo - ref.slowPass >= SLOW_EVERY) {
      ref.slow = typeof dirs === 'string' ? readSlowV2(this.read, dirs) : readSlowV1(this.read, dirs);
      ref.slowPass = this.passNo;
    }
    const blkio = ref.blkio === true;
    const s = typeof dirs === 'string' ? readCgroupV2(this.read, dirs, t, { isRoot, slow: ref.slow, blkio }) : readCgroupV1(this.read, dirs, t, ref.slow, { blkio });
    if (s.cpu) {
      s.cpu.usageNanoCores = computeNanoCores(ref.cpu.last(), s.cpu);
      ref.cpu.push(s.cpu);
    }
    return s;
  }

  private dirsFor(cgroupPath: string, v1Paths?: Map<string, string>): V1Dirs | string {
    if (this.layout.version === 2) return controllerDir(this.layout, '', cgroupPath) ?? cgroupPath;
    const dirs: V1Dirs = {};
    for (const c of ['cpu', 'cpuacct', 'memory', 'pids', 'blkio'] as V1Controller[]) {
      const p = v1Paths ? v1Paths.get(c) : cgroupPath;
      const d = p === undefined ? undefined : controllerDir(this.layout, c, p);
      if (d) dirs[c] = d;
    }
    return dirs;
  }
}
