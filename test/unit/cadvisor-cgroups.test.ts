// cgroup v1 (recorded from this machine's Docker 20.10, cgroupfs driver, separate cpu and cpuacct mounts) and
// cgroup v2 (written from Documentation/admin-guide/cgroup-v2.rst's file formats, systemd driver layout).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeWorkingSet, containerCgroupPath, controllerDir, detectDriver, limitOrUndefined, parseMountInfo, parseProcCgroup, type ReadFn } from '../../src/cadvisor/cgroups.ts';
import { parseBlkioV1, readCgroupV1 } from '../../src/cadvisor/cgroup-v1.ts';
import { parseIoStat, readCgroupV2 } from '../../src/cadvisor/cgroup-v2.ts';
import { parseDefaultRoute, parseNetDev } from '../../src/cadvisor/netdev.ts';
import { computeNanoCores } from '../../src/cadvisor/cgroup-reader.ts';
import { parseLoadavg } from '../../src/cadvisor/machine.ts';

const FIX = path.join(import.meta.dirname, 'fixtures');
const fixture = (rel: string): string => readFileSync(path.join(FIX, rel), 'utf8');
/** Serves /sys/fs/cgroup/... from a fixture tree; everything else is missing. */
function fixtureReader(root: string, strip: string): ReadFn {
  return (p) => {
    if (!p.startsWith(strip)) return undefined;
    try {
      return readFileSync(path.join(FIX, root, p.slice(strip.length)), 'utf8');
    } catch {
      return undefined;
    }
  };
}

describe('cgroup v1 (recorded tree)', () => {
  const layout = parseMountInfo(fixture('cgroup-v1/mountinfo'));
  const proc = parseProcCgroup(fixture('cgroup-v1/proc-pid-cgroup'));
  const cg = containerCgroupPath(layout, proc)!;
  const dirs = Object.fromEntries((['cpu', 'cpuacct', 'memory', 'pids', 'blkio'] as const).map((c) => [c, controllerDir(layout, c, cg)!]));
  const read = fixtureReader('cgroup-v1', '/sys/fs/cgroup/');

  it('finds one mount per controller, v1 even with a hybrid unified mount', () => {
    expect(layout.version).toBe(1);
    expect(layout.v1).toEqual({ cpu: '/sys/fs/cgroup/cpu', cpuacct: '/sys/fs/cgroup/cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids', blkio: '/sys/fs/cgroup/blkio' });
    expect(layout.unified).toBe('/sys/fs/cgroup/unified');
  });

  it('takes the container cgroup from /proc/<pid>/cgroup and sees the cgroupfs driver', () => {
    expect(cg).toBe('/kubepods/burstable/podfixture-uid/ctr');
    expect(detectDriver(cg)).toBe('cgroupfs');
    expect(dirs.cpuacct).toBe('/sys/fs/cgroup/cpuacct/kubepods/burstable/podfixture-uid/ctr');
  });

  it('reads cpu, memory, pids and blkio of the container', () => {
    const s = readCgroupV1(read, dirs, 1000);
    // No CFS quota on this container (cpu.cfs_quota_us = -1): throttling is not read, as cAdvisor.
    expect(s.cpu).toEqual({ timeMs: 1000, usageCoreNanoSeconds: 59207669, userNanoSeconds: 40_000_000, systemNanoSeconds: 10_000_000 });
    expect(s.memory).toMatchObject({
      usageBytes: 9142272,
      workingSetBytes: 9142272, // total_inactive_file is 0 in this cgroup (its 8 MiB are shmem)
      rssBytes: 118784,
      cacheBytes: 8388608,
      pageFaults: 1579,
      majorPageFaults: 0,
      limitBytes: 134217728,
      availableBytes: 134217728 - 9142272,
      maxUsageBytes: 9486336,
      failcnt: 0,
      oomKills: 0,
    });
    expect(s.pids).toEqual({ current: 2 });
    expect(s.blkio).toEqual({ readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 });
  });

  it('reads CFS throttling when a quota is set', () => {
    const withQuota: ReadFn = (p) => (p.endsWith('/cpu.cfs_quota_us') ? '50000\n' : p.endsWith('/cpu.stat') ? 'nr_periods 7\nnr_throttled 3\nthrottled_time 1200\n' : read(p));
    expect(readCgroupV1(withQuota, dirs, 1).cpu!.throttling).toEqual({ periods: 7, throttledPeriods: 3, throttledTimeNanoSeconds: 1200 });
  });

  it('subtracts total_inactive_file at the root, where the page cache is large', () => {
    const root = readCgroupV1(read, { memory: '/sys/fs/cgroup/memory', cpuacct: '/sys/fs/cgroup/cpuacct' }, 1);
    expect(root.memory!.usageBytes).toBe(5389320192);
    expect(root.memory!.workingSetBytes).toBe(5389320192 - 3093024768);
    expect(root.memory!.limitBytes).toBeUndefined(); // the root's limit is PAGE_COUNTER_MAX
  });

  it('sums blkio throttle lines per operation across devices', () => {
    expect(parseBlkioV1('8:0 Read 4096\n8:0 Write 8192\n8:16 Read 100\n8:0 Sync 1\nTotal 12388\n', '8:0 Read 2\n8:0 Write 3\nTotal 5\n')).toEqual({ readBytes: 4196, writeBytes: 8192, readOps: 2, writeOps: 3 });
  });

  it('parses the sandbox network namespace counters without lo', () => {
    const ifs = parseNetDev(fixture('cgroup-v1/net-dev'));
    expect(ifs).toEqual([{ name: 'eth0', rxBytes: 1042, rxPackets: 11, rxErrors: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDropped: 0 }]);
  });
});

