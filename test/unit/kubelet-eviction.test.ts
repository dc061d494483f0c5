// The eviction manager's pure parts: threshold parsing (upstream's defaults and errors), signal arithmetic,
// the pod ranking for memory/disk/pid pressure, the eviction message, the pressure transition period, soft
// grace periods, minimum reclaim, critical/static pods, and admission under pressure.
import { describe, it, expect } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1';
import {
  admitUnderPressure,
  computeEvictionPlan,
  evictionMessage,
  INITIAL_EVICTION_STATE,
  isCriticalPod,
  makeSignalObservations,
  parseLangleMap,
  parseThresholdConfig,
  rankForSignal,
  thresholdQuantity,
  thresholdsMet,
  type ActivePod,
  type EvictionPlan,
  type EvictionState,
  type EvictionStats,
  type PodUsage,
  type Threshold,
} from '../../src/kubelet/eviction/index.ts';

const Mi = 2 ** 20;
const Gi = 2 ** 30;
const T0 = 1_700_000_000_000;

function pod(name: string, o: { memReq?: string; memLim?: string; priority?: number; esReq?: string; class?: string; tolerations?: Pod['spec'] extends infer S ? S extends { tolerations?: infer T } ? T : never : never } = {}): Pod {
  const requests: Record<string, string> = {};
  if (o.memReq) requests.memory = o.memReq;
  if (o.esReq) requests['ephemeral-storage'] = o.esReq;
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: {
      containers: [{ name: 'c', image: 'i', resources: { requests, ...(o.memLim ? { limits: { memory: o.memLim } } : {}) } }],
      ...(o.priority !== undefined ? { priority: o.priority } : {}),
      ...(o.class ? { priorityClassName: o.class } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
    },
  };
}
const active = (p: Pod, isStatic = false): ActivePod => ({ pod: p, isStatic });
const usage = (name: string, mem: number, extra: Partial<PodUsage> = {}): PodUsage => ({
  uid: `uid-${name}`,
  memoryWorkingSetBytes: mem,
  containers: [{ name: 'c', memoryWorkingSetBytes: mem }],
  volumes: [],
  ...extra,
});
const names = (ps: ActivePod[]): string[] => ps.map((p) => p.pod.metadata!.name!);

describe('parseThresholdConfig', () => {
  it('defaults to upstream hard thresholds: memory.available<100Mi, nodefs.available<10%, nodefs.inodesFree<5%, imagefs.available<15%', () => {
    const ts = parseThresholdConfig({});
    const by = Object.fromEntries(ts.map((t) => [t.signal, t]));
    expect(Object.keys(by).sort()).toEqual(['imagefs.available', 'memory.available', 'nodefs.available', 'nodefs.inodesFree']);
    expect(by['memory.available']!.value.quantity).toBe(100 * Mi);
    expect(by['memory.available']!.value.quantityText).toBe('100Mi');
    expect(by['nodefs.available']!.value.percentage).toBe(Math.fround(0.1));
    expect(by['nodefs.inodesFree']!.value.percentage).toBe(Math.fround(0.05));
    expect(by['imagefs.available']!.value.percentage).toBe(Math.fround(0.15));
    expect(ts.every((t) => t.gracePeriodMs === 0)).toBe(true);
  });

  it('an explicit --eviction-hard replaces the defaults as a whole (1.20 semantics)', () => {
    const ts = parseThresholdConfig({ hard: { 'memory.available': '1Gi' } });
    expect(ts.map((t) => t.signal)).toEqual(['memory.available']);
    expect(ts[0]!.value.quantity).toBe(Gi);
  });

  it('soft thresholds take their grace period and minimum reclaim attaches to both kinds', () => {
    const ts = parseThresholdConfig({
      hard: { 'memory.available': '100Mi' },
      soft: { 'memory.available': '300Mi', 'nodefs.available': '15%' },
      softGracePeriod: { 'memory.available': '1m30s', 'nodefs.available': '2m' },
      minimumReclaim: { 'memory.available': '0Mi', 'nodefs.available': '500Mi' },
    });
    expect(ts.map((t) => [t.signal, t.gracePeriodMs])).toEqual([
      ['memory.available', 0],
      ['memory.available', 90_000],
      ['nodefs.available', 120_000],
    ]);
    expect(ts[2]!.minReclaim?.quantity).toBe(500 * Mi);
  });

  it.each([
    [{ hard: { 'memory.free': '1Gi' } }, 'unsupported eviction signal memory.free'],
    [{ hard: { 'memory.available': '-1Gi' } }, 'must be positive'],
    [{ hard: { 'nodefs.available': '150%' } }, 'must be <= 100%'],
    [{ soft: { 'memory.available': '1Gi' } }, 'grace period must be specified for the soft eviction threshold memory.available'],
    [{ soft: { 'memory.available': '1Gi' }, softGracePeriod: { 'memory.available': '-1s' } }, 'must be a positive value'],
    [{ minimumReclaim: { 'nodefs.available': '0%' } }, 'minimum reclaim nodefs.available must be positive'],
  ])('rejects %j', (input, message) => {
    expect(() => parseThresholdConfig(input)).toThrow(message);
  });

  it('ignores 0% and 100% statements, as upstream', () => {
    expect(parseThresholdConfig({ hard: { 'nodefs.available': '0%', 'imagefs.available': '100%' } })).toEqual([]);
  });

  it('parses the flags\' langle-separated form', () => {
    expect(parseLangleMap('memory.available<100Mi, nodefs.available<10%')).toEqual({ 'memory.available': '100Mi', 'nodefs.available': '10%' });
    expect(() => parseLangleMap('memory.available=100Mi')).toThrow('malformed pair');
  });
});

