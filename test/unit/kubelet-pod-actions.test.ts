// computePodActions against upstream kuberuntime_manager.go (computePodActions, podSandboxChanged,
// findNextInitContainerToRun), kuberuntime_container.go (doBackOff, isInitContainerFailed) and the container GC
// (MaxPerPodContainer = 1).
import { describe, expect, it } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1';
import { DEFAULT_CRASH_BACKOFF } from '../../src/kubelet/pod/crash-loop-backoff.ts';
import type { ObservedPod } from '../../src/kubelet/pod/observed.ts';
import { computePodActions, containerHash, type PodActions, type ProbeVerdict } from '../../src/kubelet/pod/pod-actions.ts';
import { T0, created, exited, min, pod, running, sandbox, sec, seen, spec, specOf, unknown } from './helpers/kubelet-fixtures.ts';

const NOW = T0 + min(30);

function plan(p: Pod, s: ObservedPod, o: { now?: number; liveness?: ProbeVerdict; startup?: ProbeVerdict } = {}): PodActions {
  return computePodActions({ pod: p, seen: s, now: o.now ?? NOW, backoff: DEFAULT_CRASH_BACKOFF, liveness: o.liveness, startup: o.startup });
}
const started = (a: PodActions): string[] => a.start.map((c) => `${c.kind}:${c.spec.name}`);

describe('computePodActions: sandbox', () => {
  it('fresh pod: creates a sandbox (attempt 0) and starts every app container with restartCount 0', () => {
    const p = pod({ containers: ['app', 'sidecar'] });
    const a = plan(p, seen());
    expect(a).toMatchObject({ createSandbox: true, killPod: true, attempt: 0, kill: [], backingOff: [] });
    expect(started(a)).toEqual(['app:app', 'app:sidecar']);
    expect(a.start.map((c) => c.restartCount)).toEqual([0, 0]);
    expect(a.start.every((c) => c.backoff === undefined)).toBe(true);
    expect(a.requeueAfterMs).toBeUndefined();
  });

  it('fresh pod with init containers: only the first init container is started', () => {
    const a = plan(pod({ initContainers: ['init-a', 'init-b'], containers: ['app'] }), seen());
    expect(a.createSandbox).toBe(true);
    expect(started(a)).toEqual(['init:init-a']);
  });

  const cases: { name: string; p: Pod; s: ObservedPod; attempt: number; sandboxId: string }[] = [
    {
      name: 'sandbox not ready',
      p: pod(),
      s: seen(sandbox({ attempt: 3, ready: false }), exited('app', { sandboxId: 'sb-3' })),
      attempt: 4,
      sandboxId: 'sb-3',
    },
    { name: 'ready sandbox without an IP', p: pod(), s: seen(sandbox({ attempt: 1, ip: '' })), attempt: 2, sandboxId: 'sb-1' },
    { name: 'two ready sandboxes', p: pod(), s: seen(sandbox({ attempt: 0 }), sandbox({ attempt: 1 })), attempt: 2, sandboxId: 'sb-1' },
    { name: 'hostNetwork changed (pod now hostNetwork)', p: pod({ hostNetwork: true }), s: seen(sandbox({ attempt: 0 })), attempt: 1, sandboxId: 'sb-0' },
  ];
  it.each(cases)('$name → kill the pod and create a new sandbox with attempt+1', ({ p, s, attempt, sandboxId }) => {
    const a = plan(p, s);
    expect(a).toMatchObject({ killPod: true, createSandbox: true, attempt });
    expect(a.sandboxId === sandboxId || a.sandboxId === undefined).toBe(true);
    expect(started(a)).toEqual(['app:app']);
  });

  it('ready sandbox with IP and matching network mode → keep it', () => {
    const p = pod();
    const a = plan(p, seen(sandbox({ attempt: 2 }), running('app', { spec: specOf(p, 'app'), sandboxId: 'sb-2' })));
    expect(a).toMatchObject({ killPod: false, createSandbox: false, sandboxId: 'sb-2', attempt: 2, start: [], kill: [] });
  });

  it('hostNetwork pod: a host-network sandbox without an IP is fine', () => {
    const p = pod({ hostNetwork: true });
    const a = plan(p, seen(sandbox({ hostNetwork: true }), running('app', { spec: specOf(p, 'app') })));
    expect(a.createSandbox).toBe(false);
    expect(a.killPod).toBe(false);
  });

  it('Never + dead sandbox + containers exited → no new sandbox, just kill the pod', () => {
    const p = pod({ restartPolicy: 'Never' });
    const a = plan(p, seen(sandbox({ ready: false }), exited('app', { exitCode: 1 })));
    expect(a).toMatchObject({ killPod: true, createSandbox: false, start: [] });
  });

  it('Never + dead sandbox + no container ever created → retry the sandbox', () => {
    const a = plan(pod({ restartPolicy: 'Never' }), seen(sandbox({ ready: false, attempt: 0 })));
    expect(a).toMatchObject({ killPod: true, createSandbox: true, attempt: 1 });
    expect(started(a)).toEqual(['app:app']);
  });

  it('OnFailure + dead sandbox: succeeded containers are not started again', () => {
    const p = pod({ restartPolicy: 'OnFailure', containers: ['ok', 'bad'] });
    const a = plan(p, seen(sandbox({ ready: false }), exited('ok', { exitCode: 0 }), exited('bad', { exitCode: 2 })));
    expect(a.createSandbox).toBe(true);
    expect(started(a)).toEqual(['app:bad']);
  });

  it('OnFailure + dead sandbox + everything succeeded → no new sandbox', () => {
    const p = pod({ restartPolicy: 'OnFailure' });
    const a = plan(p, seen(sandbox({ ready: false }), exited('app', { exitCode: 0 })));
    expect(a).toMatchObject({ killPod: true, createSandbox: false, start: [] });
  });
});

