// Pod lifecycle details on the real Docker Engine through `berth run`: init containers and emptyDir,
// readiness/liveness probes (HTTP, exec, TCP) with upstream's Unhealthy events, OOMKilled, hostPath,
// postStart/preStop hooks, and a sandbox killed behind berth's back.
import { describe, expect, it } from 'vitest';
import { readFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker, manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';

const pod = (name: string, spec: Record<string, unknown>): string => podManifest(name, { terminationGracePeriodSeconds: 2, ...spec });
const sh = shContainer;

describe('pod lifecycle details', () => {
  const berth = useBerth({ extraArgs: ['--crash-loop-backoff-initial=1s', '--crash-loop-backoff-max=2s'], readyWhat: 'berth up' });
  const { write, remove } = manifestFiles(berth);
  const get = (n: string): Promise<PodWithStatus | undefined> => berth.pod(n);
  const events = async (n: string): Promise<string[]> =>
    (await berth.pods()).events.filter((e) => e.object.name === `${n}-${berth.nodeName}`).map((e) => `${e.reason}: ${e.message}`);

  it('runs init containers in order before app containers, sharing an emptyDir', async () => {
    write(
      'init.yaml',
      pod('init', {
        volumes: [{ name: 'work', emptyDir: {} }],
        initContainers: [
          sh('one', 'echo one >> /work/log', { volumeMounts: [{ name: 'work', mountPath: '/work' }] }),
          sh('two', 'echo two >> /work/log', { volumeMounts: [{ name: 'work', mountPath: '/work' }] }),
        ],
        containers: [sh('app', 'cat /work/log > /dev/termination-log; sleep 3600', { volumeMounts: [{ name: 'work', mountPath: '/work' }] })],
      }),
    );
    const p = await waitFor(async () => {
      const x = await get('init');
      return x?.status.phase === 'Running' && x.status.containerStatuses?.[0]?.ready && x;
    }, 30_000, 'init pod Running');
    expect(p.status.initContainerStatuses?.map((s) => [s.name, s.state?.terminated?.reason, s.ready])).toEqual([
      ['one', 'Completed', true],
      ['two', 'Completed', true],
    ]);
    expect(p.status.conditions?.find((c) => c.type === 'Initialized')?.status).toBe('True');
    const file = readFileSync(path.join(berth.rootDir, 'pods', p.metadata!.uid!, 'volumes/kubernetes.io~empty-dir/work/log'), 'utf8');
    expect(file).toBe('one\ntwo\n');
    remove('init.yaml');
  });

  it('keeps a failing init container from starting the app (Init:CrashLoopBackOff / Init:Error)', async () => {
    write('badinit.yaml', pod('badinit', { restartPolicy: 'Never', initContainers: [sh('fail', 'exit 7')], containers: [sh('app', 'sleep 3600')] }));
    const p = await waitFor(async () => {
      const x = await get('badinit');
      return x?.status.phase === 'Failed' && x;
    }, 30_000, 'badinit Failed');
    expect(p.status.initContainerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 7, reason: 'Error' });
    expect(p.status.containerStatuses?.[0]?.state?.waiting?.reason).toBe('PodInitializing');
    expect(p.status.conditions?.find((c) => c.type === 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized' });
    expect((await berth.containers()).some((c) => c.Labels['io.kubernetes.container.name'] === 'app' && c.Labels['io.kubernetes.pod.name'] === `badinit-${berth.nodeName}`)).toBe(false);
    remove('badinit.yaml');
  });

  it('gates Ready on an HTTP readiness probe and restarts on a failing exec liveness probe', async () => {
    write(
      'probes.yaml',
      pod('probes', {
        containers: [
          sh('web', 'mkdir -p /www; sleep 2; echo ok > /www/ready; exec httpd -f -p 8080 -h /www', {
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
          }),
          sh('live', 'touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600', {
            livenessProbe: { exec: { command: ['cat', '/tmp/healthy'] }, periodSeconds: 1, failureThreshold: 2 },
          }),
        ],
      }),
    );
    let sawUnready = false;
    const ready = await waitFor(async () => {
      const x = await get('probes');
      const web = x?.status.containerStatuses?.find((c) => c.name === 'web');
      if (web?.state?.running && !web.ready) sawUnready = true;
      return web?.ready && x;
    }, 20_000, 'web ready');
    expect(sawUnready).toBe(true);
    expect(ready.status.containerStatuses?.find((c) => c.name === 'web')?.started).toBe(true);
    const restarted = await waitFor(async () => {
      const x = await get('probes');
      const live = x?.status.containerStatuses?.find((c) => c.name === 'live');
      return (live?.restartCount ?? 0) >= 1 && live;
    }, 30_000, 'live restarted by liveness');
    expect(restarted.lastState?.terminated).toBeDefined();
    const ev = await events('probes');
    expect(ev.some((e) => /^Unhealthy: Liveness probe failed: cat: can't open '\/tmp\/healthy': No such file or directory/.test(e))).toBe(true);
    expect(ev).toContain('Killing: Container live failed liveness probe, will be restarted');
    expect(ev.some((e) => e.startsWith('Unhealthy: Readiness probe failed: Get "http://'))).toBe(true);
    remove('probes.yaml');
  });

  it('reports OOMKilled for a container over its memory limit', async () => {
    write(
      'oom.yaml',
      pod('oom', {
        restartPolicy: 'Never',
        containers: [sh('hog', 'x=0123456789; while true; do x=$x$x; done', { resources: { limits: { memory: '20Mi' } } })],
      }),
    );
    const p = await waitFor(async () => {
      const x = await get('oom');
      return x?.status.phase === 'Failed' && x;
    }, 30_000, 'oom pod Failed');
    expect(p.status.containerStatuses?.[0]?.state?.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
    expect(p.status.qosClass).toBe('Burstable');
    remove('oom.yaml');
  });

  it('mounts hostPath volumes and runs postStart / preStop hooks', async () => {
    const host = mkdtempSync(path.join(os.tmpdir(), 'berth-hostpath-'));
    write(
      'hooks.yaml',
      pod('hooks', {
        volumes: [{ name: 'h', hostPath: { path: host, type: 'Directory' } }],
        containers: [
          sh('c', 'sleep 3600', {
            volumeMounts: [{ name: 'h', mountPath: '/h' }],
            lifecycle: { postStart: { exec: { command: ['sh', '-c', 'echo started > /h/post'] } }, preStop: { exec: { command: ['sh', '-c', 'echo stopping > /h/pre'] } } },
          }),
        ],
      }),
    );
    await waitFor(async () => (await get('hooks'))?.status.phase === 'Running', 20_000, 'hooks Running');
    expect(readFileSync(path.join(host, 'post'), 'utf8')).toBe('started\n');
    remove('hooks.yaml');
    await waitFor(async () => !(await get('hooks')), 20_000, 'hooks pod gone');
    expect(readFileSync(path.join(host, 'pre'), 'utf8')).toBe('stopping\n');
  });

  it('recreates the sandbox when it is killed behind berth’s back, with SandboxChanged', async () => {
    write('sb.yaml', pod('sb', { containers: [sh('c', 'sleep 3600')] }));
    const p = await waitFor(async () => {
      const x = await get('sb');
      return x?.status.phase === 'Running' && x;
    }, 20_000, 'sb Running');
    const sandbox = (await berth.containers()).find((c) => c.Labels['io.kubernetes.pod.name'] === `sb-${berth.nodeName}` && c.Labels['io.kubernetes.docker.type'] === 'podsandbox')!;
    await docker.getContainer(sandbox.Id).kill();
    const after = await waitFor(async () => {
      const x = await get('sb');
      const cs = x?.status.containerStatuses?.[0];
      return cs?.state?.running && cs.restartCount >= 1 && x;
    }, 30_000, 'pod running again in a new sandbox');
    expect(after.status.containerStatuses?.[0]?.containerID).not.toBe(p.status.containerStatuses?.[0]?.containerID);
    expect(await events('sb')).toContain('SandboxChanged: Pod sandbox changed, it will be killed and re-created.');
    const sandboxes = (await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `sb-${berth.nodeName}` && c.Labels['io.kubernetes.docker.type'] === 'podsandbox');
    expect(sandboxes.filter((s) => s.State === 'running')).toHaveLength(1);
    remove('sb.yaml');
  });
});
