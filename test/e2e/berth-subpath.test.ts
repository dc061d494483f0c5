// berth as a node of the rig's real kube-apiserver, for pod volume safety and deadlines:
// - issue #11: a pod whose subPathExpr expands to `..` (the API server accepts `$(UP)`) fails its
//   container with CreateContainerConfigError and a Warning Failed Event;
// - issue #13: lowering activeDeadlineSeconds of a running pod to 5 s ends it within 10 s with
//   Failed / DeadlineExceeded;
// - issue #9 defect 2: a Secret volume lives on tmpfs, holds the exact bytes with defaultMode, and a key
//   removed from the Secret disappears from the running pod.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Pod } from 'kubernetes-types/core/v1';
import { docker, shContainer } from '../helpers/berth.ts';
import { deleteRunObjects, e2eNodeName, getPod as getNsPod, kubectl, kubectlApply, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';
const RUN = uniqueName('subpath');

const getPod = (name: string): Promise<Pod | undefined> => getNsPod(NS, name);
const manifest = (name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { 'berth-e2e': RUN } }, spec: { nodeName: NODE, terminationGracePeriodSeconds: 2, ...spec } });
const c = (script: string, more: Record<string, unknown> = {}): Record<string, unknown> => shContainer('c', script, more);

describe.skipIf(!up)('berth node: subPath safety, deadlines and secret volumes against the API server', () => {
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', '--sync-frequency=3s'],
    replaceNode: true,
    hookTimeoutMs: 60_000,
    afterCleanup: () => deleteRunObjects({ ns: NS, run: RUN, node: NODE, also: [['delete', 'secret', '-n', NS, '-l', `berth-e2e=${RUN}`, '--ignore-not-found']] }),
    cleanupTimeoutMs: 90_000,
  });
  const create = (name: string, spec: Record<string, unknown>): Promise<string> => kubectlApply(manifest(name, spec));

  it('a subPathExpr that expands to .. fails with CreateContainerConfigError and a Failed Event', async () => {
    const name = uniqueName('subpath');
    await create(name, {
      volumes: [{ name: 'v', emptyDir: {} }],
      containers: [c('sleep 3600', { env: [{ name: 'UP', value: '..' }], volumeMounts: [{ name: 'v', mountPath: '/v', subPathExpr: '$(UP)' }] })],
    });
    const waiting = await waitFor(
      async () => {
        const w = (await getPod(name))?.status?.containerStatuses?.[0]?.state?.waiting;
        return w?.reason === 'CreateContainerConfigError' && w;
      },
      40_000,
      { what: 'CreateContainerConfigError', intervalMs: 500 },
    );
    expect(waiting.message).toBe("unable to provision SubPath `..`: must not contain '..'");
    const events = await waitFor(
      async () => {
        const out = await kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name},reason=Failed`, '-o', 'json']);
        const items = (JSON.parse(out) as { items: { type: string; message: string; involvedObject: { fieldPath?: string } }[] }).items;
        return items.length > 0 && items;
      },
      30_000,
      { what: 'Failed event', intervalMs: 500 },
    );
    expect(events[0]).toMatchObject({ type: 'Warning', message: "Error: unable to provision SubPath `..`: must not contain '..'", involvedObject: { fieldPath: 'spec.containers{c}' } });
  }, 90_000);

  it('lowering activeDeadlineSeconds of a running pod to 5 s ends it within 10 s with DeadlineExceeded', async () => {
    const name = uniqueName('deadline');
    await create(name, { activeDeadlineSeconds: 3600, containers: [c("trap 'exit 0' TERM; while true; do sleep 0.2; done")] });
    await waitFor(async () => (await getPod(name))?.status?.phase === 'Running', 40_000, { what: 'pod Running', intervalMs: 500 });
    const t0 = Date.now();
    await kubectl(['patch', 'pod', '-n', NS, name, '-p', JSON.stringify({ spec: { activeDeadlineSeconds: 5 } })]);
    const p = await waitFor(
      async () => {
        const x = await getPod(name);
        return x?.status?.phase === 'Failed' && x;
      },
      30_000,
      { what: 'pod Failed', intervalMs: 250 },
    );
    const started = Date.parse(p.status?.startTime ?? '');
    // The deadline counts from status.startTime: the pod ends at startTime+5s or, if that has passed, right after the update.
    const due = Math.max(t0, started + 5000);
    expect(Date.now() - due).toBeLessThan(10_000);
    expect(p.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' });
    const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`, '-o', 'jsonpath={.items[*].reason}']);
    expect(events.split(' ')).toContain('DeadlineExceeded');
    // Nothing is restarted afterwards.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await getPod(name))?.status?.phase).toBe('Failed');
    expect((await berth.containers()).filter((x) => x.Labels['io.kubernetes.pod.name'] === name && x.State === 'running')).toEqual([]);
  }, 90_000);

  it('a Secret volume: tmpfs, exact bytes, defaultMode, and a removed key disappears from the running pod', async () => {
    const secret = uniqueName('sec');
    const bin = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x0a]);
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secret, namespace: NS, labels: { 'berth-e2e': RUN } },
        data: { bin: bin.toString('base64'), gone: Buffer.from('bye').toString('base64') },
      }),
    });
    const name = uniqueName('secvol');
    await create(name, {
      volumes: [{ name: 's', secret: { secretName: secret, defaultMode: 0o440 } }],
      containers: [c('sleep 3600', { volumeMounts: [{ name: 's', mountPath: '/s' }] })],
    });
    const p = await waitFor(async () => ((await getPod(name))?.status?.phase === 'Running' ? getPod(name) : undefined), 40_000, { what: 'pod Running', intervalMs: 500 });
    const uid = p!.metadata!.uid!;
    const dir = `${berth.rootDir}/pods/${uid}/volumes/kubernetes.io~secret/s`;
    // On tmpfs, never on the root dir's disk.
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    expect(mountinfo.find((l) => l.split(' ')[4] === dir)).toMatch(/ - tmpfs /);
    const cid = p!.status!.containerStatuses![0]!.containerID!.replace('docker://', '');
    const exec = async (cmd: string[]): Promise<Buffer> => {
      const e = await docker.getContainer(cid).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: false });
      const stream = await e.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve) => {
        docker.modem.demuxStream(stream, { write: (b: Buffer) => chunks.push(b) } as unknown as NodeJS.WritableStream, process.stderr);
        stream.on('end', () => resolve());
      });
      return Buffer.concat(chunks);
    };
    expect((await exec(['cat', '/s/bin'])).equals(bin)).toBe(true);
    expect((await exec(['stat', '-L', '-c', '%a', '/s/bin'])).toString().trim()).toBe('440');
    expect((await exec(['sh', '-c', 'touch /s/x 2>/dev/null && echo rw || echo ro'])).toString().trim()).toBe('ro');
    // Remove a key: it disappears from the running pod (berth re-projects on its periodic sync).
    await kubectl(['patch', 'secret', '-n', NS, secret, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/data/gone' }])]);
    await waitFor(async () => (await exec(['sh', '-c', 'test -e /s/gone && echo yes || echo no'])).toString().trim() === 'no', 40_000, {
      what: 'removed key gone',
      intervalMs: 1000,
    });
    expect((await exec(['cat', '/s/bin'])).equals(bin)).toBe(true);
  }, 120_000);

  it('a projected volume: kube-root-ca.crt, the namespace and a secret key on tmpfs, read-only', async () => {
    const secret = uniqueName('psec');
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secret, namespace: NS, labels: { 'berth-e2e': RUN } }, stringData: { user: 'admin' } }),
    });
    const ca = JSON.parse(await kubectl(['get', 'configmap', '-n', NS, 'kube-root-ca.crt', '-o', 'json'])) as { data: Record<string, string> };
    const name = uniqueName('proj');
    await create(name, {
      restartPolicy: 'Never',
      volumes: [
        {
          name: 'api',
          projected: {
            sources: [
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
              { secret: { name: secret, items: [{ key: 'user', path: 'creds/user', mode: 0o400 }] } },
            ],
          },
        },
      ],
      containers: [
        c('cat /p/ca.crt > /dev/termination-log; echo "|$(cat /p/namespace)|$(cat /p/creds/user)|$(stat -L -c %a /p/creds/user)|$(grep " /p " /proc/mounts | cut -d" " -f3,4 | cut -d, -f1)" >> /dev/termination-log', {
          volumeMounts: [{ name: 'api', mountPath: '/p' }],
        }),
      ],
    });
    const p = await waitFor(
      async () => {
        const x = await getPod(name);
        return (x?.status?.phase === 'Succeeded' || x?.status?.phase === 'Failed') && x;
      },
      40_000,
      { what: 'projected pod finished', intervalMs: 500 },
    );
    const msg = p.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '';
    expect(p.status?.phase, msg).toBe('Succeeded');
    // The message is capped at 4 KiB; the CA bundle of the rig is well below.
    expect(msg).toBe(`${ca.data['ca.crt']}|${NS}|admin|400|tmpfs ro\n`);
  }, 90_000);
});