describe('computePodActions: restart policy for exited containers (ready sandbox)', () => {
  const table = [
    { policy: 'Always', exitCode: 0, restart: true },
    { policy: 'Always', exitCode: 1, restart: true },
    { policy: 'OnFailure', exitCode: 0, restart: false },
    { policy: 'OnFailure', exitCode: 137, restart: true },
    { policy: 'Never', exitCode: 0, restart: false },
    { policy: 'Never', exitCode: 1, restart: false },
  ] as const;
  it.each(table)('$policy, exit $exitCode → restart=$restart', ({ policy, exitCode, restart }) => {
    const p = pod({ restartPolicy: policy });
    const a = plan(p, seen(sandbox(), exited('app', { exitCode, restartCount: 2, spec: specOf(p, 'app') })));
    expect(a.createSandbox).toBe(false);
    if (restart) {
      expect(started(a)).toEqual(['app:app']);
      expect(a.start[0]!.restartCount).toBe(3);
      // First restart without a recorded back-off: immediate, and the first back-off (10s) is recorded.
      expect(a.start[0]!.backoff?.durationMs).toBe(10_000);
      expect(a.killPod).toBe(false);
    } else {
      expect(a.start).toEqual([]);
      expect(a.backingOff).toEqual([]);
      // Nothing running and nothing to start: upstream kills the pod (sandbox).
      expect(a.killPod).toBe(true);
    }
  });

  it('Never: one container still running, one exited → keep the pod, start nothing', () => {
    const p = pod({ restartPolicy: 'Never', containers: ['a', 'b'] });
    const a = plan(p, seen(sandbox(), running('a', { spec: specOf(p, 'a') }), exited('b', { exitCode: 1 })));
    expect(a).toMatchObject({ killPod: false, createSandbox: false, start: [], kill: [] });
  });

  it('a container that never existed in a ready sandbox is started', () => {
    const p = pod({ containers: ['a', 'b'] });
    const a = plan(p, seen(sandbox(), running('a', { spec: specOf(p, 'a') })));
    expect(started(a)).toEqual(['app:b']);
    expect(a.start[0]!.restartCount).toBe(0);
  });

  it('a deleted pod never restarts its containers', () => {
    const p = pod({ deletionTimestamp: '2024-01-01T00:00:00Z' });
    const a = plan(p, seen(sandbox(), exited('app', { exitCode: 1 })));
    expect(a.start).toEqual([]);
    expect(a.killPod).toBe(true);
  });
});