describe('signal arithmetic', () => {
  it('a percentage threshold is capacity × float32 fraction, truncated (GetThresholdQuantity)', () => {
    const [t] = parseThresholdConfig({ hard: { 'nodefs.available': '10%' } });
    expect(thresholdQuantity(t!.value, 1000)).toBe(100);
    // float32(0.1) is slightly above 0.1: 10 GiB × 0.1 rounds down to 1073741840, not 1073741824.
    expect(thresholdQuantity(t!.value, 10 * Gi)).toBe(Math.trunc(10 * Gi * Math.fround(0.1)));
  });

  it('observes each signal from the stats it has, and nothing for what is unknown', () => {
    const obs = makeSignalObservations({
      timeMs: T0,
      memory: { availableBytes: 92 * Mi, capacityBytes: 8 * Gi },
      nodeFs: { availableBytes: 5 * Gi, capacityBytes: 100 * Gi, inodesFree: 10, inodes: 1000 },
      pids: { max: 1000, running: 990 },
      pods: [],
    });
    expect(obs['memory.available']).toEqual({ available: 92 * Mi, capacity: 8 * Gi, timeMs: T0 });
    expect(obs['nodefs.inodesFree']).toEqual({ available: 10, capacity: 1000, timeMs: T0 });
    expect(obs['pid.available']).toEqual({ available: 10, capacity: 1000, timeMs: T0 });
    expect(obs['imagefs.available']).toBeUndefined();
  });

  it.each([
    ['below the threshold', 99 * Mi, false, true],
    ['exactly at the threshold', 100 * Mi, false, false],
    ['above the threshold but within minimum reclaim', 150 * Mi, true, true],
    ['above threshold + minimum reclaim', 201 * Mi, true, false],
  ])('memory.available<100Mi (min reclaim 100Mi) %s', (_what, available, enforce, met) => {
    const ts = parseThresholdConfig({ hard: { 'memory.available': '100Mi' }, minimumReclaim: { 'memory.available': '100Mi' } });
    const obs = makeSignalObservations({ timeMs: T0, memory: { availableBytes: available, capacityBytes: 8 * Gi }, pods: [] });
    expect(thresholdsMet(ts, obs, enforce).length > 0).toBe(met);
  });
});

