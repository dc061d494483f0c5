// cgroup v2 readers (Documentation/admin-guide/cgroup-v2.rst; runc's libcontainer/cgroups/fs2):
// cpu.stat (usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec); memory.current,
// memory.stat (anon, file, inactive_file, pgfault, pgmajfault), memory.max, memory.events (max, oom_kill);
// pids.current / pids.max; io.stat ("MAJ:MIN rbytes=… wbytes=… rios=… wios=…" per device).
// The root cgroup has no memory.current: there, as runc's rootStatsFromMeminfo, usage = MemTotal − MemFree.
import { computeWorkingSet, limitOrUndefined, parseFlatKeyed, parseSingle, type ReadFn } from './cgroups.ts';
import type { BlkioSample, CgroupSample, CpuSample, MemorySample, PidsSample } from './types.ts';
import type { SlowFields } from './cgroup-v1.ts';

/** The rarely changing figures of a v2 cgroup (see SlowFields): memory.max, memory.peak, memory.events, pids.max, cpu.max. */
export function readSlowV2(read: ReadFn, dir: string): SlowFields {
  const events = parseFlatKeyed(read(`${dir}/memory.events`));
  const pidsMax = parseSingle(read(`${dir}/pids.max`));
  const cpuMax = (read(`${dir}/cpu.max`) ?? '').trim().split(' ')[0];
  return {
    limitBytes: limitOrUndefined(parseSingle(read(`${dir}/memory.max`))),
    maxUsageBytes: parseSingle(read(`${dir}/memory.peak`)),
    failcnt: events.get('max'),
    oomKills: events.get('oom_kill'),
    pidsLimit: pidsMax === undefined || pidsMax === Infinity ? undefined : pidsMax,
    // cpu.stat carries the throttling counters anyway; this only records whether a quota exists.
    cfsQuota: cpuMax !== undefined && cpuMax !== '' && cpuMax !== 'max',
  };
}

export function readCpuV2(read: ReadFn, dir: string, timeMs: number): CpuSample | undefined {
  const st = parseFlatKeyed(read(`${dir}/cpu.stat`));
  const usage = st.get('usage_usec');
  if (usage === undefined) return undefined;
  const sample: CpuSample = {
    timeMs,
    usageCoreNanoSeconds: usage * 1000,
    userNanoSeconds: (st.get('user_usec') ?? 0) * 1000,
    systemNanoSeconds: (st.get('system_usec') ?? 0) * 1000,
  };
  if (st.has('nr_periods'))
    sample.throttling = { periods: st.get('nr_periods')!, throttledPeriods: st.get('nr_throttled') ?? 0, throttledTimeNanoSeconds: (st.get('throttled_usec') ?? 0) * 1000 };
  return sample;
}

/** /proc/meminfo in bytes (its figures are kB). */
export function parseMeminfo(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const m = /^([^:]+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]) * (line.includes('kB') ? 1024 : 1));
  }
  return out;
}

export function readMemoryV2(read: ReadFn, dir: string, timeMs: number, opts: { isRoot?: boolean; meminfo?: string; slow?: SlowFields } = {}): MemorySample | undefined {
  const st = parseFlatKeyed(read(`${dir}/memory.stat`));
  let usage = parseSingle(read(`${dir}/memory.current`));
  let inactiveFile = st.get('inactive_file');
  if (usage === undefined && opts.isRoot) {
    const mi = parseMeminfo(opts.meminfo ?? read('/proc/meminfo'));
    const total = mi.get('MemTotal');
    const free = mi.get('MemFree');
    if (total === undefined || free === undefined) return undefined;
    usage = total - free;
    inactiveFile ??= mi.get('Inactive(file)');
  }
  if (usage === undefined) return undefined;
  const workingSet = computeWorkingSet(usage, inactiveFile);
  const sl = opts.slow ?? readSlowV2(read, dir);
  const m: MemorySample = {
    timeMs,
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: st.get('anon') ?? 0,
    cacheBytes: st.get('file') ?? 0,
    swapBytes: parseSingle(read(`${dir}/memory.swap.current`)),
    mappedFileBytes: st.get('file_mapped'),
    pageFaults: st.get('pgfault') ?? 0,
    majorPageFaults: st.get('pgmajfault') ?? 0,
    maxUsageBytes: sl.maxUsageBytes,
    failcnt: sl.failcnt,
    oomKills: sl.oomKills,
  };
  const limit = sl.limitBytes;
  if (limit !== undefined) {
    m.limitBytes = limit;
    m.availableBytes = Math.max(0, limit - workingSet);
  }
  return m;
}

export function readPidsV2(read: ReadFn, dir: string, slow?: SlowFields): PidsSample | undefined {
  const current = parseSingle(read(`${dir}/pids.current`));
  if (current === undefined) return undefined;
  const limit = (slow ?? readSlowV2(read, dir)).pidsLimit;
  return limit === undefined ? { current } : { current, limit };
}

export function parseIoStat(text: string | undefined): BlkioSample | undefined {
  if (text === undefined) return undefined;
  const s: BlkioSample = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  for (const line of text.split('\n')) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split('=');
      const n = Number(v) || 0;
      if (k === 'rbytes') s.readBytes += n;
      else if (k === 'wbytes') s.writeBytes += n;
      else if (k === 'rios') s.readOps += n;
      else if (k === 'wios') s.writeOps += n;
    }
  }
  return s;
}

export function readCgroupV2(read: ReadFn, dir: string, timeMs: number, opts: { isRoot?: boolean; slow?: SlowFields; blkio?: boolean } = {}): CgroupSample {
  const slow = opts.slow ?? readSlowV2(read, dir);
  return {
    cpu: readCpuV2(read, dir, timeMs),
    memory: readMemoryV2(read, dir, timeMs, { isRoot: opts.isRoot, slow }),
    pids: readPidsV2(read, dir, slow),
    blkio: opts.blkio === false ? undefined : parseIoStat(read(`${dir}/io.stat`)),
  };
}