describe('computePodActions: running containers that must be killed', () => {
  it('spec hash changed → kill and restart, whatever the restart policy', () => {
    const p = pod({ restartPolicy: 'Never' });
    const a = plan(p, seen(sandbox(), running('app', { hash: 'deadbeef' })));
    expect(a.kill).toEqual([{ id: 'app-0', name: 'app', reason: 'SpecChanged', message: 'Container app definition changed, will be restarted' }]);
    expect(started(a)).toEqual(['app:app']);
    expect(a.start[0]!.restartCount).toBe(1);
    expect(a.killPod).toBe(false);
  });

  it('unchanged hash → the running container is kept', () => {
    const p = pod();
    const a = plan(p, seen(sandbox(), running('app', { hash: containerHash(specOf(p, 'app')) })));
    expect(a.kill).toEqual([]);
    expect(a.start).toEqual([]);
  });

  it('changing one field of the spec changes the hash', () => {
    const before = spec('app', { args: ['--port=80'] });
    const after = spec('app', { args: ['--port=81'] });
    expect(containerHash(before)).not.toBe(containerHash(after));
    expect(containerHash(before)).toBe(containerHash(structuredClone(before)));
  });

  it('liveness failure with Always → kill and restart', () => {
    const p = pod();
    const a = plan(p, seen(sandbox(), running('app', { spec: specOf(p, 'app') })), { liveness: (id) => (id === 'app-0' ? 'failure' : undefined) });
    expect(a.kill).toEqual([{ id: 'app-0', name: 'app', reason: 'LivenessProbe', message: 'Container app failed liveness probe, will be restarted' }]);
    expect(started(a)).toEqual(['app:app']);
    expect(a.killPod).toBe(false);
  });

  it('liveness failure with Never → kill without restart; nothing left so the pod is killed', () => {
    const p = pod({ restartPolicy: 'Never' });
    const a = plan(p, seen(sandbox(), running('app', { spec: specOf(p, 'app') })), { liveness: () => 'failure' });
    expect(a.kill).toEqual([{ id: 'app-0', name: 'app', reason: 'LivenessProbe', message: 'Container app failed liveness probe' }]);
    expect(a.start).toEqual([]);
    expect(a.killPod).toBe(true);
  });

  it('startup probe failure → kill with reason StartupProbe', () => {
    const p = pod();
    const a = plan(p, seen(sandbox(), running('app', { spec: specOf(p, 'app') })), { startup: () => 'failure' });
    expect(a.kill[0]).toMatchObject({ reason: 'StartupProbe', message: 'Container app failed startup probe, will be restarted' });
    expect(started(a)).toEqual(['app:app']);
  });

  it('created but never started → removed (kill reason Created) and started again', () => {
    const p = pod();
    const a = plan(p, seen(sandbox(), created('app', { id: 'c1', restartCount: 0 })));
    expect(a.kill).toEqual([expect.objectContaining({ id: 'c1', name: 'app', reason: 'Created' })]);
    expect(started(a)).toEqual(['app:app']);
    expect(a.start[0]!.restartCount).toBe(1);
    expect(a.removeContainers).not.toContain('c1');
  });

  it('unknown state → killed (reason Unknown) before restart', () => {
    const a = plan(pod(), seen(sandbox(), unknown('app', { id: 'u1' })));
    expect(a.kill).toEqual([expect.objectContaining({ id: 'u1', reason: 'Unknown' })]);
    expect(started(a)).toEqual(['app:app']);
  });
});

describe('computePodActions: init containers', () => {
  const inits = ['init-a', 'init-b'];

  it('runs init containers in order: first done → start the second', () => {
    const a = plan(pod({ initContainers: inits }), seen(sandbox(), exited('init-a', { init: true, exitCode: 0 })));
    expect(started(a)).toEqual(['init:init-b']);
    expect(a.killPod).toBe(false);
  });

  it('an init container still running → nothing to do', () => {
    const a = plan(pod({ initContainers: inits }), seen(sandbox(), running('init-a', { init: true })));
    expect(a).toMatchObject({ start: [], kill: [], killPod: false, createSandbox: false });
  });

  it('all init containers done → start the app containers', () => {
    const a = plan(
      pod({ initContainers: inits, containers: ['app', 'side'] }),
      seen(sandbox(), exited('init-a', { init: true, createdAt: T0 + sec(1) }), exited('init-b', { init: true, createdAt: T0 + sec(3) })),
    );
    expect(started(a)).toEqual(['app:app', 'app:side']);
  });

  it('failed init container with Always → restart that init container (not the next one)', () => {
    const a = plan(
      pod({ initContainers: inits }),
      seen(sandbox(), exited('init-a', { init: true, createdAt: T0 + sec(1) }), exited('init-b', { init: true, exitCode: 1, createdAt: T0 + sec(3) })),
    );
    expect(started(a)).toEqual(['init:init-b']);
    expect(a.start[0]!.restartCount).toBe(1);
    expect(a.killPod).toBe(false);
  });

  it('failed init container with OnFailure → restart it', () => {
    const a = plan(pod({ initContainers: inits, restartPolicy: 'OnFailure' }), seen(sandbox(), exited('init-a', { init: true, exitCode: 1 })));
    expect(started(a)).toEqual(['init:init-a']);
  });

  it('failed init container with Never → kill the pod, start nothing', () => {
    const a = plan(pod({ initContainers: inits, restartPolicy: 'Never' }), seen(sandbox(), exited('init-a', { init: true, exitCode: 1 })));
    expect(a).toMatchObject({ killPod: true, createSandbox: false, start: [] });
  });

  it('an OOMKilled init container is a failure even with exit code 0 (isInitContainerFailed)', () => {
    const a = plan(
      pod({ initContainers: inits, restartPolicy: 'Never' }),
      seen(sandbox(), exited('init-a', { init: true, exitCode: 0, reason: 'OOMKilled' })),
    );
    expect(a).toMatchObject({ killPod: true, start: [] });
  });

  it('init container in unknown state → killed and restarted', () => {
    const a = plan(pod({ initContainers: inits }), seen(sandbox(), unknown('init-a', { init: true, id: 'u-init' })));
    expect(a.kill.map((k) => k.id)).toEqual(['u-init']);
    expect(started(a)).toEqual(['init:init-a']);
  });

  it('an app container already running means initialization is done (init containers gone)', () => {
    const p = pod({ initContainers: inits });
    const a = plan(p, seen(sandbox(), running('app', { spec: specOf(p, 'app') })));
    expect(a).toMatchObject({ start: [], kill: [], killPod: false });
  });
});

