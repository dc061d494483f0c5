// computePodStatus against upstream pkg/kubelet/kubelet_pods.go (getPhase, convertToAPIContainerStatuses,
// generateAPIPodStatus), pkg/kubelet/status/generate.go (conditions), the prober's UpdatePodStatus (ready /
// started) and pkg/apis/core/v1/helper/qos (qosClass).
import { describe, expect, it } from 'vitest';
import type { Container, Pod, PodCondition, PodStatus } from 'kubernetes-types/core/v1';
import type { ObservedPod } from '../../src/kubelet/pod/observed.ts';
import { computePodStatus, getQOSClass, type WaitingReason } from '../../src/kubelet/pod/pod-status.ts';
import { T0, created, exited, min, pod, running, sandbox, sec, seen, spec } from './helpers/kubelet-fixtures.ts';

const NOW = T0 + min(5);
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

interface Opts {
  reasons?: Record<string, WaitingReason>;
  ready?: (id: string) => boolean | undefined;
  started?: (id: string) => boolean | undefined;
  previous?: PodStatus;
  now?: number;
}
function status(p: Pod, s: ObservedPod, o: Opts = {}): PodStatus {
  return computePodStatus({
    pod: p,
    seen: s,
    reasons: new Map(Object.entries(o.reasons ?? {})),
    ready: o.ready,
    started: o.started,
    hostIP: '192.168.1.10',
    previous: o.previous,
    now: o.now ?? NOW,
  });
}
const cond = (st: PodStatus, type: string): PodCondition | undefined => st.conditions?.find((c) => c.type === type);
const crashLoop: WaitingReason = { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=app pod=web_default(uid-1)' };

describe('computePodStatus: phase (getPhase)', () => {
  const table: { name: string; p: Pod; s: ObservedPod; reasons?: Record<string, WaitingReason>; phase: string }[] = [
    { name: 'nothing created yet', p: pod(), s: seen(), phase: 'Pending' },
    { name: 'sandbox only', p: pod(), s: seen(sandbox()), phase: 'Pending' },
    { name: 'all running', p: pod({ containers: ['a', 'b'] }), s: seen(sandbox(), running('a'), running('b')), phase: 'Running' },
    { name: 'one running, one not created yet', p: pod({ containers: ['a', 'b'] }), s: seen(sandbox(), running('a')), phase: 'Pending' },
    { name: 'Always, exited 0', p: pod(), s: seen(sandbox(), exited('app', { exitCode: 0 })), phase: 'Running' },
    { name: 'Always, exited 1', p: pod(), s: seen(sandbox(), exited('app', { exitCode: 1 })), phase: 'Running' },
    { name: 'Always, crash looping', p: pod(), s: seen(sandbox(), exited('app', { exitCode: 1 })), reasons: { app: crashLoop }, phase: 'Running' },
    { name: 'OnFailure, exited 0', p: pod({ restartPolicy: 'OnFailure' }), s: seen(sandbox(), exited('app', { exitCode: 0 })), phase: 'Succeeded' },
    { name: 'OnFailure, exited 1', p: pod({ restartPolicy: 'OnFailure' }), s: seen(sandbox(), exited('app', { exitCode: 1 })), phase: 'Running' },
    { name: 'Never, exited 0', p: pod({ restartPolicy: 'Never' }), s: seen(sandbox(), exited('app', { exitCode: 0 })), phase: 'Succeeded' },
    { name: 'Never, exited 1', p: pod({ restartPolicy: 'Never' }), s: seen(sandbox(), exited('app', { exitCode: 1 })), phase: 'Failed' },
    {
      name: 'Never, one succeeded one failed',
      p: pod({ restartPolicy: 'Never', containers: ['a', 'b'] }),
      s: seen(sandbox(), exited('a', { exitCode: 0 }), exited('b', { exitCode: 2 })),
      phase: 'Failed',
    },
    {
      name: 'Never, one running one failed',
      p: pod({ restartPolicy: 'Never', containers: ['a', 'b'] }),
      s: seen(sandbox(), running('a'), exited('b', { exitCode: 2 })),
      phase: 'Running',
    },
    {
      name: 'init container running',
      p: pod({ initContainers: ['init'] }),
      s: seen(sandbox(), running('init', { init: true })),
      phase: 'Pending',
    },
    {
      name: 'init container failed, Never',
      p: pod({ initContainers: ['init'], restartPolicy: 'Never' }),
      s: seen(sandbox(), exited('init', { init: true, exitCode: 1 })),
      phase: 'Failed',
    },
    {
      name: 'init container failed, Always (crash looping)',
      p: pod({ initContainers: ['init'] }),
      s: seen(sandbox(), exited('init', { init: true, exitCode: 1 })),
      reasons: { init: { reason: 'CrashLoopBackOff', message: 'back-off' } },
      phase: 'Pending',
    },
    {
      name: 'init done, app running',
      p: pod({ initContainers: ['init'] }),
      s: seen(sandbox(), exited('init', { init: true, exitCode: 0 }), running('app')),
      phase: 'Running',
    },
    {
      // HasAnyRegularContainerStarted: a regular container ran, so missing init statuses do not make it Pending.
      name: 'app running, init container instance gone',
      p: pod({ initContainers: ['init'] }),
      s: seen(sandbox(), running('app')),
      phase: 'Running',
    },
    {
      // A created-but-not-started container is "waiting to be running", not terminated.
      name: 'Never, container created but not started',
      p: pod({ restartPolicy: 'Never' }),
      s: seen(sandbox(), created('app')),
      phase: 'Pending',
    },
  ];
  it.each(table)('$name → $phase', ({ p, s, reasons, phase }) => {
    expect(status(p, s, { reasons }).phase).toBe(phase);
  });

  it('a terminal phase never goes back', () => {
    const p = pod();
    const st = status(p, seen(sandbox(), running('app')), { previous: { phase: 'Succeeded' } });
    expect(st.phase).toBe('Succeeded');
    const st2 = status(p, seen(sandbox()), { previous: { phase: 'Failed' } });
    expect(st2.phase).toBe('Failed');
  });
});

describe('computePodStatus: conditions (status/generate.go)', () => {
  it('all running and ready → Initialized, Ready, ContainersReady, PodScheduled True, in that order', () => {
    const st = status(pod(), seen(sandbox(), running('app')));
    const kubeletOwned = ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
    expect(st.conditions?.filter((c) => kubeletOwned.includes(c.type)).map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Initialized', 'True', undefined],
      ['Ready', 'True', undefined],
      ['ContainersReady', 'True', undefined],
      ['PodScheduled', 'True', undefined],
    ]);
  });

  it('unready containers: ContainersNotReady with `containers with unready status: [a b]` on Ready and ContainersReady', () => {
    const p = pod({ containers: ['a', 'b', 'c'] });
    const st = status(p, seen(sandbox(), running('b'), running('c')));
    for (const type of ['Ready', 'ContainersReady']) {
      expect(cond(st, type)).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [a]' });
    }
    const st2 = status(p, seen(sandbox(), running('c')));
    expect(cond(st2, 'Ready')?.message).toBe('containers with unready status: [a b]');
  });

  it('a readiness probe without a success yet → not ready; success → ready', () => {
    const p = pod({ containers: [spec('app', { readinessProbe: { httpGet: { port: 80 } } })] });
    const s = seen(sandbox(), running('app'));
    expect(cond(status(p, s), 'Ready')?.status).toBe('False');
    expect(status(p, s).containerStatuses?.[0]?.ready).toBe(false);
    const ok = status(p, s, { ready: (id) => (id === 'app-0' ? true : undefined) });
    expect(cond(ok, 'Ready')?.status).toBe('True');
    expect(ok.containerStatuses?.[0]?.ready).toBe(true);
  });

  it('init containers not done → Initialized False, ContainersNotInitialized, `containers with incomplete status: [..]`', () => {
    const p = pod({ initContainers: ['init-a', 'init-b'] });
    const st = status(p, seen(sandbox(), exited('init-a', { init: true }), running('init-b', { init: true, createdAt: T0 + sec(30) })));
    expect(cond(st, 'Initialized')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotInitialized',
      message: 'containers with incomplete status: [init-b]',
    });
    const st2 = status(p, seen(sandbox()));
    expect(cond(st2, 'Initialized')?.message).toBe('containers with incomplete status: [init-a init-b]');
  });

  it('succeeded pod → Ready/ContainersReady False with PodCompleted, Initialized True with PodCompleted', () => {
    const st = status(pod({ restartPolicy: 'Never' }), seen(sandbox(), exited('app', { exitCode: 0 })));
    expect(st.phase).toBe('Succeeded');
    expect(cond(st, 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
    expect(cond(st, 'Ready')?.message).toBeUndefined();
    expect(cond(st, 'ContainersReady')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
    expect(cond(st, 'Initialized')).toMatchObject({ status: 'True', reason: 'PodCompleted' });
  });

  it('failed pod → Ready/ContainersReady False with reason PodFailed and no message', () => {
    const st = status(pod({ restartPolicy: 'Never' }), seen(sandbox(), exited('app', { exitCode: 1 })));
    expect(st.phase).toBe('Failed');
    for (const type of ['Ready', 'ContainersReady']) {
      expect(cond(st, type)).toMatchObject({ status: 'False', reason: 'PodFailed' });
      expect(cond(st, type)?.message).toBeUndefined();
    }
  });

  it('a regular container has started → Initialized True even when init statuses are gone', () => {
    const st = status(pod({ initContainers: ['init'] }), seen(sandbox(), running('app')));
    expect(cond(st, 'Initialized')).toMatchObject({ status: 'True' });
  });

  it('lastTransitionTime is kept while a condition keeps its status, and moves when it changes', () => {
    const p = pod();
    const first = status(p, seen(sandbox(), running('app')), { now: T0 });
    expect(cond(first, 'Ready')?.lastTransitionTime).toBe(iso(T0));
    const same = status(p, seen(sandbox(), running('app')), { now: T0 + min(1), previous: first });
    expect(cond(same, 'Ready')?.lastTransitionTime).toBe(iso(T0));
    const changed = status(p, seen(sandbox(), exited('app', { exitCode: 1 })), { now: T0 + min(2), previous: same });
    expect(cond(changed, 'Ready')?.status).toBe('False');
    expect(cond(changed, 'Ready')?.lastTransitionTime).toBe(iso(T0 + min(2)));
    expect(cond(changed, 'PodScheduled')?.lastTransitionTime).toBe(iso(T0));
  });
});

describe('computePodStatus: containerStatuses (convertToAPIContainerStatuses)', () => {
  it('defaults: waiting ContainerCreating without init containers', () => {
    const st = status(pod(), seen(sandbox()));
    expect(st.containerStatuses).toEqual([
      expect.objectContaining({ name: 'app', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }),
    ]);
    expect(st.initContainerStatuses).toBeUndefined();
  });

  it('defaults: every container (init and app) waits with PodInitializing when the pod has init containers', () => {
    const st = status(pod({ initContainers: ['init-a', 'init-b'] }), seen(sandbox()));
    expect(st.containerStatuses?.map((c) => c.state?.waiting?.reason)).toEqual(['PodInitializing']);
    expect(st.initContainerStatuses?.map((c) => [c.name, c.state?.waiting?.reason])).toEqual([
      ['init-a', 'PodInitializing'],
      ['init-b', 'PodInitializing'],
    ]);
  });

  it('running container: running state, ready, started, docker:// ids', () => {
    const c = running('app', { id: 'abc123', createdAt: T0, startedAt: T0 + 500, restartCount: 2, imageRef: 'nginx@sha256:feed' });
    const st = status(pod(), seen(sandbox(), c));
    expect(st.containerStatuses?.[0]).toMatchObject({
      name: 'app',
      ready: true,
      started: true,
      restartCount: 2,
      containerID: 'docker://abc123',
      imageID: 'docker-pullable://nginx@sha256:feed',
      image: 'registry.example/app:1.0',
      state: { running: { startedAt: iso(T0 + 500) } },
    });
  });

  it('a startup probe without success → started false and not ready', () => {
    const p = pod({ containers: [spec('app', { startupProbe: { exec: { command: ['true'] } } })] });
    const st = status(p, seen(sandbox(), running('app')));
    expect(st.containerStatuses?.[0]).toMatchObject({ started: false, ready: false });
    expect(status(p, seen(sandbox(), running('app')), { started: () => true }).containerStatuses?.[0]).toMatchObject({ started: true, ready: true });
  });

  it.each([
    { reason: 'OOMKilled', exitCode: 137 },
    { reason: 'Error', exitCode: 1 },
    { reason: 'Completed', exitCode: 0 },
  ])('terminated with reason $reason (exit $exitCode)', ({ reason, exitCode }) => {
    const c = exited('app', { id: 'x1', exitCode, reason, createdAt: T0, startedAt: T0 + sec(1), finishedAt: T0 + sec(9) });
    const st = status(pod({ restartPolicy: 'Never' }), seen(sandbox(), c));
    expect(st.containerStatuses?.[0]?.state).toEqual({
      terminated: { exitCode, reason, startedAt: iso(T0 + sec(1)), finishedAt: iso(T0 + sec(9)), containerID: 'docker://x1' },
    });
    expect(st.containerStatuses?.[0]?.ready).toBe(false);
  });

  it('CrashLoopBackOff: waiting with the reason cache entry, lastState = the terminated instance', () => {
    const c = exited('app', { id: 'dead3', exitCode: 1, reason: 'Error', restartCount: 3 });
    const st = status(pod(), seen(sandbox(), c), { reasons: { app: crashLoop } });
    const cs = st.containerStatuses?.[0];
    expect(cs?.state).toEqual({ waiting: { reason: 'CrashLoopBackOff', message: crashLoop.message } });
    expect(cs?.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error', containerID: 'docker://dead3' });
    expect(cs?.restartCount).toBe(3);
    expect(cs?.ready).toBe(false);
  });

  it('reasons are ignored for a container that will not be restarted (Never)', () => {
    const st = status(pod({ restartPolicy: 'Never' }), seen(sandbox(), exited('app', { exitCode: 1 })), { reasons: { app: crashLoop } });
    expect(st.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(1);
  });

  it('reasons are ignored for an init container that succeeded', () => {
    const p = pod({ initContainers: ['init'] });
    const st = status(p, seen(sandbox(), exited('init', { init: true, exitCode: 0 })), { reasons: { init: crashLoop } });
    expect(st.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(st.initContainerStatuses?.[0]?.ready).toBe(true);
  });

  it('an image pull failure on a fresh container shows as waiting with that reason', () => {
    const st = status(pod(), seen(sandbox()), { reasons: { app: { reason: 'ErrImagePull', message: 'pull access denied' } } });
    expect(st.containerStatuses?.[0]?.state).toEqual({ waiting: { reason: 'ErrImagePull', message: 'pull access denied' } });
    expect(st.containerStatuses?.[0]?.lastState).toBeUndefined();
  });

  it('lastState comes from the second-newest instance; older ones are ignored', () => {
    const st = status(
      pod(),
      seen(
        sandbox(),
        running('app', { id: 'r2', restartCount: 2 }),
        exited('app', { id: 'e1', restartCount: 1, exitCode: 137, reason: 'OOMKilled' }),
        exited('app', { id: 'e0', restartCount: 0, exitCode: 1, reason: 'Error' }),
      ),
    );
    const cs = st.containerStatuses?.[0];
    expect(cs?.containerID).toBe('docker://r2');
    expect(cs?.restartCount).toBe(2);
    expect(cs?.lastState?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled', containerID: 'docker://e1' });
  });

  it('a created-but-not-started container is waiting (no reason), not terminated', () => {
    const st = status(pod(), seen(sandbox(), created('app')));
    expect(st.containerStatuses?.[0]?.state).toEqual({ waiting: {} });
  });

  it('app container statuses are sorted by name; init container statuses keep spec order', () => {
    const p = pod({ containers: ['web', 'app', 'metrics'], initContainers: ['z-init', 'a-init'] });
    const st = status(p, seen(sandbox()));
    expect(st.containerStatuses?.map((c) => c.name)).toEqual(['app', 'metrics', 'web']);
    expect(st.initContainerStatuses?.map((c) => c.name)).toEqual(['z-init', 'a-init']);
  });

  it('a terminated status from the previous status is kept when the instance is gone', () => {
    const previous: PodStatus = {
      phase: 'Succeeded',
      containerStatuses: [
        { name: 'app', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
      ],
    };
    const st = status(pod({ restartPolicy: 'Never' }), seen(), { previous });
    expect(st.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(st.phase).toBe('Succeeded');
  });
});

describe('computePodStatus: pod-level fields', () => {
  it('podIP from the ready sandbox; hostIP; startTime kept from the previous status', () => {
    const st = status(pod(), seen(sandbox({ ip: '10.1.0.9', additionalIps: ['fd00::9'] }), running('app')), {
      previous: { startTime: '2023-12-31T00:00:00Z' },
    });
    expect(st).toMatchObject({
      hostIP: '192.168.1.10',
      podIP: '10.1.0.9',
      podIPs: [{ ip: '10.1.0.9' }, { ip: 'fd00::9' }],
      startTime: '2023-12-31T00:00:00Z',
    });
  });

  it('hostNetwork pod → podIP is the host IP', () => {
    const st = status(pod({ hostNetwork: true }), seen(sandbox({ hostNetwork: true }), running('app')));
    expect(st.podIP).toBe('192.168.1.10');
  });

  it('qosClass is reported', () => {
    expect(status(pod(), seen()).qosClass).toBe('BestEffort');
  });
});

describe('getQOSClass (ComputePodQOS)', () => {
  const res = (requests?: Record<string, string>, limits?: Record<string, string>): Partial<Container> => ({ resources: { requests, limits } });
  const guaranteed = res({ cpu: '500m', memory: '128Mi' }, { cpu: '0.5', memory: '134217728' });
  const table: { name: string; containers: Partial<Container>[]; inits?: Partial<Container>[]; qos: string }[] = [
    { name: 'no resources', containers: [{}], qos: 'BestEffort' },
    { name: 'zero requests are ignored', containers: [res({ cpu: '0' })], qos: 'BestEffort' },
    { name: 'requests only', containers: [res({ cpu: '100m' })], qos: 'Burstable' },
    { name: 'requests = limits for cpu and memory (equal quantities, different spelling)', containers: [guaranteed], qos: 'Guaranteed' },
    { name: 'limits for memory only', containers: [res({ memory: '1Gi' }, { memory: '1Gi' })], qos: 'Burstable' },
    { name: 'requests below limits', containers: [res({ cpu: '100m', memory: '64Mi' }, { cpu: '200m', memory: '64Mi' })], qos: 'Burstable' },
    { name: 'one guaranteed, one best-effort container', containers: [guaranteed, {}], qos: 'Burstable' },
    { name: 'init container counts', containers: [guaranteed], inits: [res({ cpu: '100m' })], qos: 'Burstable' },
    { name: 'extended resources are ignored', containers: [res({ 'nvidia.com/gpu': '1' }, { 'nvidia.com/gpu': '1' })], qos: 'BestEffort' },
  ];
  it.each(table)('$name → $qos', ({ containers, inits, qos }) => {
    const p = pod({
      containers: containers.map((c, i) => spec(`c${i}`, c)),
      initContainers: inits?.map((c, i) => spec(`i${i}`, c)),
    });
    expect(getQOSClass(p)).toBe(qos);
  });
});
