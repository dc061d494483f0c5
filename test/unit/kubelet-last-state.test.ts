// The previous instance (lastState, what `kubectl logs --previous` reads) from the moment a new instance exists:
// computePodStatus with `restarting` (the pod worker's status after a sync that started a new instance, from the
// snapshot taken before it), and a timeline of planner + status syncs checking that every status berth publishes
// names a previous instance that still exists — also while the sync's garbage collection runs.
import { describe, expect, it } from 'vitest';
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import type { ContainerStatus } from '../../src/cri/index.ts';
import { backoffEntryOf, type BackoffPolicy } from '../../src/kubelet/pod/crash-loop-backoff.ts';
import { restartCountOf } from '../../src/kubelet/pod/observed.ts';
import { computePodActions } from '../../src/kubelet/pod/pod-actions.ts';
import { computePodStatus, type WaitingReason } from '../../src/kubelet/pod/pod-status.ts';
import { T0, exited, min, pod, running, sandbox, sec, seen } from './helpers/kubelet-fixtures.ts';

const crashLoop: WaitingReason = { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=app pod=web_default(uid-1)' };
const id = (cs: { containerID?: string } | undefined): string | undefined => cs?.containerID?.replace('docker://', '');

describe('computePodStatus: lastState when the sync started a new instance (restarting)', () => {
  const e1 = exited('app', { id: 'e1', restartCount: 1, exitCode: 1 });
  const e0 = exited('app', { id: 'e0', restartCount: 0, exitCode: 2 });
  const cases: {
    name: string;
    p?: Pod;
    s: ContainerStatus[];
    previous?: PodStatus['containerStatuses'];
    reasons?: Record<string, WaitingReason>;
    restarting: string[];
    state: unknown;
    last: string | undefined;
  }[] = [
    {
      name: 'back-off over, new instance started: the back-off status stays, lastState = the instance that died',
      s: [e1],
      previous: [{ name: 'app', image: 'x', imageID: '', ready: false, restartCount: 1, state: { waiting: crashLoop }, lastState: { terminated: { exitCode: 1, containerID: 'docker://e1' } } }],
      restarting: ['app'],
      state: { waiting: crashLoop },
      last: 'e1',
    },
    {
      name: 'restarted at once (no back-off): waiting for the new instance, lastState = the one that died, not the one before',
      s: [e1, e0],
      previous: [{ name: 'app', image: 'x', imageID: '', ready: true, restartCount: 1, state: { running: { startedAt: 'x' } }, lastState: { terminated: { exitCode: 2, containerID: 'docker://e0' } } }],
      restarting: ['app'],
      state: { waiting: {} },
      last: 'e1',
    },
    { name: 'first crash restarted at once: lastState = instance 0', s: [e0], restarting: ['app'], state: { waiting: {} }, last: 'e0' },
    {
      name: 'the start failed: its reason, lastState = the instance that died',
      s: [e1, e0],
      reasons: { app: { reason: 'RunContainerError', message: 'boom' } },
      restarting: ['app'],
      state: { waiting: { reason: 'RunContainerError', message: 'boom' } },
      last: 'e1',
    },
    { name: 'nothing started: upstream shape (terminated, lastState = the instance before)', s: [e1, e0], restarting: [], state: { terminated: expect.objectContaining({ containerID: 'docker://e1' }) }, last: 'e0' },
    {
      name: 'a running newest instance (spec change: killed and started): unchanged',
      s: [running('app', { id: 'r1', restartCount: 1 }), e0],
      restarting: ['app'],
      state: { running: expect.anything() },
      last: 'e0',
    },
    {
      name: 'init container restarted after a failure: lastState = the failed instance',
      p: pod({ initContainers: ['init'], containers: ['app'] }),
      s: [exited('init', { id: 'i0', init: true, exitCode: 1 })],
      restarting: ['init'],
      state: { waiting: {} },
      last: 'i0',
    },
  ];
  it.each(cases)('$name', ({ p = pod(), s, previous, reasons, restarting, state, last }) => {
    const st = computePodStatus({
      pod: p,
      seen: seen(sandbox(), ...s),
      reasons: new Map(Object.entries(reasons ?? {})),
      hostIP: '192.168.1.10',
      previous: previous ? { containerStatuses: previous } : undefined,
      now: T0 + min(5),
      restarting: new Set(restarting),
    });
    const cs = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])].find((c) => c.name === (restarting[0] ?? 'app'));
    expect(cs?.state).toEqual(state);
    expect(id(cs?.lastState?.terminated)).toBe(last);
    // A waiting or terminated container with a last termination keeps the pod Running (restartPolicy Always).
    if (!p.spec?.initContainers) expect(st.phase).toBe('Running');
  });
});