describe('computePodActions: nothing left to run', () => {
  it('all containers done and none restarting → killPod (sandbox is stopped)', () => {
    const p = pod({ restartPolicy: 'OnFailure', containers: ['a', 'b'] });
    const a = plan(p, seen(sandbox(), exited('a', { exitCode: 0 }), exited('b', { exitCode: 0 })));
    expect(a).toMatchObject({ killPod: true, createSandbox: false, start: [], backingOff: [] });
  });
});

describe('computePodActions: crash-loop back-off (doBackOff)', () => {
  const crashed = (o: { durationMs: number; finishedAt: number; restartCount?: number }) =>
    exited('app', {
      exitCode: 1,
      restartCount: o.restartCount ?? 3,
      createdAt: o.finishedAt - sec(1),
      finishedAt: o.finishedAt,
      backoff: { durationMs: o.durationMs, updatedAt: o.finishedAt - sec(1) },
    });

  it('inside the back-off window: not started, CrashLoopBackOff message and requeue at expiry', () => {
    const p = pod();
    const a = plan(p, seen(sandbox(), crashed({ durationMs: 10_000, finishedAt: NOW - sec(4) })));
    expect(a.start).toEqual([]);
    expect(a.backingOff).toEqual([
      { name: 'app', kind: 'app', message: 'back-off 10s restarting failed container=app pod=web_default(uid-1)', retryInMs: 6000 },
    ]);
    expect(a.requeueAfterMs).toBe(6000);
    // The container is still meant to run: the sandbox is not killed.
    expect(a.killPod).toBe(false);
    expect(a.createSandbox).toBe(false);
  });

  it.each([
    [20_000, '20s'],
    [80_000, '1m20s'],
    [300_000, '5m0s'],
  ])('message prints the back-off like Go (%i ms → %s)', (durationMs, text) => {
    const a = plan(pod(), seen(sandbox(), crashed({ durationMs, finishedAt: NOW - sec(1) })));
    expect(a.backingOff[0]?.message).toBe(`back-off ${text} restarting failed container=app pod=web_default(uid-1)`);
  });

  it('after the window: started again with the doubled back-off recorded', () => {
    const a = plan(pod(), seen(sandbox(), crashed({ durationMs: 20_000, finishedAt: NOW - sec(21) })));
    expect(started(a)).toEqual(['app:app']);
    expect(a.start[0]!.backoff?.durationMs).toBe(40_000);
    expect(a.backingOff).toEqual([]);
    expect(a.requeueAfterMs).toBeUndefined();
  });

  it('requeueAfterMs is the earliest expiry over all backing-off containers', () => {
    const p = pod({ containers: ['app', 'side'] });
    const side = exited('side', {
      exitCode: 1,
      restartCount: 1,
      createdAt: NOW - sec(3),
      finishedAt: NOW - sec(2),
      backoff: { durationMs: 10_000, updatedAt: NOW - sec(3) },
    });
    const a = plan(p, seen(sandbox(), crashed({ durationMs: 40_000, finishedAt: NOW - sec(10) }), side));
    expect(a.backingOff.map((b) => [b.name, b.retryInMs])).toEqual([
      ['app', 30_000],
      ['side', 8_000],
    ]);
    expect(a.requeueAfterMs).toBe(8_000);
  });

  it('init containers back off too', () => {
    const a = plan(
      pod({ initContainers: ['init-a'] }),
      seen(
        sandbox(),
        exited('init-a', { init: true, exitCode: 1, restartCount: 2, finishedAt: NOW - sec(1), backoff: { durationMs: 20_000, updatedAt: NOW - sec(2) } }),
      ),
    );
    expect(a.start).toEqual([]);
    expect(a.backingOff).toEqual([expect.objectContaining({ name: 'init-a', kind: 'init', retryInMs: 19_000 })]);
  });
});

