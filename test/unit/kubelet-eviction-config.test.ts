// Eviction and image GC settings through loadConfig: the kubelet's flags (--eviction-hard with `<`, the `=` maps,
// durations, the image GC thresholds and minimum age), the KubeletConfiguration file's names (evictionHard map,
// imageGCHighThresholdPercent…), upstream's defaults, and validation of bad thresholds.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/cli/config.ts';
import { InvalidConfigError } from '../../src/lib/index.ts';
import { allocatableReservation, parseThresholdConfig } from '../../src/kubelet/eviction/index.ts';

const load = (argv: string[], file?: string): ReturnType<typeof loadConfig> =>
  loadConfig({ argv: file ? [...argv, '--config', 'k.yaml'] : argv, env: {}, hostname: 'n', readFile: () => file ?? '' });

function problems(argv: string[], file?: string): string[] {
  try {
    load(argv, file);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
  throw new Error('expected loadConfig to throw');
}

describe('eviction and image GC configuration', () => {
  it('defaults as upstream: transition 5m, max pod grace 0, image GC 85/80 and 2m, hard thresholds left to the eviction defaults', () => {
    const c = load([]);
    expect(c.evictionHard).toBeUndefined();
    expect(c.evictionPressureTransitionPeriodMs).toBe(300_000);
    expect(c.evictionMaxPodGracePeriodSeconds).toBe(0);
    expect([c.imageGCHighThresholdPercent, c.imageGCLowThresholdPercent, c.imageMinimumGCAgeMs]).toEqual([85, 80, 120_000]);
  });

  it('reads the kubelet flags', () => {
    const c = load([
      '--eviction-hard=memory.available<1Gi,nodefs.available<5%',
      '--eviction-soft=memory.available<2Gi',
      '--eviction-soft-grace-period=memory.available=1m30s',
      '--eviction-minimum-reclaim=memory.available=100Mi',
      '--eviction-pressure-transition-period=30s',
      '--eviction-max-pod-grace-period=20',
      '--image-gc-high-threshold=1',
      '--image-gc-low-threshold=0',
      '--image-minimum-gc-age=5s',
    ]);
    expect(c.evictionHard).toEqual({ 'memory.available': '1Gi', 'nodefs.available': '5%' });
    expect(c.evictionSoft).toEqual({ 'memory.available': '2Gi' });
    expect(c.evictionSoftGracePeriod).toEqual({ 'memory.available': '1m30s' });
    expect(c.evictionMinimumReclaim).toEqual({ 'memory.available': '100Mi' });
    expect(c.evictionPressureTransitionPeriodMs).toBe(30_000);
    expect(c.evictionMaxPodGracePeriodSeconds).toBe(20);
    expect([c.imageGCHighThresholdPercent, c.imageGCLowThresholdPercent, c.imageMinimumGCAgeMs]).toEqual([1, 0, 5000]);
    expect(load(['--minimum-image-ttl-duration=3m']).imageMinimumGCAgeMs).toBe(180_000);
  });

  it('reads the KubeletConfiguration names from --config', () => {
    const c = load(
      [],
      [
        'evictionHard:',
        '  memory.available: "500Mi"',
        '  imagefs.available: "20%"',
        'evictionSoft: {memory.available: "1Gi"}',
        'evictionSoftGracePeriod: {memory.available: "1m"}',
        'evictionPressureTransitionPeriod: 1m0s',
        'evictionMaxPodGracePeriod: 60',
        'imageGCHighThresholdPercent: 90',
        'imageGCLowThresholdPercent: 70',
        'imageMinimumGCAge: 10m',
      ].join('\n'),
    );
    expect(c.evictionHard).toEqual({ 'memory.available': '500Mi', 'imagefs.available': '20%' });
    expect(c.evictionSoftGracePeriod).toEqual({ 'memory.available': '1m' });
    expect(c.evictionPressureTransitionPeriodMs).toBe(60_000);
    expect(c.evictionMaxPodGracePeriodSeconds).toBe(60);
    expect([c.imageGCHighThresholdPercent, c.imageGCLowThresholdPercent, c.imageMinimumGCAgeMs]).toEqual([90, 70, 600_000]);
  });

  it.each([
    [['--eviction-hard=memory.available=1Gi'], 'malformed pair'],
    [['--eviction-hard=memory.free<1Gi'], 'unsupported eviction signal memory.free'],
    [['--eviction-soft=memory.available<1Gi'], 'grace period must be specified for the soft eviction threshold memory.available'],
    [['--image-gc-high-threshold=101'], 'must be between 0 and 100'],
    [['--image-gc-high-threshold=80', '--image-gc-low-threshold=80'], 'must be less than --image-gc-high-threshold (80)'],
  ])('%j is rejected (%s)', (argv, needle) => {
    expect(problems(argv).join('\n')).toContain(needle);
  });

  it('hard thresholds become the allocatable reservation (memory and nodefs.available), percentages of capacity', () => {
    const Gi = 2 ** 30;
    expect(allocatableReservation(parseThresholdConfig({}), 8 * Gi)).toEqual({
      memoryAvailableBytes: 100 * 2 ** 20,
      nodeFsAvailablePercent: 10,
      nodeFsInodesFreePercent: Math.fround(0.05) * 100,
      imageFsAvailablePercent: Math.fround(0.15) * 100,
    });
    const r = allocatableReservation(parseThresholdConfig({ hard: { 'memory.available': '10%', 'nodefs.available': '1Gi' } }), 8 * Gi);
    expect(r.memoryAvailableBytes).toBe(Math.trunc(8 * Gi * Math.fround(0.1)));
    expect(r.nodeFsAvailableBytes).toBe(Gi);
    // Soft thresholds reserve nothing.
    expect(allocatableReservation(parseThresholdConfig({ hard: {}, soft: { 'memory.available': '1Gi' }, softGracePeriod: { 'memory.available': '1m' } }), 8 * Gi).memoryAvailableBytes).toBe(0);
  });
});
