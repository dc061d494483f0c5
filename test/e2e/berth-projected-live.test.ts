// Issue #12: a projected volume of a running pod follows its sources. berth as node `vm` of the rig's real
// kube-apiserver with --sync-frequency=5s; a pod with a projected volume sourcing a ConfigMap and a Secret. A changed
// ConfigMap value and a key removed from the Secret (through kubectl) reach the container within 20 s (read with
// `kubectl exec … cat`), and `..data` then points to a new timestamped directory (the atomic writer's swap); without
// a change it stays where it is. Runs berth as the e2e node: wrap by hand in `flock /tmp/berth-e2e.lock`.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthProcess, docker } from '../helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const TS_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[A-Za-z0-9]+$/;

/** `kubectl exec` as the admin user; keeps the exit code (a missing file is an answer, not an error). */
function kexec(ns: string, pod: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(paths.kubectl, ['--kubeconfig', paths.adminKubeconfig, '-n', ns, 'exec', pod, '--', ...cmd], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(!up)('berth node: a projected volume follows its ConfigMap and Secret in a running pod', () => {
  const NS = uniqueName('projlive');
  const POD = 'live';
  const CM = 'live-cm';
  const SECRET = 'live-secret';
  const berth = new BerthProcess({
    nodeName: NODE,
    extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(NODE)}`, '--node-ip=127.0.0.1', '--port=10250', '--sync-frequency=5s'],
  });
  const cat = async (file: string): Promise<string | undefined> => {
    const r = await kexec(NS, POD, ['cat', file]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw new Error(`kubectl exec cat ${file}: exit ${r.code}: ${r.stderr}`);
    }
    return r.stdout;
  };
  const dataTarget = async (): Promise<string> => {
    const r = await kexec(NS, POD, ['readlink', '/p/..data']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const listing = async (): Promise<string[]> => {
    const r = await kexec(NS, POD, ['ls', '-a', '/p']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((x) => x && x !== '.' && x !== '..').sort();
  };

  beforeAll(async () => {
    await ensureTestImages(docker);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CM, namespace: NS }, data: { color: 'red' } }),
    });
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: NS }, stringData: { user: 'admin', gone: 'bye' } }),
    });
    berth.start();
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: POD, namespace: NS },
        spec: {
          nodeName: NODE,
          terminationGracePeriodSeconds: 1,
          automountServiceAccountToken: false,
          containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'], volumeMounts: [{ name: 'p', mountPath: '/p' }] }],
          volumes: [{ name: 'p', projected: { sources: [{ configMap: { name: CM } }, { secret: { name: SECRET } }] } }],
        },
      }),
    });
    await waitFor(async () => (await kubectl(['-n', NS, 'get', 'pod', POD, '-o', 'jsonpath={.status.phase}'])) === 'Running', 60_000, {
      what: 'pod Running',
      intervalMs: 500,
    });
  }, 90_000);

  afterAll(async () => {
    await berth.cleanup();
    await kubectl(['delete', 'pod', '-n', NS, '--all', '--grace-period=0', '--force']).catch(() => undefined);
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']).catch(() => undefined);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }, 60_000);

  it('a changed ConfigMap value and a removed Secret key reach the container within 20 s, through a new ..data dir', async () => {
    expect(await cat('/p/color')).toBe('red');
    expect(await cat('/p/user')).toBe('admin');
    expect(await cat('/p/gone')).toBe('bye');
    const before = await dataTarget();
    expect(before).toMatch(TS_DIR);
    expect(await listing()).toEqual(['..data', before, 'color', 'gone', 'user'].sort());

    // Nothing changed: a sync (5 s) later the projection is where it was (the writer only swaps for a new payload).
    await new Promise((r) => setTimeout(r, 6000));
    expect(await dataTarget()).toBe(before);

    const t0 = Date.now();
    await kubectl(['-n', NS, 'patch', 'configmap', CM, '-p', JSON.stringify({ data: { color: 'blue' } })]);
    await kubectl(['-n', NS, 'patch', 'secret', SECRET, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/data/gone' }])]);
    await waitFor(async () => (await cat('/p/color')) === 'blue' && (await cat('/p/gone')) === undefined, 30_000, {
      what: 'projected volume updated in the container',
      intervalMs: 500,
    });
    const took = Date.now() - t0;
    expect(took).toBeLessThan(20_000);

    expect(await cat('/p/user')).toBe('admin');
    const after = await dataTarget();
    expect(after).toMatch(TS_DIR);
    expect(after).not.toBe(before);
    // The old version and the removed key's name are gone from the volume.
    expect(await listing()).toEqual(['..data', after, 'color', 'user'].sort());
    const r = await kexec(NS, POD, ['cat', `/p/${after}/color`]);
    expect(r.stdout).toBe('blue');
  }, 80_000);
});