/**
 * A pod worker over a simulated runtime: each sync plans from a snapshot, applies the plan (removals, starts, reason
 * cache), then publishes the status from that same snapshot, as kubelet.ts does. Instances run `lifeMs` and die; the
 * PLEG sees a change `plegMs` later. From the moment instance 1 exists, every published status — also the old one
 * while the sync removes garbage — must name a previous instance that still exists, and never one older than the
 * instance before the newest.
 */
function simulate(o: { lifeMs: number; syncs: number; policy: BackoffPolicy; plegMs?: number }): { restarts: number; checks: number } {
  const plegMs = o.plegMs ?? 300;
  const p = pod();
  const runtime = new Map<string, ContainerStatus>();
  const rcOf = new Map<string, number>();
  const reasons = new Map<string, WaitingReason>();
  let published: PodStatus | undefined;
  let now = T0;
  let next = 0;
  let checks = 0;
  const start = (restartCount: number, backoff?: { durationMs: number; updatedAt: number }): void => {
    const c = running('app', { id: `app-${restartCount}`, restartCount, createdAt: now, startedAt: now + 1, backoff });
    runtime.set(c.id, c);
    rcOf.set(c.id, restartCount);
  };
  const check = (when: string): void => {
    const newest = Math.max(...[...runtime.values()].map(restartCountOf));
    if (![...rcOf.values()].some((rc) => rc >= 1)) return;
    const last = id(published?.containerStatuses?.[0]?.lastState?.terminated);
    expect(last, `${when}: lastState at ${now - T0} ms (newest instance ${newest})`).toBeDefined();
    expect(runtime.has(last!), `${when}: lastState ${last} still exists`).toBe(true);
    expect(rcOf.get(last!)!, `${when}: lastState ${last} is the instance before the newest (${newest}) or newer`).toBeGreaterThanOrEqual(newest - 1);
    checks++;
  };
  start(0);
  for (let i = 0; i < o.syncs; i++) {
    // Deaths up to now.
    for (const c of runtime.values())
      if (c.state === 'CONTAINER_RUNNING' && c.startedAt + o.lifeMs <= now)
        runtime.set(c.id, exited('app', { id: c.id, restartCount: restartCountOf(c), createdAt: c.createdAt, startedAt: c.startedAt, finishedAt: c.startedAt + o.lifeMs, exitCode: 1, backoff: backoffEntryOf(c) }));
    const snapshot = seen(sandbox(), ...runtime.values());
    const a = computePodActions({ pod: p, seen: snapshot, now, backoff: o.policy });
    for (const b of a.backingOff) reasons.set(b.name, crashLoop);
    for (const rid of a.removeContainers) runtime.delete(rid);
    check('during the sync, after garbage removal');
    for (const s of a.start) {
      start(s.restartCount, s.backoff);
      reasons.delete(s.spec.name);
    }
    published = computePodStatus({ pod: p, seen: snapshot, reasons, hostIP: '10.0.0.1', previous: published, now, restarting: new Set(a.start.map((s) => s.spec.name)) });
    check('after the sync');
    // Next sync: the PLEG seeing a start or a death, or the back-off requeue, whichever comes first.
    const candidates = [...runtime.values()].flatMap((c) => (c.state === 'CONTAINER_RUNNING' ? [c.startedAt + plegMs, c.startedAt + o.lifeMs + plegMs] : []));
    if (a.requeueAfterMs !== undefined) candidates.push(now + a.requeueAfterMs);
    next = Math.min(...candidates.filter((t) => t > now), now + min(1));
    now = next;
  }
  return { restarts: Math.max(...rcOf.values()), checks };
}

describe('planner + status over a crash loop: --previous always has an instance to read', () => {
  const cases = [
    { name: 'fast crashes through the back-off (10 s … 5 min)', lifeMs: 200, policy: { initialMs: sec(10), maxMs: min(5) } },
    { name: 'a 1 s back-off shorter than the PLEG delay', lifeMs: 200, policy: { initialMs: sec(1), maxMs: sec(4) }, plegMs: 1500 },
    // A periodic resync every minute: 200 syncs are a few hours.
    { name: 'long runs: the back-off entry expired, restarted at once', lifeMs: min(25), policy: { initialMs: sec(10), maxMs: min(5) }, syncs: 200 },
  ];
  it.each(cases)('$name', ({ lifeMs, policy, plegMs, syncs }) => {
    const r = simulate({ lifeMs, syncs: syncs ?? 40, policy, plegMs });
    expect(r.restarts).toBeGreaterThanOrEqual(5);
    expect(r.checks).toBeGreaterThan(20);
  });
});
