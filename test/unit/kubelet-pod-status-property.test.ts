// Property tests for pod status computation (pkg/kubelet/kubelet_pods.go getPhase / convertToAPIContainerStatuses,
// status/generate.go), issue #9 campaign item 8: for any pod and any runtime state the status never throws, has one
// status per container with exactly one state, a known phase, Ready only when every container is ready, and a
// terminal phase never goes back.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import type { ContainerStatus, PodSandboxStatus } from '../../src/cri/index.ts';
import { computePodStatus, type StatusInput, type WaitingReason } from '../../src/kubelet/pod/pod-status.ts';
import { created, exited, pod, running, sandbox, seen, spec, T0, unknown } from './helpers/kubelet-fixtures.ts';

const RUNS = { numRuns: 200 };
const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'];
const REASONS: WaitingReason[] = [
  { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' },
  { reason: 'ErrImagePull', message: 'pull failed' },
  { reason: 'CreateContainerConfigError', message: 'configmap "x" not found' },
];

interface Scenario {
  input: StatusInput;
  appNames: string[];
  initNames: string[];
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    appNames: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 3 }),
    initNames: fc.uniqueArray(fc.constantFrom('i1', 'i2'), { maxLength: 2 }),
    restartPolicy: fc.constantFrom('Always', 'OnFailure', 'Never') as fc.Arbitrary<'Always' | 'OnFailure' | 'Never'>,
    hostNetwork: fc.boolean(),
    sandboxes: fc.array(fc.record({ attempt: fc.nat(3), ready: fc.boolean() }), { maxLength: 2 }),
    terminal: fc.boolean(),
    previousPhase: fc.option(fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed'), { nil: undefined }),
    readyBits: fc.array(fc.option(fc.boolean(), { nil: undefined }), { minLength: 8, maxLength: 8 }),
    now: fc.integer({ min: T0, max: T0 + 86_400_000 }),
  })
  .chain((o) => {
    const names = [...o.initNames.map((n) => ({ n, init: true })), ...o.appNames.map((n) => ({ n, init: false }))];
    const instance = fc.record({
      state: fc.constantFrom('running', 'exited', 'created', 'unknown'),
      restartCount: fc.nat(5),
      exitCode: fc.constantFrom(0, 1, 137),
    });
    return fc
      .tuple(
        fc.tuple(...names.map(() => fc.array(instance, { maxLength: 2 }))),
        fc.tuple(...names.map(() => fc.option(fc.constantFrom(...REASONS), { nil: undefined }))),
      )
      .map(([instances, reasons]) => {
        const p = pod({ containers: o.appNames.map((n) => spec(n)), initContainers: o.initNames.length ? o.initNames : undefined, restartPolicy: o.restartPolicy, hostNetwork: o.hostNetwork });
        const items: (ContainerStatus | PodSandboxStatus)[] = o.sandboxes.map((s, i) => sandbox({ ...s, id: `sb-${i}-${s.attempt}`, hostNetwork: o.hostNetwork }));
        const reasonMap = new Map<string, WaitingReason>();
        names.forEach(({ n, init }, i) => {
          (instances[i] ?? []).forEach((x, k) => {
            const opts = { id: `${n}-${k}`, restartCount: x.restartCount + k, exitCode: x.exitCode, init, spec: spec(n) };
            const make = { running, exited, created, unknown }[x.state as 'running' | 'exited' | 'created' | 'unknown'];
            items.push(make(n, opts));
          });
          const r = reasons[i];
          if (r) reasonMap.set(n, r);
        });
        const previous: PodStatus | undefined = o.previousPhase ? { phase: o.previousPhase } : undefined;
        let bit = 0;
        const input: StatusInput = {
          pod: p,
          seen: seen(...items),
          reasons: reasonMap,
          ready: () => o.readyBits[bit++ % 8],
          started: () => o.readyBits[(bit + 3) % 8],
          hostIP: '192.168.0.2',
          previous,
          now: o.now,
          terminal: o.terminal,
        };
        return { input, appNames: o.appNames, initNames: o.initNames };
      });
  });

