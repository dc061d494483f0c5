// Issue #12: fsGroup / fsGroupChangePolicy volume ownership as upstream's pkg/volume/volume_linux.go
// SetVolumeOwnership (group, g+r / g+rw, dirs g+x and setgid, symlinks not chmod'ed, OnRootMismatch skip), the
// atomic writer keeping the group across updates, and setupPodVolumes applying it to emptyDir/downwardAPI/projected
// but not hostPath. Runs real chown/chmod (the tests run as root).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { ownedMode, podOwnership, requiresPermissionChange, setVolumeOwnership } from '../../src/kubelet/volumes/ownership.ts';
import { writeAtomic, type FileProjection } from '../../src/kubelet/volumes/atomic-writer.ts';
import { setupPodVolumes, teardownPodVolumes, type TokenSource } from '../../src/kubelet/volumes/index.ts';
import { unmount } from '../../src/kubelet/volumes/mount.ts';

const isRoot = process.getuid?.() === 0;
const modeOf = (p: string): number => fs.lstatSync(p).mode & 0o7777;
const gidOf = (p: string): number => fs.lstatSync(p).gid;
const payload = (o: Record<string, string>, mode = 0o644): Map<string, FileProjection> =>
  new Map(Object.entries(o).map(([k, v]) => [k, { data: Buffer.from(v), mode }]));

describe('ownership modes (changeFilePermission, requiresPermissionChange)', () => {
  it('files get g+rw (and u+rw) unless read-only, then g+r; dirs add g+x and setgid; other bits stay', () => {
    expect(ownedMode(0o600, false, false)).toBe(0o660);
    expect(ownedMode(0o600, false, true)).toBe(0o640);
    expect(ownedMode(0o400, false, true)).toBe(0o440);
    expect(ownedMode(0o644, false, true)).toBe(0o644);
    expect(ownedMode(0o700, true, false)).toBe(0o2770);
    expect(ownedMode(0o755, true, true)).toBe(0o2755);
    expect(ownedMode(0o777, true, false)).toBe(0o2777);
    expect(ownedMode(0o1777, true, false)).toBe(0o3777);
  });

  it('the root needs a change unless it has the gid, a superset of the wanted bits and setgid', () => {
    const o = { gid: 2000, readOnly: false };
    expect(requiresPermissionChange({ gid: 2000, mode: 0o2770, isDir: true }, o)).toBe(false);
    expect(requiresPermissionChange({ gid: 2000, mode: 0o2777, isDir: true }, o)).toBe(false);
    expect(requiresPermissionChange({ gid: 0, mode: 0o2770, isDir: true }, o)).toBe(true);
    expect(requiresPermissionChange({ gid: 2000, mode: 0o770, isDir: true }, o)).toBe(true);
    expect(requiresPermissionChange({ gid: 2000, mode: 0o2750, isDir: true }, o)).toBe(true);
    expect(requiresPermissionChange({ gid: 2000, mode: 0o2750, isDir: true }, { ...o, readOnly: true })).toBe(false);
    expect(requiresPermissionChange({ gid: 2000, mode: 0o2770, isDir: false }, o)).toBe(true);
  });

  it('podOwnership reads fsGroup and fsGroupChangePolicy; no fsGroup → none', () => {
    const pod: Pod = { spec: { containers: [], securityContext: { fsGroup: 2000, fsGroupChangePolicy: 'OnRootMismatch' } } };
    expect(podOwnership(pod, true)).toEqual({ gid: 2000, readOnly: true, policy: 'OnRootMismatch' });
    expect(podOwnership({ spec: { containers: [], securityContext: { runAsUser: 5 } } }, false)).toBeUndefined();
  });
});