describe('ranking', () => {
  it('memory: pods over their requests first, then lower priority, then the largest usage over request', () => {
    const pods = [
      active(pod('guaranteed-under', { memReq: '200Mi', memLim: '200Mi' })),
      active(pod('burstable-over', { memReq: '50Mi' })),
      active(pod('besteffort-small')),
      active(pod('besteffort-big')),
      active(pod('high-prio-over', { priority: 1000 })),
    ];
    const stats = new Map([
      ['uid-guaranteed-under', usage('guaranteed-under', 150 * Mi)],
      ['uid-burstable-over', usage('burstable-over', 100 * Mi)],
      ['uid-besteffort-small', usage('besteffort-small', 10 * Mi)],
      ['uid-besteffort-big', usage('besteffort-big', 300 * Mi)],
      ['uid-high-prio-over', usage('high-prio-over', 900 * Mi)],
    ]);
    const ranked = rankForSignal('memory.available', pods, (u) => stats.get(u), false);
    expect(names(ranked)).toEqual(['besteffort-big', 'burstable-over', 'besteffort-small', 'high-prio-over', 'guaranteed-under']);
  });

  it('memory: a pod without stats goes first', () => {
    const pods = [active(pod('measured')), active(pod('unmeasured'))];
    const stats = new Map([['uid-measured', usage('measured', 500 * Mi)]]);
    expect(names(rankForSignal('memory.available', pods, (u) => stats.get(u), false))).toEqual(['unmeasured', 'measured']);
  });

  it('disk: usage over the ephemeral-storage request, priority, then largest usage over request; imagefs only counts rootfs when dedicated', () => {
    const disk = (name: string, rootfs: number, logs: number): PodUsage => ({ uid: `uid-${name}`, containers: [{ name: 'c', rootfsBytes: rootfs, logsBytes: logs }], volumes: [] });
    const pods = [active(pod('logs-heavy', { esReq: '1Gi' })), active(pod('rootfs-heavy')), active(pod('small'))];
    const stats = new Map([
      ['uid-logs-heavy', disk('logs-heavy', 0, 3 * Gi)],
      ['uid-rootfs-heavy', disk('rootfs-heavy', 2 * Gi, 0)],
      ['uid-small', disk('small', 10 * Mi, 10 * Mi)],
    ]);
    const get = (u: string): PodUsage | undefined => stats.get(u);
    // Shared device: everything counts; logs-heavy is 2Gi over its request, rootfs-heavy 2Gi, small 20Mi.
    expect(names(rankForSignal('nodefs.available', pods, get, false))).toEqual(['logs-heavy', 'rootfs-heavy', 'small']);
    // Dedicated imagefs: only rootfs counts for imagefs; logs-heavy's 0 rootfs is under its request.
    expect(names(rankForSignal('imagefs.available', pods, get, true))).toEqual(['rootfs-heavy', 'small', 'logs-heavy']);
    // ...and only logs + local volumes for nodefs.
    expect(names(rankForSignal('nodefs.available', pods, get, true))).toEqual(['logs-heavy', 'small', 'rootfs-heavy']);
  });

  it('pid: lower priority first, then the most processes', () => {
    const pods = [active(pod('few')), active(pod('many')), active(pod('important', { priority: 10 }))];
    const stats = new Map([
      ['uid-few', usage('few', 0, { processCount: 3 })],
      ['uid-many', usage('many', 0, { processCount: 300 })],
      ['uid-important', usage('important', 0, { processCount: 3000 })],
    ]);
    expect(names(rankForSignal('pid.available', pods, (u) => stats.get(u), false))).toEqual(['many', 'few', 'important']);
  });

  it.each([
    ['a static pod', active(pod('s'), true), true],
    ['a mirror pod', active({ ...pod('m'), metadata: { ...pod('m').metadata, annotations: { 'kubernetes.io/config.mirror': 'h' } } }), true],
    ['priority 2000000000', active(pod('p', { priority: 2_000_000_000 })), true],
    ['priority 1999999999', active(pod('p', { priority: 1_999_999_999 })), false],
    ['system-node-critical without a resolved priority', active(pod('p', { class: 'system-node-critical' })), true],
    ['an ordinary pod', active(pod('p')), false],
  ])('isCriticalPod: %s → %s', (_what, p, critical) => {
    expect(isCriticalPod(p)).toBe(critical);
  });
});

describe('evictionMessage', () => {
  it('names the resource, the threshold, what is available and each container over its request', () => {
    const ts = parseThresholdConfig({ hard: { 'memory.available': '100Mi' } });
    const obs = makeSignalObservations({ timeMs: T0, memory: { availableBytes: 92 * Mi, capacityBytes: 8 * Gi }, pods: [] });
    const p = pod('web');
    const m = evictionMessage('memory', p, usage('web', 120 * Mi), ts, obs);
    expect(m.message).toBe(
      'The node was low on resource: memory. Threshold quantity: 100Mi, available: 92Mi. Container c was using 120Mi, request is 0, has larger consumption of memory. ',
    );
    expect(m.annotations).toEqual({ offending_containers: 'c', offending_containers_usage: '120Mi', starved_resource: 'memory' });
  });

  it('leaves out containers within their request, and prints a percentage threshold as a quantity', () => {
    const ts = parseThresholdConfig({ hard: { 'nodefs.available': '10%' } });
    const obs = makeSignalObservations({ timeMs: T0, nodeFs: { availableBytes: 5 * Gi, capacityBytes: 100 * Gi }, pods: [] });
    const p = pod('web', { esReq: '1Gi' });
    const u: PodUsage = { uid: 'uid-web', containers: [{ name: 'c', rootfsBytes: 100 * Mi, logsBytes: 100 * Mi }], volumes: [] };
    const q = Math.trunc(100 * Gi * Math.fround(0.1));
    expect(evictionMessage('ephemeral-storage', p, u, ts, obs).message).toBe(
      `The node was low on resource: ephemeral-storage. Threshold quantity: ${q}, available: 5Gi. `,
    );
  });
});

