// Issue #11 on the real dockerd through the real CLI: a subPath that climbs out of its volume is refused
// as an InvalidManifest; a subPathExpr that expands to `..` fails the container with
// CreateContainerConfigError; a container that swaps the subPath directory of a shared emptyDir for a
// symlink to `/` cannot get a restarted sibling a mount of the host; nothing appears outside the root dir.
import { describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker, manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';
import { bindSubPath, openSubPath, subPathTarget } from '../../src/kubelet/volumes/subpath.ts';
import { mount, unmount } from '../../src/kubelet/volumes/mount.ts';

describe('pod volume path safety on the real Docker Engine', () => {
  const before = new Map<string, string[]>();
  const snapshot = (d: string): string[] => readdirSync(d).filter((n) => !n.startsWith('berth-it-') && !n.startsWith('berth-') && !n.startsWith('vitest')).sort();
  const berth = useBerth({
    extraArgs: ['--crash-loop-backoff-initial=1s', '--crash-loop-backoff-max=2s'],
    beforeStart: () => {
      for (const d of watched) if (d !== tmp) before.set(d, snapshot(d));
    },
  });
  const { write, remove } = manifestFiles(berth);
  const podOf = (name: string): Promise<PodWithStatus | undefined> => berth.pod(name);
  // Everything berth may touch lives in the test's temp dir (root dir, manifests, log); watch the places
  // an escape would land: the host's /, /etc, the temp dir's parent and the temp dir itself (snapshotted before start).
  const tmp = path.dirname(berth.rootDir);
  const watched = ['/', '/etc', path.dirname(tmp), tmp]; // tmp itself may hold only berth.log, manifests and root

  it('refuses the manifest of issue #11 (subPath ../../…/etc) as InvalidManifest with the field path', async () => {
    write(
      'escape.yaml',
      podManifest('escape', {
        volumes: [{ name: 'v', emptyDir: {} }],
        containers: [shContainer('c', 'sleep 3600', { volumeMounts: [{ name: 'v', mountPath: '/v', subPath: '../../../../../../../../../../etc' }] })],
      }),
    );
    write(
      'escape2.yaml',
      podManifest('escape2', {
        volumes: [{ name: 'v', emptyDir: {} }],
        containers: [shContainer('c', 'sleep 3600', { volumeMounts: [{ name: 'v', mountPath: '/v', subPath: '../../berth-escape-marker' }] })],
      }),
    );
    const data = await waitFor(async () => {
      const d = await berth.pods();
      return d.errors.filter((e) => e.file.includes('escape')).length >= 2 && d;
    }, 20_000, 'both manifests reported');
    const msg = (f: string): string => data.errors.filter((e) => e.file.endsWith(f)).map((e) => `${e.reason}: ${e.message}`).join('|');
    expect(msg('escape.yaml')).toBe(`InvalidManifest: spec.containers[0].volumeMounts.subPath: Invalid value: "../../../../../../../../../../etc": must not contain '..'`);
    expect(msg('escape2.yaml')).toBe(`InvalidManifest: spec.containers[0].volumeMounts.subPath: Invalid value: "../../berth-escape-marker": must not contain '..'`);
    expect(data.items.find((p) => p.metadata?.name?.startsWith('escape'))).toBeUndefined();
    expect((await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name']?.startsWith('escape'))).toEqual([]);
    remove('escape.yaml');
    remove('escape2.yaml');
  });

  it('a subPathExpr that expands to ../x fails the container with CreateContainerConfigError and an Event', async () => {
    write(
      'expr.yaml',
      podManifest('expr', {
        volumes: [{ name: 'v', emptyDir: {} }],
        containers: [
          shContainer('c', 'sleep 3600', {
            env: [{ name: 'UP', value: '../x' }],
            volumeMounts: [{ name: 'v', mountPath: '/v', subPathExpr: '$(UP)' }],
          }),
        ],
      }),
    );
    const waiting = await waitFor(async () => {
      const w = (await podOf('expr'))?.status.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' && w;
    }, 30_000, 'CreateContainerConfigError');
    expect(waiting.message).toBe("unable to provision SubPath `../x`: must not contain '..'");
    const ev = (await berth.pods()).events.filter((e) => e.object.name === `expr-${berth.nodeName}` && e.reason === 'Failed');
    expect(ev[0]).toMatchObject({ type: 'Warning', message: "Error: unable to provision SubPath `../x`: must not contain '..'" });
    expect((await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `expr-${berth.nodeName}` && c.Labels['io.kubernetes.container.name'] === 'c')).toEqual([]);
    remove('expr.yaml');
  }, 60_000);

  it('a sibling that swaps the subPath dir of a shared emptyDir for a symlink to / cannot get a restarted container a host mount', async () => {
    write(
      'swap.yaml',
      podManifest('swap', {
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'shared', emptyDir: {} }],
        containers: [
          // The attacker sees the whole volume; once the victim's subPath dir exists it replaces it with a symlink to /.
          shContainer('attacker', 'while [ ! -d /shared/sub ]; do sleep 0.2; done; sleep 1; rm -rf /shared/sub && ln -s / /shared/sub && touch /shared/swapped; sleep 3600', {
            volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
          }),
          // The victim mounts only the subPath; it reports what it sees, then exits so berth restarts it.
          shContainer('victim', 'if [ -e /data/etc/passwd ]; then echo HOST-ROOT > /dev/termination-log; else echo contained > /dev/termination-log; fi; sleep 3; exit 1', {
            volumeMounts: [{ name: 'shared', mountPath: '/data', subPath: 'sub' }],
          }),
        ],
      }),
    );
    const st = await waitFor(async () => {
      const p = await podOf('swap');
      const v = p?.status.containerStatuses?.find((c) => c.name === 'victim');
      return v?.state?.waiting?.reason === 'CreateContainerConfigError' && v;
    }, 60_000, 'restarted victim refused');
    expect(st.state?.waiting?.message).toBe('failed to prepare subPath for volumeMount "shared" of container "victim"');
    // Its earlier run saw only the volume's own (then empty) directory.
    expect(st.lastState?.terminated?.message ?? '').not.toContain('HOST-ROOT');
    if (st.lastState?.terminated?.message) expect(st.lastState.terminated.message).toBe('contained\n');
    // No container of the pod, in any state, ever had the host's / (or anything outside berth's root dir) as a mount.
    for (const c of (await berth.containers()).filter((x) => x.Labels['io.kubernetes.pod.name'] === `swap-${berth.nodeName}`)) {
      const info = await docker.getContainer(c.Id).inspect();
      for (const m of info.Mounts) expect(m.Source.startsWith(berth.rootDir + '/'), `${info.Name}: ${m.Source} -> ${m.Destination}`).toBe(true);
    }
    // The attacker did swap it (the test would prove nothing otherwise).
    const attacker = (await berth.containers()).find((x) => x.Labels['io.kubernetes.pod.name'] === `swap-${berth.nodeName}` && x.Labels['io.kubernetes.container.name'] === 'attacker')!;
    const mounts = (await docker.getContainer(attacker.Id).inspect()).Mounts;
    const volDir = mounts.find((m) => m.Destination === '/shared')!.Source;
    expect(existsSync(path.join(volDir, 'swapped'))).toBe(true);
    remove('swap.yaml');
    await waitFor(async () => !(await podOf('swap')), 30_000, 'swap pod gone');
  }, 90_000);

  it('the bind holds the directory that was opened, even when the path becomes a symlink to / between open and mount', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-race-'));
    const vol = path.join(dir, 'vol');
    const podDir = path.join(dir, 'pod');
    mkdirSync(path.join(vol, 'sub'), { recursive: true });
    writeFileSync(path.join(vol, 'sub', 'marker'), 'mine');
    const ino = statSync(path.join(vol, 'sub')).ino;
    const input = { podDir, volumeName: 'v', volumePath: vol, containerName: 'c', index: 0, subPath: 'sub' };
    const naive = path.join(dir, 'naive');
    mkdirSync(naive);
    const fd = openSubPath(input);
    let target = '';
    try {
      // The attacker's move, exactly between the checks and the mount.
      renameSync(path.join(vol, 'sub'), path.join(vol, 'moved'));
      symlinkSync('/', path.join(vol, 'sub'));
      target = await bindSubPath(fd, subPathTarget(input));
      expect(target).toBe(path.join(podDir, 'volume-subpaths/v/c/0'));
      expect(statSync(target).ino).toBe(ino);
      expect(readdirSync(target)).toEqual(['marker']);
      // Control: binding the path instead (what berth did before) hands out the host's root.
      await mount(['--bind', path.join(vol, 'sub'), naive]);
      expect(readdirSync(naive)).toContain('etc');
    } finally {
      closeSync(fd);
      await unmount(naive).catch(() => undefined);
      if (target) await unmount(target).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tears down subPath bind mounts with the pod and leaves nothing outside the root dir', async () => {
    write(
      'sub.yaml',
      podManifest('sub', {
        restartPolicy: 'Never',
        volumes: [{ name: 'v', emptyDir: {} }],
        containers: [shContainer('c', 'echo hi > /data/f; cat /data/f > /dev/termination-log', { volumeMounts: [{ name: 'v', mountPath: '/data', subPath: 'a/b' }] })],
      }),
    );
    const done = await waitFor(async () => {
      const p = await podOf('sub');
      return p?.status.phase === 'Succeeded' && p;
    }, 30_000, 'sub pod Succeeded');
    expect(done.status.containerStatuses?.[0]?.state?.terminated?.message).toBe('hi\n');
    const uid = done.metadata!.uid!;
    const podDir = path.join(berth.rootDir, 'pods', uid);
    const mountsUnder = async (): Promise<string[]> => {
      const { readFile } = await import('node:fs/promises');
      return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(podDir + '/'));
    };
    expect(await mountsUnder()).toEqual([path.join(podDir, 'volume-subpaths/v/c/0')]);
    remove('sub.yaml');
    await waitFor(async () => !(await podOf('sub')) && !existsSync(podDir), 30_000, 'pod dir removed');
    expect(await mountsUnder()).toEqual([]);
    for (const d of watched) if (d !== tmp) expect(snapshot(d), d).toEqual(before.get(d));
    expect(readdirSync(tmp).filter((n) => !['berth.log', 'manifests', 'root'].includes(n))).toEqual([]);
    expect(existsSync('/berth-escape-marker')).toBe(false);
  }, 60_000);
});