describe.skipIf(!isRoot)('setVolumeOwnership on a real directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fsg-'));
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'sub', 'f'), 'x');
    fs.chmodSync(path.join(dir, 'sub', 'f'), 0o600);
    fs.writeFileSync(path.join(dir, 'ro'), 'y');
    fs.chmodSync(path.join(dir, 'ro'), 0o400);
    fs.symlinkSync('ro', path.join(dir, 'link'));
    fs.chownSync(dir, 0, 0);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('walks everything: group to fsGroup, rw modes, setgid dirs; a symlink is chowned but its target keeps its mode', async () => {
    await setVolumeOwnership(dir, { gid: 2000, readOnly: false });
    for (const p of ['', 'sub', 'sub/f', 'ro', 'link']) expect(gidOf(path.join(dir, p))).toBe(2000);
    expect(modeOf(dir)).toBe(0o2775);
    expect(modeOf(path.join(dir, 'sub'))).toBe(0o2770);
    expect(modeOf(path.join(dir, 'sub/f'))).toBe(0o660);
    expect(modeOf(path.join(dir, 'ro'))).toBe(0o660); // the file itself is walked; the link did not chmod it again
    expect(fs.lstatSync(path.join(dir, 'link')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(path.join(dir, 'sub/f')).uid).toBe(0); // the owner stays
  });

  it('read-only volumes get g+r only', async () => {
    await setVolumeOwnership(dir, { gid: 2000, readOnly: true });
    expect(modeOf(path.join(dir, 'sub/f'))).toBe(0o640);
    expect(modeOf(path.join(dir, 'ro'))).toBe(0o440);
    expect(modeOf(path.join(dir, 'sub'))).toBe(0o2750);
  });

  it('OnRootMismatch skips the walk when the root matches, walks when it does not; Always always walks', async () => {
    fs.chownSync(dir, 0, 2000);
    fs.chmodSync(dir, 0o2775);
    await setVolumeOwnership(dir, { gid: 2000, readOnly: false, policy: 'OnRootMismatch' });
    expect(gidOf(path.join(dir, 'sub/f'))).toBe(0);
    expect(modeOf(path.join(dir, 'sub/f'))).toBe(0o600);

    await setVolumeOwnership(dir, { gid: 2000, readOnly: false, policy: 'Always' });
    expect(gidOf(path.join(dir, 'sub/f'))).toBe(2000);

    fs.chownSync(path.join(dir, 'sub/f'), 0, 0);
    fs.chownSync(dir, 0, 3000); // root mismatch
    await setVolumeOwnership(dir, { gid: 2000, readOnly: false, policy: 'OnRootMismatch' });
    expect(gidOf(path.join(dir, 'sub/f'))).toBe(2000);
    expect(gidOf(dir)).toBe(2000);
  });

  it('no fsGroup changes nothing', async () => {
    await setVolumeOwnership(dir, undefined);
    expect(gidOf(path.join(dir, 'sub/f'))).toBe(0);
    expect(modeOf(dir)).toBe(0o755);
  });
});

describe.skipIf(!isRoot)('atomic writer with an fsGroup', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fsg-aw-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('every version carries the group and g+r; an update keeps them; an unchanged payload writes nothing', async () => {
    const owner = { gid: 2000, readOnly: true };
    await writeAtomic(dir, payload({ a: '1', 'd/b': '2' }, 0o600), undefined, { ownership: owner });
    const v1 = fs.readlinkSync(path.join(dir, '..data'));
    expect(gidOf(path.join(dir, v1, 'a'))).toBe(2000);
    expect(modeOf(path.join(dir, v1, 'a'))).toBe(0o640);
    expect(modeOf(path.join(dir, v1, 'd'))).toBe(0o2755);
    expect(modeOf(dir) & 0o2000).toBe(0o2000);
    expect(gidOf(dir)).toBe(2000);

    await writeAtomic(dir, payload({ a: '1', 'd/b': '2' }, 0o600), undefined, { ownership: owner });
    expect(fs.readlinkSync(path.join(dir, '..data'))).toBe(v1);

    await writeAtomic(dir, payload({ a: 'new', c: '3' }, 0o600), undefined, { ownership: owner });
    const v2 = fs.readlinkSync(path.join(dir, '..data'));
    expect(v2).not.toBe(v1);
    for (const f of ['a', 'c']) {
      expect(gidOf(path.join(dir, v2, f))).toBe(2000);
      expect(modeOf(path.join(dir, v2, f))).toBe(0o640);
    }
    expect(fs.readFileSync(path.join(dir, 'a'), 'utf8')).toBe('new');
  });

  it('a volume written before the pod had ownership applied is rewritten with it', async () => {
    await writeAtomic(dir, payload({ a: '1' }));
    const v1 = fs.readlinkSync(path.join(dir, '..data'));
    expect(gidOf(path.join(dir, v1, 'a'))).toBe(0);
    await writeAtomic(dir, payload({ a: '1' }), undefined, { ownership: { gid: 2000, readOnly: true } });
    expect(gidOf(path.join(dir, 'a'))).toBe(2000);
  });
});