describe('cgroup v2 (kernel documentation formats, systemd driver)', () => {
  const layout = parseMountInfo(fixture('cgroup-v2/mountinfo'));
  const cg = containerCgroupPath(layout, parseProcCgroup(fixture('cgroup-v2/proc-pid-cgroup')))!;
  const read = fixtureReader('cgroup-v2/sys/fs/cgroup', '/sys/fs/cgroup/');

  it('is v2 with the systemd driver', () => {
    expect(layout.version).toBe(2);
    expect(cg).toBe('/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/docker-ctr.scope');
    expect(detectDriver(cg)).toBe('systemd');
  });

  it('reads cpu.stat, memory.*, pids and io.stat', () => {
    const s = readCgroupV2(read, controllerDir(layout, '', cg)!, 5);
    expect(s.cpu).toEqual({ timeMs: 5, usageCoreNanoSeconds: 2.5e9, userNanoSeconds: 2e9, systemNanoSeconds: 5e8, throttling: { periods: 120, throttledPeriods: 30, throttledTimeNanoSeconds: 450_000_000 } });
    expect(s.memory).toMatchObject({
      usageBytes: 73400320,
      workingSetBytes: 73400320 - 20971520,
      rssBytes: 41943040,
      cacheBytes: 31457280,
      mappedFileBytes: 1048576,
      swapBytes: 0,
      pageFaults: 12345,
      majorPageFaults: 7,
      limitBytes: 134217728,
      availableBytes: 134217728 - (73400320 - 20971520),
      failcnt: 4,
      oomKills: 1,
    });
    expect(s.pids).toEqual({ current: 3 }); // pids.max "max" = no limit
    expect(s.blkio).toEqual({ readBytes: 1048576 + 2048, writeBytes: 4096 + 8192, readOps: 18, writeOps: 4 });
  });

  it('falls back to /proc/meminfo at the root, which has no memory.current', () => {
    const r: ReadFn = (p) => (p === '/proc/meminfo' ? fixture('cgroup-v2/meminfo') : read(p));
    const s = readCgroupV2(r, '/sys/fs/cgroup', 1, { isRoot: true });
    const usage = (8388608 - 2097152) * 1024;
    expect(s.memory!.usageBytes).toBe(usage);
    expect(s.memory!.workingSetBytes).toBe(usage - 1610612736); // inactive_file of the root's memory.stat
    expect(s.cpu!.usageCoreNanoSeconds).toBe(90e9);
  });

  it('parses io.stat lines with extra keys', () => {
    expect(parseIoStat('259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=5 dios=1\n')).toEqual({ readBytes: 10, writeBytes: 20, readOps: 1, writeOps: 2 });
  });
});

describe('arithmetic', () => {
  it.each([
    [100, 30, 70],
    [100, 100, 0],
    [100, 150, 0], // floored at 0, as cAdvisor
    [100, undefined, 100],
    [0, 0, 0],
  ])('working set of usage %d with inactive_file %s is %d', (usage, inactive, ws) => {
    expect(computeWorkingSet(usage, inactive)).toBe(ws);
  });

  it('treats v1 PAGE_COUNTER_MAX and "max" as no limit', () => {
    expect(limitOrUndefined(9223372036854771712)).toBeUndefined();
    expect(limitOrUndefined(Infinity)).toBeUndefined();
    expect(limitOrUndefined(134217728)).toBe(134217728);
  });

  it('computes nano-cores from two cumulative samples and refuses resets', () => {
    const a = { timeMs: 1000, usageCoreNanoSeconds: 1e9, userNanoSeconds: 0, systemNanoSeconds: 0 };
    expect(computeNanoCores(a, { ...a, timeMs: 3000, usageCoreNanoSeconds: 2e9 })).toBe(5e8); // 1 s of CPU in 2 s
    expect(computeNanoCores(a, { ...a, timeMs: 3000, usageCoreNanoSeconds: 5e8 })).toBeUndefined();
    expect(computeNanoCores(undefined, a)).toBeUndefined();
    expect(computeNanoCores(a, a)).toBeUndefined();
  });

  it('reads the default route and loadavg task count', () => {
    expect(parseDefaultRoute('Iface\tDestination\tGateway\nens3\t0000A8C0\t00000000\neth0\t00000000\t0101A8C0\n')).toBe('eth0');
    expect(parseLoadavg('0.50 0.25 0.10 3/412 12345\n')).toEqual({ load1: 0.5, load5: 0.25, load15: 0.1, tasks: 412 });
  });
});
