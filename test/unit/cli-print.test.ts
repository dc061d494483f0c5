// `berth pods` columns against kubectl's printPod (pkg/printers/internalversion/printers.go) and the AGE column
// against k8s.io/apimachinery/pkg/util/duration.HumanDuration.
import { describe, expect, it } from 'vitest';
import type { ContainerStatus, Pod, PodStatus } from 'kubernetes-types/core/v1';
import { humanDuration, podSummary, table } from '../../src/cli/print.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('humanDuration', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [59 * S, '59s'],
    [119 * S, '119s'],
    [2 * M, '2m'],
    [2 * M + 30 * S, '2m30s'],
    [9 * M + 59 * S, '9m59s'],
    [10 * M + 30 * S, '10m'],
    [179 * M, '179m'],
    [3 * H, '3h'],
    [3 * H + 30 * M, '3h30m'],
    [7 * H + 59 * M, '7h59m'],
    [8 * H + 30 * M, '8h'],
    [47 * H, '47h'],
    [48 * H, '2d'],
    [50 * H, '2d2h'],
    [7 * D + 23 * H, '7d23h'],
    [8 * D, '8d'],
    [729 * D, '729d'],
    [730 * D, '2y'],
    [800 * D, '2y70d'],
    [3 * 365 * D + 5 * D, '3y5d'],
    [9 * 365 * D, '9y'],
    // Up to 2 s in the future is "now" (clock skew); further is invalid.
    [-500, '0s'],
    [-1 * S, '0s'],
    [-1500, '0s'],
    [-2 * S, '<invalid>'],
  ])('%i ms → %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

const cs = (name: string, o: Partial<ContainerStatus> = {}): ContainerStatus => ({ name, image: 'x', imageID: '', ready: false, restartCount: 0, ...o });
const podWith = (containers: string[], initContainers: string[] = [], deletionTimestamp?: string): Pod => ({
  metadata: { name: 'web', deletionTimestamp },
  spec: { containers: containers.map((name) => ({ name })), initContainers: initContainers.length ? initContainers.map((name) => ({ name })) : undefined },
});
const readyCond = (status: 'True' | 'False') => [{ type: 'Ready', status }];

describe('podSummary (kubectl READY / STATUS / RESTARTS)', () => {
  const table: { name: string; pod: Pod; status: PodStatus; want: { ready: string; status: string; restarts: number } }[] = [
    {
      name: 'running and ready',
      pod: podWith(['app']),
      status: { phase: 'Running', containerStatuses: [cs('app', { ready: true, state: { running: {} } })] },
      want: { ready: '1/1', status: 'Running', restarts: 0 },
    },
    {
      name: 'running, one of two ready',
      pod: podWith(['a', 'b']),
      status: { phase: 'Running', containerStatuses: [cs('a', { ready: true, state: { running: {} } }), cs('b', { state: { running: {} } })] },
      want: { ready: '1/2', status: 'Running', restarts: 0 },
    },
    {
      name: 'pending, container creating',
      pod: podWith(['app']),
      status: { phase: 'Pending', containerStatuses: [cs('app', { state: { waiting: { reason: 'ContainerCreating' } } })] },
      want: { ready: '0/1', status: 'ContainerCreating', restarts: 0 },
    },
    {
      name: 'crash looping',
      pod: podWith(['app']),
      status: {
        phase: 'Running',
        containerStatuses: [cs('app', { restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1 } } })],
      },
      want: { ready: '0/1', status: 'CrashLoopBackOff', restarts: 5 },
    },
    {
      name: 'completed',
      pod: podWith(['app']),
      status: { phase: 'Succeeded', containerStatuses: [cs('app', { state: { terminated: { exitCode: 0, reason: 'Completed' } } })] },
      want: { ready: '0/1', status: 'Completed', restarts: 0 },
    },
    {
      name: 'error',
      pod: podWith(['app']),
      status: { phase: 'Failed', containerStatuses: [cs('app', { state: { terminated: { exitCode: 2, reason: 'Error' } } })] },
      want: { ready: '0/1', status: 'Error', restarts: 0 },
    },
    {
      name: 'terminated without reason → ExitCode:N',
      pod: podWith(['app']),
      status: { phase: 'Failed', containerStatuses: [cs('app', { state: { terminated: { exitCode: 3 } } })] },
      want: { ready: '0/1', status: 'ExitCode:3', restarts: 0 },
    },
    {
      name: 'terminated by a signal without reason → Signal:N',
      pod: podWith(['app']),
      status: { phase: 'Failed', containerStatuses: [cs('app', { state: { terminated: { exitCode: 137, signal: 9 } } })] },
      want: { ready: '0/1', status: 'Signal:9', restarts: 0 },
    },
    {
      name: 'the first container in spec order wins (statuses are walked backwards)',
      pod: podWith(['a', 'b']),
      status: {
        phase: 'Pending',
        containerStatuses: [cs('a', { state: { waiting: { reason: 'ErrImagePull' } } }), cs('b', { state: { waiting: { reason: 'ContainerCreating' } } })],
      },
      want: { ready: '0/2', status: 'ErrImagePull', restarts: 0 },
    },
    {
      name: 'completed sidecar but another container running and Ready → Running',
      pod: podWith(['job', 'proxy']),
      status: {
        phase: 'Running',
        conditions: readyCond('True'),
        containerStatuses: [cs('job', { state: { terminated: { exitCode: 0, reason: 'Completed' } } }), cs('proxy', { ready: true, state: { running: {} } })],
      },
      want: { ready: '1/2', status: 'Running', restarts: 0 },
    },
    {
      name: 'completed container, another running, pod not Ready → NotReady',
      pod: podWith(['job', 'proxy']),
      status: {
        phase: 'Running',
        conditions: readyCond('False'),
        containerStatuses: [cs('job', { state: { terminated: { exitCode: 0, reason: 'Completed' } } }), cs('proxy', { ready: true, state: { running: {} } })],
      },
      want: { ready: '1/2', status: 'NotReady', restarts: 0 },
    },
    {
      name: 'pod-level reason (Evicted)',
      pod: podWith(['app']),
      status: { phase: 'Failed', reason: 'Evicted' },
      want: { ready: '0/1', status: 'Evicted', restarts: 0 },
    },
    {
      name: 'no status at all',
      pod: podWith(['app']),
      status: {},
      want: { ready: '0/1', status: 'Unknown', restarts: 0 },
    },
  ];
  it.each(table)('$name', ({ pod, status, want }) => {
    expect(podSummary(pod, status)).toEqual(want);
  });

  describe('init containers', () => {
    const two = podWith(['app'], ['init-a', 'init-b']);
    const appWaiting = [cs('app', { restartCount: 7, state: { waiting: { reason: 'PodInitializing' } } })];
    const initTable: { name: string; inits: ContainerStatus[]; status: string; restarts: number }[] = [
      {
        name: 'nothing started yet',
        inits: [cs('init-a', { state: { waiting: { reason: 'PodInitializing' } } }), cs('init-b', { state: { waiting: { reason: 'PodInitializing' } } })],
        status: 'Init:0/2',
        restarts: 0,
      },
      {
        name: 'first running',
        inits: [cs('init-a', { state: { running: {} } }), cs('init-b', { state: { waiting: { reason: 'PodInitializing' } } })],
        status: 'Init:0/2',
        restarts: 0,
      },
      {
        name: 'first done, second running',
        inits: [cs('init-a', { state: { terminated: { exitCode: 0, reason: 'Completed' } } }), cs('init-b', { state: { running: {} } })],
        status: 'Init:1/2',
        restarts: 0,
      },
      {
        name: 'crash looping init container; restarts counted from init containers only',
        inits: [
          cs('init-a', { restartCount: 1, state: { terminated: { exitCode: 0, reason: 'Completed' } } }),
          cs('init-b', { restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } }),
        ],
        status: 'Init:CrashLoopBackOff',
        restarts: 5,
      },
      { name: 'failed init with reason', inits: [cs('init-a', { state: { terminated: { exitCode: 1, reason: 'Error' } } })], status: 'Init:Error', restarts: 0 },
      { name: 'failed init without reason', inits: [cs('init-a', { state: { terminated: { exitCode: 4 } } })], status: 'Init:ExitCode:4', restarts: 0 },
      { name: 'init killed by a signal', inits: [cs('init-a', { state: { terminated: { exitCode: 137, signal: 9 } } })], status: 'Init:Signal:9', restarts: 0 },
      { name: 'image pull failure', inits: [cs('init-a', { state: { waiting: { reason: 'ImagePullBackOff' } } })], status: 'Init:ImagePullBackOff', restarts: 0 },
    ];
    it.each(initTable)('$name → $status', ({ inits, status, restarts }) => {
      expect(podSummary(two, { phase: 'Pending', initContainerStatuses: inits, containerStatuses: appWaiting })).toEqual({ ready: '0/1', status, restarts });
    });

    it('all init containers done → the app containers decide', () => {
      const done = [cs('init-a', { restartCount: 2, state: { terminated: { exitCode: 0 } } }), cs('init-b', { state: { terminated: { exitCode: 0 } } })];
      expect(podSummary(two, { phase: 'Running', initContainerStatuses: done, containerStatuses: [cs('app', { restartCount: 1, ready: true, state: { running: {} } })] })).toEqual({
        ready: '1/1',
        status: 'Running',
        restarts: 1,
      });
    });

    it('Initialized condition True → the app containers are counted even if an init status looks unfinished', () => {
      const st: PodStatus = {
        phase: 'Running',
        conditions: [{ type: 'Initialized', status: 'True' }, ...readyCond('True')],
        initContainerStatuses: [cs('init-a', { state: { waiting: { reason: 'PodInitializing' } } }), cs('init-b', { state: { waiting: { reason: 'PodInitializing' } } })],
        containerStatuses: [cs('app', { ready: true, state: { running: {} } })],
      };
      // printPod: the app loop runs (READY/RESTARTS from app containers), but a ready running container does
      // not overwrite the reason the init loop set.
      expect(podSummary(two, st)).toEqual({ ready: '1/1', status: 'Init:0/2', restarts: 0 });
    });
  });

  describe('deletion', () => {
    it('a deleted pod that is still running shows Terminating', () => {
      const p = podWith(['app'], [], '2024-01-01T00:00:00Z');
      expect(podSummary(p, { phase: 'Running', containerStatuses: [cs('app', { ready: true, state: { running: {} } })] }).status).toBe('Terminating');
    });

    it('a deleted pod in a terminal phase keeps its status (not Terminating)', () => {
      const p = podWith(['app'], [], '2024-01-01T00:00:00Z');
      const st: PodStatus = { phase: 'Succeeded', containerStatuses: [cs('app', { state: { terminated: { exitCode: 0, reason: 'Completed' } } })] };
      expect(podSummary(p, st).status).toBe('Completed');
    });

    it('a deleted pod on an unreachable node shows Unknown', () => {
      const p = podWith(['app'], [], '2024-01-01T00:00:00Z');
      expect(podSummary(p, { phase: 'Running', reason: 'NodeLost', containerStatuses: [cs('app', { ready: true, state: { running: {} } })] }).status).toBe('Unknown');
    });
  });
});

describe('table', () => {
  it('pads every column but the last to the widest cell plus 3 spaces', () => {
    expect(table(['NAME', 'READY', 'STATUS'], [['web', '1/1', 'Running'], ['a-long-name', '0/1', 'Pending']])).toBe(
      ['NAME          READY   STATUS', 'web           1/1     Running', 'a-long-name   0/1     Pending'].join('\n'),
    );
  });
});
