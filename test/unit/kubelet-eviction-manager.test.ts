// The eviction manager's loop with fakes for stats, pods and the kubelet: node-level reclaim comes before any
// eviction and is enough when it brings every signal back above threshold + minimum reclaim; otherwise one pod
// is evicted (Evicted event with the message, grace 0 for a hard threshold) and the manager waits for it to be
// cleaned up; conditions are published and a change is signalled once.
import { describe, it, expect } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1';
import { EvictionManager, parseThresholdConfig, type EvictionStats } from '../../src/kubelet/eviction/index.ts';
import { MemoryRecorder } from '../../src/kubelet/status/events.ts';
import { createLogger } from '../../src/lib/index.ts';

const Gi = 2 ** 30;
const log = createLogger({ level: 'silent' });
const pod = (name: string): Pod => ({ metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: { containers: [{ name: 'c', image: 'i' }] } });

function setup(o: { imagefsAfterReclaim: number; pods?: Pod[] }) {
  let available = 5 * Gi; // of 100 Gi: below imagefs.available<15%
  let t = Date.now();
  const calls: string[] = [];
  const stats = async (): Promise<EvictionStats> => ({ timeMs: ++t, imageFs: { availableBytes: available, capacityBytes: 100 * Gi }, pods: [] });
  const recorder = new MemoryRecorder({ log });
  const changes: string[][] = [];
  const m = new EvictionManager({
    thresholds: parseThresholdConfig({ hard: { 'imagefs.available': '15%' } }),
    pressureTransitionPeriodMs: 300_000,
    maxPodGracePeriodSeconds: 0,
    stats,
    dedicatedImageFs: async () => false,
    activePods: () => (o.pods ?? [pod('web')]).map((p) => ({ pod: p, isStatic: false })),
    evictPod: async (p, e) => void calls.push(`evict ${p.metadata?.name} grace=${e.gracePeriodSeconds} ${e.reason}`),
    podCleanedUp: () => true,
    reclaim: {
      containers: async () => void calls.push('containers'),
      images: async () => {
        calls.push('images');
        available = o.imagefsAfterReclaim;
      },
    },
    recorder,
    nodeRef: { kind: 'Node', name: 'n' },
    onConditionsChanged: (c) => void changes.push([...c]),
    monitoringPeriodMs: 60_000,
    log,
  });
  return { m, calls, recorder, changes };
}

describe('EvictionManager', () => {
  it('reclaims containers then images first, and evicts nothing when that frees enough', async () => {
    const { m, calls, recorder, changes } = setup({ imagefsAfterReclaim: 50 * Gi });
    m.start();
    await m.idle();
    m.stop();
    expect(calls).toEqual(['containers', 'images']);
    expect(m.pressure()).toEqual({ memory: false, disk: true, pid: false });
    expect(changes).toEqual([['DiskPressure']]);
    expect(recorder.all().map((e) => `${e.type} ${e.reason} ${e.message}`)).toEqual(['Warning EvictionThresholdMet Attempting to reclaim ephemeral-storage']);
  });

  it('evicts one pod with grace 0 and an Evicted event when node-level reclaim is not enough', async () => {
    const { m, calls, recorder } = setup({ imagefsAfterReclaim: 6 * Gi, pods: [pod('a'), pod('b')] });
    m.start();
    await m.idle();
    m.stop();
    expect(calls).toEqual(['containers', 'images', 'evict a grace=0 Evicted']);
    const evicted = recorder.all().find((e) => e.reason === 'Evicted');
    expect(evicted?.object.name).toBe('a');
    expect(evicted?.message).toMatch(/^The node was low on resource: ephemeral-storage\. Threshold quantity: \d+, available: 5Gi\. $/);
  });

  it('admits under pressure as upstream once conditions are known', async () => {
    const { m } = setup({ imagefsAfterReclaim: 50 * Gi });
    expect(m.admit(pod('x'), false).admit).toBe(true);
    m.start();
    await m.idle();
    m.stop();
    expect(m.admit(pod('x'), false)).toEqual({ admit: false, reason: 'Evicted', message: 'The node had condition: [DiskPressure]. ' });
    expect(m.admit(pod('x'), true).admit).toBe(true);
  });
});