describe.skipIf(!isRoot)('setupPodVolumes with a pod fsGroup', () => {
  let root: string;
  let host: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fsg-pod-'));
    host = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fsg-host-'));
  });
  afterEach(async () => {
    await teardownPodVolumes(root, 'uid-fsg').catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(host, { recursive: true, force: true });
  });

  const pod = (): Pod => ({
    metadata: { name: 'p', namespace: 'ns', uid: 'uid-fsg', labels: { app: 'x' } },
    spec: {
      securityContext: { fsGroup: 2000 },
      containers: [{ name: 'c', image: 'i' }],
      volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
        { name: 'proj', projected: { sources: [{ downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } }] } },
        { name: 'host', hostPath: { path: host } },
      ],
    },
  });

  it('emptyDir: 2777 with the group; downwardAPI/projected: group, g+r, setgid; hostPath untouched', async () => {
    const vols = await setupPodVolumes(pod(), { rootDir: root });
    const scratch = vols.get('scratch')!;
    expect(gidOf(scratch)).toBe(2000);
    expect(modeOf(scratch)).toBe(0o2777);
    for (const v of ['info', 'proj']) {
      const d = vols.get(v)!;
      expect(gidOf(d)).toBe(2000);
      expect(modeOf(d) & 0o2000).toBe(0o2000);
      const f = path.join(d, '..data', v === 'info' ? 'labels' : 'name');
      expect(gidOf(f)).toBe(2000);
      expect(modeOf(f)).toBe(0o644);
    }
    expect(gidOf(host)).toBe(0);
    expect(modeOf(host) & 0o2000).toBe(0);
  });

  it('emptyDir ownership is set once: files a container made later keep their mode on the next sync; roots keep setgid', async () => {
    const vols = await setupPodVolumes(pod(), { rootDir: root });
    const own = path.join(vols.get('scratch')!, 'private');
    fs.writeFileSync(own, 'x');
    fs.chmodSync(own, 0o600);
    await setupPodVolumes(pod(), { rootDir: root });
    expect(modeOf(own)).toBe(0o600);
    expect(gidOf(own)).toBe(2000); // inherited from the setgid directory
    expect(modeOf(vols.get('scratch')!)).toBe(0o2777);
    expect(modeOf(vols.get('info')!) & 0o2000).toBe(0o2000);
  });

  it('a serviceAccountToken file is 0600 before the walk and 0640 with the group after it (projected.go); 0644 without fsGroup', async () => {
    const tokens: TokenSource = { getToken: () => Promise.resolve('tok') };
    const p = pod();
    p.spec!.volumes = [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } }] } }];
    const vols = await setupPodVolumes(p, { rootDir: root, tokens });
    const d = vols.get('kube-api-access')!;
    expect(modeOf(path.join(d, '..data', 'token'))).toBe(0o640);
    expect(gidOf(path.join(d, '..data', 'token'))).toBe(2000);
    expect(modeOf(path.join(d, '..data', 'ns'))).toBe(0o644);
    await teardownPodVolumes(root, 'uid-fsg');
    delete p.spec!.securityContext;
    const again = await setupPodVolumes(p, { rootDir: root, tokens });
    expect(modeOf(path.join(again.get('kube-api-access')!, '..data', 'token'))).toBe(0o644);
  });

  it('a Memory emptyDir whose tmpfs is gone (a reboot) is set up again with its ownership', async () => {
    const p = pod();
    p.spec!.volumes = [{ name: 'mem', emptyDir: { medium: 'Memory' } }];
    const d = (await setupPodVolumes(p, { rootDir: root })).get('mem')!;
    expect(modeOf(d)).toBe(0o2777);
    await unmount(d);
    fs.chmodSync(d, 0o755);
    await setupPodVolumes(p, { rootDir: root });
    expect(gidOf(d)).toBe(2000);
    expect(modeOf(d)).toBe(0o2777);
  });

  it('without fsGroup nothing changes group or gets setgid', async () => {
    const p = pod();
    delete p.spec!.securityContext;
    const vols = await setupPodVolumes(p, { rootDir: root });
    expect(modeOf(vols.get('scratch')!)).toBe(0o777);
    expect(gidOf(vols.get('scratch')!)).toBe(0);
    expect(gidOf(path.join(vols.get('info')!, '..data', 'labels'))).toBe(0);
  });
});
