// cgroup v1 readers, as runc's libcontainer/cgroups/fs and cAdvisor's libcontainer handler read them:
// cpuacct.usage + cpuacct.stat (USER_HZ ticks) + cpu.stat (CFS throttling); memory.usage_in_bytes,
// memory.stat (total_* = hierarchical), memory.limit_in_bytes, memory.failcnt, memory.oom_control (oom_kill);
// pids.current / pids.max; blkio.throttle.io_service(d|_bytes)_recursive (the CFQ files are empty since 5.0).
import { computeWorkingSet, limitOrUndefined, parseFlatKeyed, parseSingle, type ReadFn, type V1Controller } from './cgroups.ts';
import type { BlkioSample, CgroupSample, CpuSample, MemorySample, PidsSample } from './types.ts';

/** USER_HZ is 100 on every Linux architecture that matters (sysconf(_SC_CLK_TCK)). */
const NS_PER_TICK = 1e9 / 100;

export type V1Dirs = Partial<Record<V1Controller, string>>;

/**
 * Figures that change rarely (limits, peaks, counters of rare events): housekeeping re-reads them every few
 * passes instead of every pass, which halves the files opened per container (each open+read+close of a kernel
 * file costs ~5 µs; they dominate a pass).
 */
export interface SlowFields {
  limitBytes?: number;
  maxUsageBytes?: number;
  failcnt?: number;
  oomKills?: number;
  pidsLimit?: number;
  /** A CFS quota is set: only then is cpu.stat's throttling worth reading (cAdvisor reports it only then). */
  cfsQuota: boolean;
}

export function readSlowV1(read: ReadFn, dirs: V1Dirs): SlowFields {
  const mem = dirs.memory;
  const quota = dirs.cpu ? parseSingle(read(`${dirs.cpu}/cpu.cfs_quota_us`)) : undefined;
  const pidsMax = dirs.pids ? parseSingle(read(`${dirs.pids}/pids.max`)) : undefined;
  return {
    limitBytes: mem ? limitOrUndefined(parseSingle(read(`${mem}/memory.limit_in_bytes`))) : undefined,
    maxUsageBytes: mem ? parseSingle(read(`${mem}/memory.max_usage_in_bytes`)) : undefined,
    failcnt: mem ? parseSingle(read(`${mem}/memory.failcnt`)) : undefined,
    oomKills: mem ? parseFlatKeyed(read(`${mem}/memory.oom_control`)).get('oom_kill') : undefined,
    pidsLimit: pidsMax === undefined || pidsMax === Infinity ? undefined : pidsMax,
    cfsQuota: quota !== undefined && quota > 0,
  };
}

export function readCpuV1(read: ReadFn, dirs: V1Dirs, timeMs: number, slow?: SlowFields): CpuSample | undefined {
  if (!dirs.cpuacct) return undefined;
  const usage = parseSingle(read(`${dirs.cpuacct}/cpuacct.usage`));
  if (usage === undefined) return undefined;
  const st = parseFlatKeyed(read(`${dirs.cpuacct}/cpuacct.stat`));
  const sample: CpuSample = {
    timeMs,
    usageCoreNanoSeconds: usage,
    userNanoSeconds: (st.get('user') ?? 0) * NS_PER_TICK,
    systemNanoSeconds: (st.get('system') ?? 0) * NS_PER_TICK,
  };
  if (dirs.cpu && (slow?.cfsQuota ?? true)) {
    const t = parseFlatKeyed(read(`${dirs.cpu}/cpu.stat`));
    if (t.has('nr_periods'))
      sample.throttling = { periods: t.get('nr_periods')!, throttledPeriods: t.get('nr_throttled') ?? 0, throttledTimeNanoSeconds: t.get('throttled_time') ?? 0 };
  }
  return sample;
}

export function readMemoryV1(read: ReadFn, dir: string | undefined, timeMs: number, slow?: SlowFields): MemorySample | undefined {
  if (!dir) return undefined;
  const usage = parseSingle(read(`${dir}/memory.usage_in_bytes`));
  if (usage === undefined) return undefined;
  const st = parseFlatKeyed(read(`${dir}/memory.stat`), 'total_');
  const sl = slow ?? readSlowV1(read, { memory: dir });
  const limit = sl.limitBytes;
  const workingSet = computeWorkingSet(usage, st.get('total_inactive_file'));
  const m: MemorySample = {
    timeMs,
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: st.get('total_rss') ?? 0,
    cacheBytes: st.get('total_cache') ?? 0,
    swapBytes: st.get('total_swap'),
    mappedFileBytes: st.get('total_mapped_file'),
    pageFaults: st.get('total_pgfault') ?? 0,
    majorPageFaults: st.get('total_pgmajfault') ?? 0,
    maxUsageBytes: sl.maxUsageBytes,
    failcnt: sl.failcnt,
    oomKills: sl.oomKills,
  };
  if (limit !== undefined) {
    m.limitBytes = limit;
    m.availableBytes = Math.max(0, limit - workingSet);
  }
  return m;
}

export function readPidsV1(read: ReadFn, dir: string | undefined, slow?: SlowFields): PidsSample | undefined {
  if (!dir) return undefined;
  const current = parseSingle(read(`${dir}/pids.current`));
  if (current === undefined) return undefined;
  const limit = slow ? slow.pidsLimit : readSlowV1(read, { pids: dir }).pidsLimit;
  return limit === undefined ? { current } : { current, limit };
}

/** blkio.throttle.io_service_bytes_recursive: "8:0 Read 4096" lines plus a "Total" line; summed over devices. */
export function parseBlkioV1(bytesText: string | undefined, opsText: string | undefined): BlkioSample | undefined {
  if (bytesText === undefined && opsText === undefined) return undefined;
  const sum = (text: string | undefined, op: string): number => {
    let n = 0;
    for (const line of (text ?? '').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length === 3 && f[1] === op) n += Number(f[2]) || 0;
    }
    return n;
  };
  return { readBytes: sum(bytesText, 'Read'), writeBytes: sum(bytesText, 'Write'), readOps: sum(opsText, 'Read'), writeOps: sum(opsText, 'Write') };
}

export function readBlkioV1(read: ReadFn, dir: string | undefined): BlkioSample | undefined {
  if (!dir) return undefined;
  return parseBlkioV1(read(`${dir}/blkio.throttle.io_service_bytes_recursive`), read(`${dir}/blkio.throttle.io_serviced_recursive`));
}

/**
 * Everything one v1 cgroup tells; `slow` (from readSlowV1, possibly cached) saves re-reading rare figures, and
 * `blkio: false` skips block I/O (only app containers' is shown, by `berth stats`).
 */
export function readCgroupV1(read: ReadFn, dirs: V1Dirs, timeMs: number, slow?: SlowFields, opts: { blkio?: boolean } = {}): CgroupSample {
  const sl = slow ?? readSlowV1(read, dirs);
  return {
    cpu: readCpuV1(read, dirs, timeMs, sl),
    memory: readMemoryV1(read, dirs.memory, timeMs, sl),
    pids: readPidsV1(read, dirs.pids, sl),
    blkio: opts.blkio === false ? undefined : readBlkioV1(read, dirs.blkio),
  };
}