describe('computePodActions: garbage (MaxPerPodContainer = 1)', () => {
  it('keeps the running instance and only the newest dead instance per container', () => {
    const p = pod({ containers: ['app', 'side'] });
    const s = seen(
      sandbox({ attempt: 2, id: 'sb-2' }),
      sandbox({ attempt: 1, id: 'sb-1', ready: false }),
      sandbox({ attempt: 0, id: 'sb-0', ready: false }),
      running('app', { restartCount: 3, sandboxId: 'sb-2', spec: specOf(p, 'app') }),
      exited('app', { restartCount: 2, sandboxId: 'sb-1' }),
      exited('app', { restartCount: 1, sandboxId: 'sb-0' }),
      exited('app', { restartCount: 0, sandboxId: 'sb-0' }),
      running('side', { restartCount: 0, sandboxId: 'sb-2', spec: specOf(p, 'side') }),
    );
    const a = plan(p, s);
    expect(a.removeContainers.sort()).toEqual(['app-0', 'app-1']);
    // sb-1 still holds the newest dead app instance; sb-0 is empty once its containers are removed.
    expect(a.removeSandboxes).toEqual(['sb-0']);
    expect(a.start).toEqual([]);
  });

  // While the newest instance of a name is dead, the published status still names the dead one before it as
  // lastState (until a status with a newer instance replaces it): it is kept until a newer instance is seen.
  const gcCases: { name: string; s: ObservedPod; removed: string[]; removedSandboxes?: string[] }[] = [
    { name: 'newest running: one dead kept', s: seen(sandbox(), running('app', { restartCount: 2 }), exited('app', { restartCount: 1 }), exited('app', { restartCount: 0 })), removed: ['app-0'] },
    { name: 'newest dead: it and the one before it kept', s: seen(sandbox(), exited('app', { restartCount: 2 }), exited('app', { restartCount: 1 }), exited('app', { restartCount: 0 })), removed: ['app-0'] },
    { name: 'newest dead, two dead in all: nothing removed', s: seen(sandbox(), exited('app', { restartCount: 1 }), exited('app', { restartCount: 0 })), removed: [] },
    { name: 'newest created (a start under way): one dead kept', s: seen(sandbox(), created('app', { restartCount: 2 }), exited('app', { restartCount: 1 }), exited('app', { restartCount: 0 })), removed: ['app-0'] },
    {
      name: 'per container name: a dead newest keeps two, a running newest one',
      s: seen(sandbox(), exited('app', { restartCount: 1 }), exited('app', { restartCount: 0 }), running('side', { restartCount: 2 }), exited('side', { restartCount: 1 }), exited('side', { restartCount: 0 })),
      removed: ['side-0'],
    },
    {
      name: 'the sandbox of a kept second dead instance is kept',
      s: seen(
        sandbox({ attempt: 2, id: 'sb-2' }),
        sandbox({ attempt: 1, id: 'sb-1', ready: false }),
        sandbox({ attempt: 0, id: 'sb-0', ready: false }),
        exited('app', { restartCount: 2, sandboxId: 'sb-2' }),
        exited('app', { restartCount: 1, sandboxId: 'sb-1' }),
        exited('app', { restartCount: 0, sandboxId: 'sb-0' }),
      ),
      removed: ['app-0'],
      removedSandboxes: ['sb-0'],
    },
  ];
  it.each(gcCases)('$name', ({ s, removed, removedSandboxes }) => {
    const a = plan(pod({ containers: ['app', 'side'] }), s);
    expect(a.removeContainers.sort()).toEqual(removed);
    if (removedSandboxes) expect(a.removeSandboxes).toEqual(removedSandboxes);
  });

  it('never removes the latest sandbox', () => {
    const a = plan(pod({ restartPolicy: 'Never' }), seen(sandbox({ ready: false, attempt: 0 }), exited('app', { exitCode: 1 })));
    expect(a.removeSandboxes).toEqual([]);
    expect(a.removeContainers).toEqual([]);
  });
});
