// berth as a node of a real cluster (kube-apiserver 1.20 + etcd + controller-manager from the rig), with its
// node identity under the Node authorizer and NodeRestriction; kubectl (admin) is the user.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { docker, REPO, shContainer } from '../helpers/berth.ts';
import { BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { deleteRunObjects, e2eNodeName, getPod as getNsPod, kubectl, kubectlApply, paths, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';

const getPod = (name: string): Promise<Pod | undefined> => getNsPod(NS, name);

const RUN = uniqueName('run');
const podManifest = (name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name, 'berth-e2e': RUN } },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 5, ...spec },
  });
const c = (script: string, more: Record<string, unknown> = {}): Record<string, unknown> => shContainer('c', script, more);

function apiserverPid(): number {
  return Number(readFileSync(path.join(paths.dir, 'run', 'kube-apiserver.pid'), 'utf8').trim());
}

describe.skipIf(!up)('berth as a cluster node', () => {
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--crash-loop-backoff-initial=2s', '--crash-loop-backoff-max=8s', '--node-ip=127.0.0.1'],
    replaceNode: true,
    beforeStart: () =>
      writeFileSync(
        path.join(berth.manifestDir, 'static.yaml'),
        JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'static-web', namespace: NS }, spec: { containers: [c('sleep 3600')] } }),
      ),
    hookTimeoutMs: 60_000,
    // Stop berth and remove its containers first, then the API objects (retried: the API server may have
    // just restarted).
    afterCleanup: () =>
      deleteRunObjects({ ns: NS, run: RUN, node: NODE, also: [['delete', 'pod', '-n', NS, `static-web-${NODE}`, '--ignore-not-found', '--grace-period=0', '--force']] }),
    cleanupTimeoutMs: 90_000,
  });
  const create = async (name: string, spec: Record<string, unknown>): Promise<void> => {
    await kubectlApply(podManifest(name, spec));
  };

  it('registers the node: Ready in kubectl get nodes, with addresses, capacity and nodeInfo', async () => {
    const wide = await kubectl(['get', 'nodes', NODE, '-o', 'wide', '--no-headers']);
    expect(wide).toMatch(new RegExp(`^${NODE}\\s+Ready\\s`));
    const node = JSON.parse(await kubectl(['get', 'node', NODE, '-o', 'json'])) as {
      metadata: { labels: Record<string, string> };
      status: { addresses: { type: string; address: string }[]; capacity: Record<string, string>; nodeInfo: { containerRuntimeVersion: string } };
    };
    expect(node.metadata.labels['kubernetes.io/hostname']).toBe(NODE);
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    expect(node.status.capacity.pods).toBe('110');
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^docker:\/\//);
  });

  it('runs a pod created with kubectl to Running/Ready with upstream-shaped containerStatuses', async () => {
    const name = uniqueName('web');
    await create(name, { containers: [c('echo hi; sleep 3600', { readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 } })] });
    const pod = await waitFor(
      async () => {
        const p = await getPod(name);
        return p?.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') && p;
      },
      30_000,
      { what: 'pod Ready' },
    );
    expect(pod.status?.phase).toBe('Running');
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs).toMatchObject({ name: 'c', ready: true, started: true, restartCount: 0, image: BUSYBOX_IMAGE });
    expect(cs?.containerID).toMatch(/^docker:\/\/[0-9a-f]{64}$/);
    expect(cs?.imageID).toMatch(/^docker:\/\/sha256:[0-9a-f]{64}$/);
    expect(cs?.state?.running?.startedAt).toBeTruthy();
    expect(pod.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(pod.status?.hostIP).toBe('127.0.0.1');
    expect(pod.status?.qosClass).toBe('BestEffort');
    expect(pod.status?.conditions?.map((x) => x.type).sort()).toEqual(['ContainersReady', 'Initialized', 'PodScheduled', 'Ready']);
    const wide = await kubectl(['get', 'pod', '-n', NS, name, '-o', 'wide', '--no-headers']);
    expect(wide).toMatch(new RegExp(`^${name}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${pod.status!.podIP!.replace(/\./g, '\\.')}\\s+${NODE}\\s`));
    const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`, '-o', 'jsonpath={.items[*].reason}']);
    expect(events.split(' ')).toEqual(expect.arrayContaining(['Pulled', 'Created', 'Started']));
  });

  it('shows CrashLoopBackOff and restart counts for a crashing pod', async () => {
    const name = uniqueName('crash');
    await create(name, { containers: [c('exit 1')] });
    let sawCrashLoop = false;
    await waitFor(
      async () => {
        const p = await getPod(name);
        const cs = p?.status?.containerStatuses?.[0];
        if (cs?.state?.waiting?.reason === 'CrashLoopBackOff') sawCrashLoop = true;
        return sawCrashLoop && (cs?.restartCount ?? 0) >= 2;
      },
      40_000,
      { what: 'CrashLoopBackOff with 2 restarts' },
    );
    // kubectl's STATUS column as an operator sees it (between restarts; the container runs only an instant).
    await waitFor(async () => /\s0\/1\s+CrashLoopBackOff\s+[2-9]/.test(await kubectl(['get', 'pod', '-n', NS, name, '--no-headers'])), 20_000, {
      what: 'kubectl get pod showing 0/1 CrashLoopBackOff',
    });
    const p = (await getPod(name))!;
    expect(p.status?.containerStatuses?.[0]?.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
  });

  it('honours the grace period on kubectl delete, then the pod disappears', async () => {
    const quick = uniqueName('quick');
    const slow = uniqueName('slow');
    await create(quick, { terminationGracePeriodSeconds: 20, containers: [c("trap 'exit 0' TERM; while true; do sleep 0.2; done")] });
    await create(slow, { terminationGracePeriodSeconds: 4, containers: [c("trap '' TERM; while true; do sleep 0.2; done")] });
    for (const n of [quick, slow]) await waitFor(async () => (await getPod(n))?.status?.phase === 'Running', 30_000, { what: `${n} Running` });
    const t0 = Date.now();
    await kubectl(['delete', 'pod', '-n', NS, quick, slow, '--wait=false']);
    const gone: Record<string, number> = {};
    await waitFor(
      async () => {
        for (const n of [quick, slow]) if (!(n in gone) && !(await getPod(n))) gone[n] = Date.now() - t0;
        return Object.keys(gone).length === 2;
      },
      30_000,
      { what: 'both pods deleted' },
    );
    expect(gone[quick]).toBeLessThan(8000);
    expect(gone[slow]).toBeGreaterThanOrEqual(3500);
    // The API object goes once the containers are stopped; their removal follows right after.
    await waitFor(async () => (await docker.listContainers({ all: true, filters: { label: [`io.kubernetes.pod.name=${slow}`] } })).length === 0, 10_000, {
      what: 'slow pod containers removed',
    });
  });

  it('shows a static pod as a mirror pod', async () => {
    const mirror = await waitFor(
      async () => {
        const p = await getPod(`static-web-${NODE}`);
        return p?.status?.phase === 'Running' && p;
      },
      30_000,
      { what: 'mirror pod Running' },
    );
    expect(mirror.metadata?.annotations?.['kubernetes.io/config.mirror']).toBeTruthy();
    expect(mirror.metadata?.annotations?.['kubernetes.io/config.source']).toBe('file');
    expect(mirror.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: NODE });
    expect(mirror.status?.containerStatuses?.[0]?.ready).toBe(true);
    // Deleting a mirror pod does not stop the static pod; berth recreates the mirror.
    const before = mirror.metadata!.uid;
    await kubectl(['delete', 'pod', '-n', NS, `static-web-${NODE}`, '--wait=false']);
    const again = await waitFor(async () => {
      const p = await getPod(`static-web-${NODE}`);
      return p && p.metadata?.uid !== before && !p.metadata?.deletionTimestamp && p;
    }, 30_000, { what: 'mirror pod recreated' });
    expect(again.metadata?.annotations?.['kubernetes.io/config.mirror']).toBe(mirror.metadata?.annotations?.['kubernetes.io/config.mirror']);
  });

  it('rejects a pod that does not fit with OutOfmemory', async () => {
    const name = uniqueName('big');
    await create(name, { containers: [c('sleep 3600', { resources: { requests: { memory: '4000Gi' } } })] });
    const p = await waitFor(async () => {
      const x = await getPod(name);
      return x?.status?.phase === 'Failed' && x;
    }, 20_000, { what: 'pod rejected' });
    expect(p.status?.reason).toBe('OutOfmemory');
    expect(p.status?.message).toMatch(/^Pod Node didn't have enough resource: memory, requested: 4294967296000, used: \d+, capacity: \d+$/);
    expect(await kubectl(['get', 'pod', '-n', NS, name, '--no-headers'])).toMatch(/\s0\/1\s+OutOfmemory\s/);
    const left = await docker.listContainers({ all: true, filters: { label: [`io.kubernetes.pod.name=${name}`] } });
    expect(left).toHaveLength(0);
  });

  it('removes, on start, a pod that was deleted from the API server while berth was down', async () => {
    const name = uniqueName('gone');
    const keep = uniqueName('stay');
    await create(name, { containers: [c('sleep 3600')] });
    await create(keep, { containers: [c('sleep 3600')] });
    for (const n of [name, keep]) await waitFor(async () => (await getPod(n))?.status?.phase === 'Running', 30_000, { what: `${n} Running` });
    const keepId = (await getPod(keep))!.status!.containerStatuses![0]!.containerID;
    expect(await berth.stop()).toBe(0);
    await kubectl(['delete', 'pod', '-n', NS, name, '--grace-period=0', '--force']);
    const label = { filters: { label: [`io.kubernetes.pod.name=${name}`] } };
    expect(await docker.listContainers(label)).toHaveLength(2); // untouched while berth is down
    berth.start();
    await waitFor(async () => (await docker.listContainers({ all: true, ...label })).length === 0, 30_000, { what: 'orphaned pod removed' });
    const k = await waitFor(async () => {
      const p = await getPod(keep);
      return p?.status?.containerStatuses?.[0]?.ready && p;
    }, 30_000, { what: 'kept pod Ready after restart' });
    expect(k.status?.containerStatuses?.[0]?.containerID).toBe(keepId);
    expect(k.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  }, 90_000);

  it('keeps pods running through a 60 s API server outage and reconverges statuses after', async () => {
    const keep = uniqueName('keep');
    const finish = uniqueName('finish');
    await create(keep, { containers: [c('sleep 3600')] });
    await create(finish, { restartPolicy: 'Never', containers: [c('sleep 15; exit 3')] });
    for (const n of [keep, finish]) await waitFor(async () => (await getPod(n))?.status?.phase === 'Running', 30_000, { what: `${n} Running` });
    const keepId = (await getPod(keep))!.status!.containerStatuses![0]!.containerID;
    const pid = apiserverPid();
    process.kill(pid, 'SIGTERM');
    // Gone, or a zombie (the rig's processes are re-parented to a PID 1 that may not reap them).
    const dead = (): boolean => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
      } catch {
        return true;
      }
    };
    // A graceful shutdown can linger on open watches: like the rig's stop, KILL after a while.
    await waitFor(dead, 10_000, { what: 'kube-apiserver stopped' }).catch(() => process.kill(pid, 'SIGKILL'));
    await waitFor(dead, 10_000, { what: 'kube-apiserver killed' });
    await new Promise((r) => setTimeout(r, 60_000));
    // Still running without the API server; berth is alive.
    const running = await docker.listContainers({ filters: { label: [`io.kubernetes.pod.name=${keep}`] } });
    expect(running.map((x) => `docker://${x.Id}`)).toContain(keepId);
    expect(berth.alive()).toBe(true);
    execFileSync('bash', [path.join(REPO, 'test/e2e/apiserver.sh'), 'start'], {
      env: { ...process.env, RIG_CONTROLLERS: '1', RIG_SA_ADMISSION: '0', RIG_NODES: `node-1 node-2 ${NODE}`.replace(/\s+/g, ' ') },
      stdio: 'ignore',
      timeout: 120_000,
    });
    const done = await waitFor(async () => {
      const p = await getPod(finish);
      return p?.status?.phase === 'Failed' && p;
    }, 60_000, { what: 'finished pod status caught up' });
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
    const k = (await getPod(keep))!;
    expect(k.status?.containerStatuses?.[0]?.containerID).toBe(keepId);
    expect(k.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    const dupes = await docker.listContainers({ all: true, filters: { label: [`io.kubernetes.pod.name=${keep}`] } });
    expect(dupes).toHaveLength(2);
    await waitFor(async () => (await kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True', 60_000, { what: 'node Ready again' });
  }, 240_000);
});