describe('computeEvictionPlan', () => {
  const hard = parseThresholdConfig({ hard: { 'memory.available': '100Mi' } });
  const statsAt = (t: number, availableMi: number, pods: PodUsage[] = []): EvictionStats => ({
    timeMs: t,
    memory: { availableBytes: availableMi * Mi, capacityBytes: 8 * Gi },
    pods,
  });
  const run = (thresholds: Threshold[], stats: EvictionStats, now: number, state: EvictionState, pods: ActivePod[] = [], maxGrace = 0): EvictionPlan =>
    computeEvictionPlan({ thresholds, stats, pods, now, state, pressureTransitionPeriodMs: 300_000, maxPodGracePeriodSeconds: maxGrace, dedicatedImageFs: false });

  it('under the threshold: MemoryPressure and the lowest-ranked non-critical pod evicted with grace 0', () => {
    const pods = [active(pod('static'), true), active(pod('web'))];
    const plan = run(hard, statsAt(T0, 92, [usage('static', 900 * Mi), usage('web', 120 * Mi)]), T0, INITIAL_EVICTION_STATE, pods);
    expect(plan.conditions).toEqual(['MemoryPressure']);
    expect(plan.reclaim?.resource).toBe('memory');
    expect(plan.reclaim?.nodeLevel).toEqual([]);
    expect(names(plan.reclaim!.ranked)).toEqual(['static', 'web']);
    expect(plan.reclaim?.evict?.pod.metadata?.name).toBe('web');
    expect(plan.reclaim?.evict?.gracePeriodSeconds).toBe(0);
  });

  it('only critical pods: pressure is reported, nothing is evicted', () => {
    const plan = run(hard, statsAt(T0, 50), T0, INITIAL_EVICTION_STATE, [active(pod('s'), true), active(pod('c', { priority: 2_000_001_000 }))]);
    expect(plan.conditions).toEqual(['MemoryPressure']);
    expect(plan.reclaim?.evict).toBeUndefined();
  });

  it('disk pressure reclaims node-level resources (containers, then images) before evicting', () => {
    const ts = parseThresholdConfig({ hard: { 'imagefs.available': '15%' } });
    const stats: EvictionStats = { timeMs: T0, imageFs: { availableBytes: 10 * Gi, capacityBytes: 100 * Gi }, pods: [] };
    const plan = run(ts, stats, T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    expect(plan.conditions).toEqual(['DiskPressure']);
    expect(plan.reclaim?.nodeLevel).toEqual(['containers', 'images']);
    expect(plan.reclaim?.resource).toBe('ephemeral-storage');
  });

  it('memory is reclaimed before disk when both are met', () => {
    const ts = parseThresholdConfig({ hard: { 'nodefs.available': '10%', 'memory.available': '100Mi' } });
    const stats: EvictionStats = { ...statsAt(T0, 10), nodeFs: { availableBytes: 1, capacityBytes: 100 }, pods: [] };
    const plan = run(ts, stats, T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    expect(plan.conditions).toEqual(['MemoryPressure', 'DiskPressure']);
    expect(plan.reclaim?.threshold.signal).toBe('memory.available');
  });

  it('the condition stays True for the transition period after the signal recovers, then clears', () => {
    const p1 = run(hard, statsAt(T0, 50), T0, INITIAL_EVICTION_STATE);
    const p2 = run(hard, statsAt(T0 + 10_000, 4000), T0 + 10_000, p1.state);
    expect(p2.conditions).toEqual(['MemoryPressure']);
    expect(p2.reclaim).toBeUndefined();
    const p3 = run(hard, statsAt(T0 + 299_999, 4000), T0 + 299_999, p2.state);
    expect(p3.conditions).toEqual(['MemoryPressure']);
    const p4 = run(hard, statsAt(T0 + 300_000, 4000), T0 + 300_000, p3.state);
    expect(p4.conditions).toEqual([]);
  });

  it('a soft threshold reports pressure at once but evicts only after its grace period, with --eviction-max-pod-grace-period', () => {
    const soft = parseThresholdConfig({ hard: {}, soft: { 'memory.available': '1Gi' }, softGracePeriod: { 'memory.available': '1m' } });
    const pods = [active(pod('web'))];
    const p1 = run(soft, statsAt(T0, 500), T0, INITIAL_EVICTION_STATE, pods, 30);
    expect(p1.conditions).toEqual(['MemoryPressure']);
    expect(p1.reclaim).toBeUndefined();
    const p2 = run(soft, statsAt(T0 + 59_000, 500), T0 + 59_000, p1.state, pods, 30);
    expect(p2.reclaim).toBeUndefined();
    const p3 = run(soft, statsAt(T0 + 60_000, 500), T0 + 60_000, p2.state, pods, 30);
    expect(p3.reclaim?.evict?.pod.metadata?.name).toBe('web');
    expect(p3.reclaim?.evict?.gracePeriodSeconds).toBe(30);
  });

  it('a soft threshold that recovers before its grace period restarts its clock', () => {
    const soft = parseThresholdConfig({ hard: {}, soft: { 'memory.available': '1Gi' }, softGracePeriod: { 'memory.available': '1m' } });
    const p1 = run(soft, statsAt(T0, 500), T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    const p2 = run(soft, statsAt(T0 + 30_000, 4000), T0 + 30_000, p1.state, [active(pod('web'))]);
    const p3 = run(soft, statsAt(T0 + 61_000, 500), T0 + 61_000, p2.state, [active(pod('web'))]);
    expect(p3.reclaim).toBeUndefined();
  });

  it('a met threshold stays met until its minimum reclaim is satisfied', () => {
    const ts = parseThresholdConfig({ hard: { 'memory.available': '100Mi' }, minimumReclaim: { 'memory.available': '200Mi' } });
    const p1 = run(ts, statsAt(T0, 90), T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    const p2 = run(ts, statsAt(T0 + 10_000, 250), T0 + 10_000, p1.state, [active(pod('web'))]);
    expect(p2.reclaim?.evict?.pod.metadata?.name).toBe('web');
    const p3 = run(ts, statsAt(T0 + 20_000, 301), T0 + 20_000, p2.state, [active(pod('web'))]);
    expect(p3.reclaim).toBeUndefined();
  });

  it('does not act twice on the same stats (thresholdsUpdatedStats)', () => {
    const p1 = run(hard, statsAt(T0, 50), T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    const p2 = run(hard, statsAt(T0, 50), T0 + 10_000, p1.state, [active(pod('web'))]);
    expect(p2.conditions).toEqual(['MemoryPressure']);
    expect(p2.reclaim).toBeUndefined();
  });

  it('an unknown signal never signals pressure', () => {
    const plan = run(parseThresholdConfig({}), { timeMs: T0, pods: [] }, T0, INITIAL_EVICTION_STATE, [active(pod('web'))]);
    expect(plan.conditions).toEqual([]);
    expect(plan.reclaim).toBeUndefined();
  });
});

describe('admitUnderPressure', () => {
  const tolerating = pod('tol', { tolerations: [{ key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' }] });
  it.each([
    ['no pressure: everything', pod('be'), [], true],
    ['memory pressure: BestEffort rejected', pod('be'), ['MemoryPressure'], false],
    ['memory pressure: Burstable admitted', pod('b', { memReq: '10Mi' }), ['MemoryPressure'], true],
    ['memory pressure: BestEffort tolerating the taint admitted', tolerating, ['MemoryPressure'], true],
    ['disk pressure: Burstable rejected', pod('b', { memReq: '10Mi' }), ['DiskPressure'], false],
    ['memory + disk pressure: tolerating BestEffort rejected', tolerating, ['MemoryPressure', 'DiskPressure'], false],
    ['disk pressure: critical pod admitted', pod('c', { priority: 2_000_001_000 }), ['DiskPressure'], true],
  ] as const)('%s', (_what, p, conditions, admit) => {
    expect(admitUnderPressure(active(p), [...conditions]).admit).toBe(admit);
  });

  it('rejects with reason Evicted and upstream\'s message', () => {
    expect(admitUnderPressure(active(pod('be')), ['MemoryPressure', 'DiskPressure'])).toEqual({
      admit: false,
      reason: 'Evicted',
      message: 'The node had condition: [MemoryPressure DiskPressure]. ',
    });
  });
});
