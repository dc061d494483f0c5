// The kubelet against the real dockerd, through the real CLI (`berth run --pod-manifest-path`):
// pods run, crash-loop with growing back-off, restart policies end in the right phase, images that cannot
// be pulled show ErrImagePull/ImagePullBackOff, termination honours the grace period, manifests are
// added/edited/removed, invalid manifests never hurt other pods, and a restart of berth re-adopts.
import { describe, expect, it } from 'vitest';
import { docker, manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';

const podYaml = (name: string, spec: Record<string, unknown>): string => podManifest(name, spec);
const sh = shContainer;

describe('kubelet on the real Docker Engine', () => {
  const berth = useBerth({ extraArgs: ['--crash-loop-backoff-initial=2s', '--crash-loop-backoff-max=8s'] });
  const { write, remove } = manifestFiles(berth);
  const podOf = (name: string): Promise<PodWithStatus | undefined> => berth.pod(name);

  it('runs a pod with command, args, env and $(VAR) expansion, and reports it Running/Ready', async () => {
    write(
      'env.yaml',
      podYaml('env', {
        restartPolicy: 'Never',
        containers: [
          {
            ...sh('main', 'echo "$GREETING from $POD_NAME: $1" > /dev/termination-log; sleep 2', {
              args: ['arg0', '$(GREETING)-$(MISSING)-$$(GREETING)'],
              env: [
                { name: 'GREETING', value: 'hello' },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
            }),
          },
        ],
      }),
    );
    const running = await waitFor(async () => {
      const p = await podOf('env');
      return p?.status.phase === 'Running' && p;
    }, 20_000, 'env pod Running');
    expect(running.status.containerStatuses?.[0]?.ready).toBe(true);
    expect(running.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(running.status.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(running.status.containerStatuses?.[0]?.containerID).toMatch(/^docker:\/\/[0-9a-f]{64}$/);
    const done = await waitFor(async () => {
      const p = await podOf('env');
      return p?.status.phase === 'Succeeded' && p;
    }, 20_000, 'env pod Succeeded');
    const t = done.status.containerStatuses?.[0]?.state?.terminated;
    expect(t?.reason).toBe('Completed');
    expect(t?.exitCode).toBe(0);
    expect(t?.message).toBe(`hello from env-${berth.nodeName}: hello-$(MISSING)-$(GREETING)\n`);
    expect(done.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
  });

  it('ends restartPolicy Never / OnFailure pods in Succeeded or Failed with the exit reason', async () => {
    write('never-fail.yaml', podYaml('never-fail', { restartPolicy: 'Never', containers: [sh('c', 'exit 3')] }));
    write('onfailure-ok.yaml', podYaml('onfailure-ok', { restartPolicy: 'OnFailure', containers: [sh('c', 'exit 0')] }));
    const failed = await waitFor(async () => {
      const p = await podOf('never-fail');
      return p?.status.phase === 'Failed' && p;
    }, 20_000, 'never-fail Failed');
    expect(failed.status.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(failed.status.containerStatuses?.[0]?.restartCount).toBe(0);
    const ok = await waitFor(async () => {
      const p = await podOf('onfailure-ok');
      return p?.status.phase === 'Succeeded' && p;
    }, 20_000, 'onfailure-ok Succeeded');
    expect(ok.status.containerStatuses?.[0]?.restartCount).toBe(0);
    // The sandbox of a finished pod is stopped, and nothing is restarted.
    await new Promise((r) => setTimeout(r, 2000));
    expect((await podOf('never-fail'))?.status.containerStatuses?.[0]?.restartCount).toBe(0);
    remove('never-fail.yaml');
    remove('onfailure-ok.yaml');
  });

  it('restarts a crashing container with growing back-off and shows CrashLoopBackOff', async () => {
    write('crash.yaml', podYaml('crash', { containers: [sh('c', 'echo boom; exit 2')] }));
    const seenAt = new Map<number, number>();
    let sawBackoff: string | undefined;
    const t0 = Date.now();
    await waitFor(async () => {
      const p = await podOf('crash');
      const cs = p?.status.containerStatuses?.[0];
      if (cs && !seenAt.has(cs.restartCount)) seenAt.set(cs.restartCount, Date.now() - t0);
      if (cs?.state?.waiting?.reason === 'CrashLoopBackOff') sawBackoff = cs.state.waiting.message;
      return (cs?.restartCount ?? 0) >= 5;
    }, 70_000, 'five restarts');
    expect(sawBackoff).toMatch(new RegExp(`^back-off \\ds restarting failed container=c pod=crash-${berth.nodeName}_default\\(`));
    const p = (await podOf('crash'))!;
    const cs = p.status.containerStatuses![0]!;
    expect(cs.lastState?.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    // Gaps between restarts grow: 2s, 4s, 8s, then capped at 8s (flags above), plus each start's own cost.
    const gap = (n: number): number => seenAt.get(n)! - seenAt.get(n - 1)!;
    expect(gap(3)).toBeGreaterThan(gap(2) * 1.3);
    expect(gap(4)).toBeGreaterThan(7000);
    expect(gap(5)).toBeLessThan(12_000);
    remove('crash.yaml');
  }, 90_000);

  it('reports ErrImagePull / ImagePullBackOff with the engine message, and ErrImageNeverPull', async () => {
    write('nopull.yaml', podYaml('nopull', { containers: [{ name: 'c', image: 'registry.invalid/berth/none:1.0', imagePullPolicy: 'IfNotPresent' }] }));
    write('never.yaml', podYaml('never', { containers: [{ name: 'c', image: 'berth-test/not-here:1.0', imagePullPolicy: 'Never' }] }));
    const reasons = new Set<string>();
    let pullMessage = '';
    await waitFor(async () => {
      const w = (await podOf('nopull'))?.status.containerStatuses?.[0]?.state?.waiting;
      if (w?.reason) reasons.add(w.reason);
      if (w?.reason === 'ErrImagePull') pullMessage = w.message ?? '';
      return reasons.has('ErrImagePull') && reasons.has('ImagePullBackOff');
    }, 40_000, 'ErrImagePull then ImagePullBackOff');
    expect(pullMessage).toMatch(/registry\.invalid/);
    const never = await waitFor(async () => (await podOf('never'))?.status.containerStatuses?.[0]?.state?.waiting, 20_000, 'never waiting');
    expect(never).toEqual({ reason: 'ErrImageNeverPull', message: 'Container image "berth-test/not-here:1.0" is not present with pull policy of Never' });
    const p = (await podOf('nopull'))!;
    expect(p.status.phase).toBe('Pending');
    const ev = (await berth.pods()).events.filter((e) => e.object.name === `nopull-${berth.nodeName}`).map((e) => e.reason);
    expect(ev).toEqual(expect.arrayContaining(['Pulling', 'Failed', 'BackOff']));
    remove('nopull.yaml');
    remove('never.yaml');
  });

  it('honours the grace period: a SIGTERM trap exits cleanly, an ignorer is killed at the deadline', async () => {
    write('trap.yaml', podYaml('trap', { terminationGracePeriodSeconds: 3, containers: [sh('c', "trap 'echo bye; exit 0' TERM; while true; do sleep 0.2; done")] }));
    write('ignore.yaml', podYaml('ignore', { terminationGracePeriodSeconds: 3, containers: [sh('c', "trap '' TERM; while true; do sleep 0.2; done")] }));
    await waitFor(async () => (await podOf('trap'))?.status.phase === 'Running' && (await podOf('ignore'))?.status.phase === 'Running', 20_000, 'both Running');
    const ids = new Map<string, string>();
    for (const n of ['trap', 'ignore']) ids.set((await podOf(n))!.status.containerStatuses![0]!.containerID!.slice(9), n);
    const deaths = new Map<string, { exitCode: number; at: number }>();
    const events = (await docker.getEvents({ filters: { type: ['container'], event: ['die'], label: [`io.berth.node=${berth.nodeName}`] } })) as NodeJS.ReadableStream;
    events.on('data', (buf: Buffer) => {
      for (const line of buf.toString().split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as { id: string; Actor: { Attributes: Record<string, string> } };
        const n = ids.get(e.id);
        if (n) deaths.set(n, { exitCode: Number(e.Actor.Attributes.exitCode), at: Date.now() });
      }
    });
    const t0 = Date.now();
    remove('trap.yaml');
    remove('ignore.yaml');
    await waitFor(() => deaths.size === 2, 20_000, 'both containers to die');
    (events as unknown as { destroy: () => void }).destroy();
    expect(deaths.get('trap')!.exitCode).toBe(0);
    expect(deaths.get('trap')!.at - t0).toBeLessThan(2500);
    expect(deaths.get('ignore')!.exitCode).toBe(137);
    expect(deaths.get('ignore')!.at - t0).toBeGreaterThan(2800);
    expect(deaths.get('ignore')!.at - t0).toBeLessThan(8000);
    await waitFor(async () => !(await podOf('trap')) && !(await podOf('ignore')), 10_000, 'pods gone');
  });

  it('adds, replaces on edit, and removes pods as manifests change', async () => {
    write('life.yaml', podYaml('life', { containers: [sh('c', 'sleep 3600', { env: [{ name: 'V', value: '1' }] })] }));
    const first = await waitFor(async () => {
      const p = await podOf('life');
      return p?.status.phase === 'Running' && p;
    }, 20_000, 'life Running');
    write('life.yaml', podYaml('life', { terminationGracePeriodSeconds: 2, containers: [sh('c', 'sleep 3600', { env: [{ name: 'V', value: '2' }] })] }));
    // The old pod is stopped (30 s default grace: sh ignores SIGTERM) while its replacement already runs.
    const second = await waitFor(async () => {
      const all = (await berth.pods()).items.filter((p) => p.metadata?.name === `life-${berth.nodeName}`);
      return all.find((p) => p.metadata?.uid !== first.metadata?.uid && p.status.phase === 'Running');
    }, 20_000, 'edited pod Running with a new UID');
    expect(second.spec?.containers[0]?.env?.[0]?.value).toBe('2');
    expect(second.status.containerStatuses?.[0]?.containerID).not.toBe(first.status.containerStatuses?.[0]?.containerID);
    await waitFor(async () => (await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.uid'] === first.metadata?.uid).length === 0, 40_000, 'old pod removed');
    remove('life.yaml');
    await waitFor(async () => !(await podOf('life')) && (await berth.containers()).every((c) => c.Labels['io.kubernetes.pod.name'] !== `life-${berth.nodeName}`), 20_000, 'pod removed');
  });

  it('reports invalid manifests with file and reason and keeps running the rest', async () => {
    write('good.yaml', podYaml('good', { containers: [sh('c', 'sleep 3600')] }));
    write('bad-yaml.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: [\n');
    write('no-image.yaml', podYaml('noimage', { containers: [{ name: 'c' }] }));
    write('dupe.yaml', podYaml('dupe', { containers: [sh('a', 'true'), sh('a', 'true')] }));
    write('wrong-type.yaml', podYaml('wrongtype', { containers: 'not-a-list' }));
    const data = await waitFor(async () => {
      const d = await berth.pods();
      return d.errors.length >= 4 && d.items.find((p) => p.metadata?.name === `good-${berth.nodeName}` && p.status.phase === 'Running') && d;
    }, 20_000, 'errors reported and good pod Running');
    const byFile = (f: string): string => data.errors.filter((e) => e.file.endsWith(f)).map((e) => `${e.reason}: ${e.message}`).join('|');
    expect(byFile('bad-yaml.yaml')).toMatch(/^InvalidManifest: invalid YAML/);
    expect(byFile('no-image.yaml')).toBe('InvalidManifest: spec.containers[0].image: Required value');
    expect(byFile('dupe.yaml')).toBe('InvalidManifest: spec.containers[1].name: Duplicate value: "a"');
    expect(byFile('wrong-type.yaml')).toMatch(/spec\.containers: Invalid value: "not-a-list": must be of type array/);
    expect(berth.alive()).toBe(true);
    for (const f of ['bad-yaml.yaml', 'no-image.yaml', 'dupe.yaml', 'wrong-type.yaml']) remove(f);
  });

  it('re-adopts running pods after a berth restart without restarting or duplicating them', async () => {
    write('keep.yaml', podYaml('keep', { containers: [sh('c', 'sleep 3600')] }));
    write('loop.yaml', podYaml('loop', { containers: [sh('c', 'exit 1')] }));
    await waitFor(async () => (await podOf('keep'))?.status.phase === 'Running' && ((await podOf('loop'))?.status.containerStatuses?.[0]?.restartCount ?? 0) >= 2, 30_000, 'keep Running, loop restarted twice');
    const before = await berth.containers();
    const keepId = (await podOf('keep'))!.status.containerStatuses![0]!.containerID;
    const loopRestarts = (await podOf('loop'))!.status.containerStatuses![0]!.restartCount;
    expect(await berth.stop()).toBe(0);
    // Pods keep running while berth is down: the sandbox and container of `keep` are untouched.
    const during = await berth.containers();
    const keepBefore = before.filter((c) => c.Labels['io.kubernetes.pod.name'] === `keep-${berth.nodeName}`);
    expect(keepBefore).toHaveLength(2);
    for (const c of keepBefore) expect(during.find((d) => d.Id === c.Id)?.State).toBe('running');
    expect(during.some((c) => c.Id === keepId!.slice(9) && c.State === 'running')).toBe(true);
    berth.start();
    const after = await waitFor(async () => {
      const p = await podOf('keep');
      return p?.status.phase === 'Running' && p;
    }, 20_000, 'keep Running after restart');
    expect(after.status.containerStatuses?.[0]?.containerID).toBe(keepId);
    expect(after.status.containerStatuses?.[0]?.restartCount).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    const keepContainers = (await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `keep-${berth.nodeName}`);
    expect(keepContainers).toHaveLength(2); // sandbox + container, no duplicate
    const loop = (await podOf('loop'))!;
    expect(loop.status.containerStatuses![0]!.restartCount).toBeGreaterThanOrEqual(loopRestarts);
    remove('keep.yaml');
    remove('loop.yaml');
  });
});
