// The pod cgroup's limits against pkg/kubelet/cm/helpers_linux.go ResourceConfigForPod, and the cgroup files
// (v1 and v2) they are written to.
import { describe, expect, it } from 'vitest';
import type { Container } from 'kubernetes-types/core/v1';
import { computePodCgroupWrites, computePodResourceConfig, sharesToWeight } from '../../src/kubelet/runtime/pod-cgroup.ts';
import { pod, spec } from './helpers/kubelet-fixtures.ts';

const Mi = 2 ** 20;
const c = (name: string, requests?: Record<string, string>, limits?: Record<string, string>): Container => spec(name, { resources: { requests, limits } });

describe('computePodResourceConfig (ResourceConfigForPod)', () => {
  it.each([
    ['BestEffort: minimum shares only', [c('a')], [], undefined, { cpuShares: 2 }],
    [
      'Guaranteed: sums of both containers',
      [c('a', undefined, { cpu: '500m', memory: '64Mi' }), c('b', undefined, { cpu: '250m', memory: '32Mi' })],
      [],
      undefined,
      { cpuShares: 768, cpuQuota: 75_000, cpuPeriod: 100_000, memoryLimitBytes: 96 * Mi },
    ],
    [
      'Burstable, every container limits memory: memory set, cpu quota not (one has no cpu limit)',
      [c('a', { cpu: '100m' }, { memory: '64Mi' }), c('b', undefined, { cpu: '1', memory: '32Mi' })],
      [],
      undefined,
      { cpuShares: 1126, memoryLimitBytes: 96 * Mi },
    ],
    ['Burstable, one container unlimited: shares only', [c('a', { memory: '10Mi' }, { memory: '64Mi' }), c('b')], [], undefined, { cpuShares: 2 }],
    [
      'an init container larger than the app sum sets the floor',
      [c('a', undefined, { cpu: '100m', memory: '16Mi' }), c('b', undefined, { cpu: '100m', memory: '16Mi' })],
      [c('init', undefined, { cpu: '1', memory: '128Mi' })],
      undefined,
      { cpuShares: 1024, cpuQuota: 100_000, cpuPeriod: 100_000, memoryLimitBytes: 128 * Mi },
    ],
    [
      'overhead is added to requests and to declared limits',
      [c('a', undefined, { cpu: '200m', memory: '64Mi' })],
      [],
      { cpu: '100m', memory: '16Mi' },
      { cpuShares: 307, cpuQuota: 30_000, cpuPeriod: 100_000, memoryLimitBytes: 80 * Mi },
    ],
  ])('%s', (_, containers, initContainers, overhead, want) => {
    const p = pod({ containers, initContainers, spec: overhead ? { overhead } : {} });
    expect(computePodResourceConfig(p)).toEqual(want);
  });
});

describe('computePodCgroupWrites', () => {
  const cfg = { cpuShares: 768, cpuQuota: 75_000, cpuPeriod: 100_000, memoryLimitBytes: 96 * Mi };
  it('cgroup v1: cpu and memory controllers, period before quota', () => {
    const v1 = { version: 1 as const, v1: { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' } };
    expect(computePodCgroupWrites(v1, '/kubepods/podu1', cfg)).toEqual([
      { file: '/sys/fs/cgroup/cpu,cpuacct/kubepods/podu1/cpu.shares', value: '768' },
      { file: '/sys/fs/cgroup/cpu,cpuacct/kubepods/podu1/cpu.cfs_period_us', value: '100000' },
      { file: '/sys/fs/cgroup/cpu,cpuacct/kubepods/podu1/cpu.cfs_quota_us', value: '75000' },
      { file: '/sys/fs/cgroup/memory/kubepods/podu1/memory.limit_in_bytes', value: String(96 * Mi) },
    ]);
    expect(computePodCgroupWrites(v1, '/kubepods/besteffort/podu2', { cpuShares: 2 })).toEqual([{ file: '/sys/fs/cgroup/cpu,cpuacct/kubepods/besteffort/podu2/cpu.shares', value: '2' }]);
  });
  it('cgroup v2: cpu.weight, cpu.max and memory.max on the unified hierarchy', () => {
    const v2 = { version: 2 as const, v1: {}, unified: '/sys/fs/cgroup' };
    expect(computePodCgroupWrites(v2, '/kubepods/burstable/podu3', cfg)).toEqual([
      { file: '/sys/fs/cgroup/kubepods/burstable/podu3/cpu.weight', value: String(sharesToWeight(768)) },
      { file: '/sys/fs/cgroup/kubepods/burstable/podu3/cpu.max', value: '75000 100000' },
      { file: '/sys/fs/cgroup/kubepods/burstable/podu3/memory.max', value: String(96 * Mi) },
    ]);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
  });
});
