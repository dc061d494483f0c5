// Issue #13 on the real dockerd: containers running as non-root users (1001, and 65534 "nobody") can
// write to emptyDir on both media (mode 0777 whatever berth's umask), write a termination message at
// a custom path (host file chmod 0666) that is read back into the status, and read /etc/hosts,
// /etc/resolv.conf and a downwardAPI volume (0644 files, read-only mount).
import { describe, expect, it } from 'vitest';
import { manifestFiles, podManifest, shContainer, waitFor, useBerth } from '../helpers/berth.ts';

const SCRIPT = [
  'set -e',
  'touch /disk/f /mem/f',
  'mkdir -p /disk/sub && echo x > /disk/sub/g',
  'cat /etc/hosts /etc/resolv.conf > /dev/null',
  'cat /info/name > /dev/null',
  'if touch /info/x 2>/dev/null; then ro=rw; else ro=ro; fi',
  // Fields: uid, modes of both emptyDirs, of hosts/resolv.conf, of the downward file, and the info mount's writability.
  'echo "$(id -u) $(stat -c %a /disk) $(stat -c %a /mem) $(stat -L -c %a /etc/hosts) $(stat -L -c %a /etc/resolv.conf) $(stat -L -c %a /info/name) $ro" > /dev/termination-custom-log',
].join('\n');

describe('non-root workloads on the real Docker Engine', () => {
  const berth = useBerth();
  const { write, remove } = manifestFiles(berth);

  it.each([1001, 65534])('uid %i writes emptyDir (disk and Memory, 0777) and a custom termination message', async (uid) => {
    const name = `nonroot-${uid}`;
    // berth itself runs with the usual umask; the modes must not depend on it.
    write(
      `${name}.yaml`,
      podManifest(name, {
        restartPolicy: 'Never',
        securityContext: { runAsUser: uid, runAsGroup: uid },
        volumes: [
          { name: 'disk', emptyDir: {} },
          { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
          { name: 'info', downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } },
        ],
        containers: [
          shContainer('c', SCRIPT, {
            terminationMessagePath: '/dev/termination-custom-log',
            volumeMounts: [
              { name: 'disk', mountPath: '/disk' },
              { name: 'mem', mountPath: '/mem' },
              { name: 'info', mountPath: '/info' },
            ],
          }),
        ],
      }),
    );
    const p = await waitFor(async () => {
      const x = await berth.pod(name);
      return (x?.status.phase === 'Succeeded' || x?.status.phase === 'Failed') && x;
    }, 40_000, `${name} finished`);
    const t = p.status.containerStatuses?.[0]?.state?.terminated;
    expect(t?.exitCode, t?.message).toBe(0);
    expect(p.status.phase).toBe('Succeeded');
    expect(t?.message).toBe(`${uid} 777 777 644 644 644 ro\n`);
    remove(`${name}.yaml`);
  }, 60_000);

  it('a projected volume (downwardAPI source) is on tmpfs, read-only, readable by uid 1001 with mode 0644', async () => {
    write(
      'proj.yaml',
      podManifest('proj', {
        restartPolicy: 'Never',
        securityContext: { runAsUser: 1001 },
        volumes: [{ name: 'p', projected: { sources: [{ downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }] } }],
        containers: [
          shContainer('c', 'echo "$(cat /p/labels) $(stat -L -c %a /p/labels) $(grep " /p " /proc/mounts | cut -d" " -f3,4 | cut -d, -f1)" > /dev/termination-log', {
            volumeMounts: [{ name: 'p', mountPath: '/p' }],
          }),
        ],
      }, { labels: { app: 'proj' } }),
    );
    const p = await waitFor(async () => {
      const x = await berth.pod('proj');
      return x?.status.phase === 'Succeeded' && x;
    }, 40_000, 'proj Succeeded');
    expect(p.status.containerStatuses?.[0]?.state?.terminated?.message).toBe('app="proj" 644 tmpfs ro\n');
    remove('proj.yaml');
  }, 60_000);

  it('a serviceAccountToken source with no token source fails the mount with FailedMount, and the pod does not start', async () => {
    write(
      'token.yaml',
      podManifest('token', {
        volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
        containers: [shContainer('c', 'sleep 3600', { volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] })],
      }),
    );
    const ev = await waitFor(async () => (await berth.pods()).events.find((e) => e.object.name === `token-${berth.nodeName}` && e.reason === 'FailedMount'), 30_000, 'FailedMount');
    expect(ev).toMatchObject({
      type: 'Warning',
      message: 'MountVolume.SetUp failed for volume "kube-api-access" : failed to fetch token: no token source (berth runs without an API server)',
    });
    expect((await berth.pod('token'))?.status.phase).toBe('Pending');
    expect((await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `token-${berth.nodeName}`)).toEqual([]);
    remove('token.yaml');
  }, 60_000);

  it('the default termination-log path is written by a non-root user and read back', async () => {
    write(
      'deflog.yaml',
      podManifest('deflog', {
        restartPolicy: 'Never',
        containers: [shContainer('c', 'echo "bye from $(id -u)" > /dev/termination-log; exit 3', { securityContext: { runAsUser: 1001 } })],
      }),
    );
    const p = await waitFor(async () => {
      const x = await berth.pod('deflog');
      return x?.status.phase === 'Failed' && x;
    }, 40_000, 'deflog Failed');
    expect(p.status.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error', message: 'bye from 1001\n' });
    remove('deflog.yaml');
  }, 60_000);
});