const stateKeys = (s: NonNullable<PodStatus['containerStatuses']>[number]): string[] => Object.keys(s.state ?? {}).filter((k) => (s.state as Record<string, unknown>)[k] !== undefined);

describe('computePodStatus (properties)', () => {
  it('never throws; one status per container, each with exactly one state and a non-negative restart count', () => {
    fc.assert(
      fc.property(scenario, ({ input, appNames, initNames }) => {
        const st = computePodStatus(input);
        expect(PHASES).toContain(st.phase);
        expect((st.containerStatuses ?? []).map((c) => c.name).sort()).toEqual([...appNames].sort());
        expect((st.initContainerStatuses ?? []).map((c) => c.name)).toEqual(initNames);
        for (const c of [...(st.containerStatuses ?? []), ...(st.initContainerStatuses ?? [])]) {
          expect(stateKeys(c)).toHaveLength(1);
          expect(Number.isInteger(c.restartCount) && c.restartCount >= 0).toBe(true);
          if (c.state?.running) expect(c.containerID).toMatch(/^docker:\/\//);
        }
      }),
      RUNS,
    );
  });

  it('Ready=True only when every app container is ready, and never in a terminal phase', () => {
    fc.assert(
      fc.property(scenario, ({ input }) => {
        const st = computePodStatus(input);
        const cond = (t: string): string | undefined => st.conditions?.find((c) => c.type === t)?.status;
        expect(st.conditions?.map((c) => c.type).sort()).toEqual(['ContainersReady', 'Initialized', 'PodScheduled', 'Ready']);
        expect(cond('Ready')).toBe(cond('ContainersReady'));
        if (cond('Ready') === 'True') {
          expect(st.containerStatuses?.every((c) => c.ready)).toBe(true);
          expect(['Succeeded', 'Failed']).not.toContain(st.phase);
        }
        for (const c of st.containerStatuses ?? []) if (c.ready) expect(c.state?.running).toBeDefined();
      }),
      RUNS,
    );
  });

  it('a terminal phase never goes back, and the computation is deterministic', () => {
    fc.assert(
      fc.property(scenario, ({ input }) => {
        const st = computePodStatus(input);
        if (input.previous?.phase === 'Succeeded' || input.previous?.phase === 'Failed') expect(st.phase).toBe(input.previous.phase);
        // with the same probe answers, the same status
        const fixed = { ...input, ready: () => true, started: () => true };
        expect(computePodStatus(fixed)).toEqual(computePodStatus(fixed));
      }),
      RUNS,
    );
  });

  it('a container the runtime never created is waiting with a reason (ContainerCreating, PodInitializing or the remembered failure)', () => {
    fc.assert(
      fc.property(scenario, ({ input }) => {
        const st = computePodStatus(input);
        const observed = new Set(input.seen.containers.map((c) => c.labels['io.kubernetes.container.name']));
        for (const c of [...(st.containerStatuses ?? []), ...(st.initContainerStatuses ?? [])]) {
          if (observed.has(c.name)) continue;
          expect(c.state?.waiting?.reason).toBeTruthy();
          const remembered = input.reasons.get(c.name);
          if (remembered) expect([remembered.reason, 'PodInitializing', 'ContainerCreating']).toContain(c.state!.waiting!.reason);
        }
      }),
      RUNS,
    );
  });

  it('restartPolicy Never with every container exited 0 ends Succeeded; with one exited non-zero ends Failed', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }), fc.boolean(), (names, fail) => {
        const p: Pod = pod({ containers: names.map((n) => spec(n)), restartPolicy: 'Never' });
        const items = names.map((n, i) => exited(n, { exitCode: fail && i === 0 ? 1 : 0, spec: spec(n) }));
        const st = computePodStatus({ pod: p, seen: seen(sandbox({ ready: false }), ...items), reasons: new Map(), hostIP: '192.168.0.2', now: T0 + 60_000 });
        expect(st.phase).toBe(fail ? 'Failed' : 'Succeeded');
      }),
      { numRuns: 30 },
    );
  });
});
