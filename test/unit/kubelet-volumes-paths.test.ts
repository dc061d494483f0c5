// Issue #11: the one containment helper every pod-data path goes through, and the symlink-safe walkers
// of subpath.ts tried against symlinks planted in a volume (real files in a temp dir; no mounts here).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertName, containedPath, isWithin, PathEscapeError } from '../../src/kubelet/volumes/contained-path.ts';
import { openBeneath, safeMakeDir, SubPathError } from '../../src/kubelet/volumes/subpath.ts';
import { podDir } from '../../src/kubelet/volumes/index.ts';
import { podLogDir } from '../../src/kubelet/runtime/container-config.ts';

describe('containedPath: tries to break out', () => {
  const base = '/var/lib/berth';
  it.each([
    [['..']],
    [['../etc']],
    [['pods', '..', '..', 'etc']],
    [['pods/../../etc']],
    [['/etc']],
    [['pods', '/etc/shadow']],
    [['']],
    [['pods', '']],
    [['a\0b']],
    [['.']],
    [['./']],
    [['pods/..']],
    [['x/../..']],
  ])('%j is refused', (parts) => {
    expect(() => containedPath(base, ...parts)).toThrow(PathEscapeError);
  });

  it.each([
    [['pods', 'uid-1', 'volumes'], '/var/lib/berth/pods/uid-1/volumes'],
    [['...'], '/var/lib/berth/...'],
    [['a..b/c'], '/var/lib/berth/a..b/c'],
    [['x/./y'], '/var/lib/berth/x/y'],
  ])('%j stays below the base', (parts, want) => {
    expect(containedPath(base, ...parts)).toBe(want);
  });

  it('a relative base is refused (every root berth uses is absolute)', () => {
    expect(() => containedPath('var/lib', 'x')).toThrow(PathEscapeError);
  });

  it('isWithin is not fooled by a shared prefix', () => {
    expect(isWithin('/var/lib/berth', '/var/lib/berth-evil/x')).toBe(false);
    expect(isWithin('/var/lib/berth', '/var/lib/berth/x')).toBe(true);
    expect(isWithin('/var/lib/berth', '/var/lib/berth')).toBe(true);
    expect(isWithin('/var/lib/berth', '/var/lib/berth/../x')).toBe(false);
  });

  it.each(['', '.', '..', 'a/b', '../x', 'x\0'])('assertName refuses %j as one file name', (n) => {
    expect(() => assertName(n, 'pod UID')).toThrow(PathEscapeError);
  });

  it('the pod log dir refuses names that would leave the logs dir', () => {
    const pod = (uid: string) => ({ metadata: { namespace: 'ns', name: 'web', uid } });
    expect(podLogDir('/var/log/pods', pod('u1'))).toBe('/var/log/pods/ns_web_u1');
    expect(() => podLogDir('/var/log/pods', pod('x/../../../etc'))).toThrow(PathEscapeError);
  });

  it('podDir refuses a UID from the API server that is a path', () => {
    expect(() => podDir('/var/lib/berth', '../../etc')).toThrow(PathEscapeError);
    expect(podDir('/var/lib/berth', '0b9e-1')).toBe('/var/lib/berth/pods/0b9e-1');
  });
});

describe('openBeneath / safeMakeDir against planted symlinks', () => {
  let tmp: string;
  let vol: string;
  let outside: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-subpath-'));
    vol = path.join(tmp, 'vol');
    outside = path.join(tmp, 'outside');
    fs.mkdirSync(vol);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'host data');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const statOf = (fd: number): fs.Stats => {
    try {
      return fs.fstatSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };

  it('opens a directory and a file inside the volume', () => {
    fs.mkdirSync(path.join(vol, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(vol, 'a/b/f'), 'x');
    expect(statOf(openBeneath(vol, 'a/b')).isDirectory()).toBe(true);
    expect(statOf(openBeneath(vol, 'a/b/f')).ino).toBe(fs.statSync(path.join(vol, 'a/b/f')).ino);
    expect(statOf(openBeneath(vol, '')).ino).toBe(fs.statSync(vol).ino);
  });

  it.each([
    ['the last element', 'link', 'link'],
    ['a middle element', 'link', 'link/secret'],
  ])('refuses a symlink out of the volume as %s', (_what, linkName, rel) => {
    fs.symlinkSync(outside, path.join(vol, linkName));
    expect(() => openBeneath(vol, rel)).toThrow(SubPathError);
  });

  it('refuses a symlink even when it points inside the volume (callers resolve first)', () => {
    fs.mkdirSync(path.join(vol, 'real'));
    fs.symlinkSync('real', path.join(vol, 'alias'));
    expect(() => openBeneath(vol, 'alias')).toThrow(/symlink found/);
  });

  it('refuses a symlink to / and a `..` element', () => {
    fs.symlinkSync('/', path.join(vol, 'root'));
    expect(() => openBeneath(vol, 'root')).toThrow(SubPathError);
    expect(() => openBeneath(vol, 'root/etc')).toThrow(SubPathError);
    expect(() => openBeneath(vol, '../outside')).toThrow(SubPathError);
  });

  it('safeMakeDir creates missing directories inside the volume with the given mode, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      safeMakeDir(vol, 'x/y/z', 0o777);
    } finally {
      process.umask(old);
    }
    for (const d of ['x', 'x/y', 'x/y/z']) expect(fs.statSync(path.join(vol, d)).mode & 0o777).toBe(0o777);
  });

  it('safeMakeDir never creates anything through a symlink out of the volume', () => {
    fs.symlinkSync(outside, path.join(vol, 'esc'));
    expect(() => safeMakeDir(vol, 'esc/new/dir', 0o755)).toThrow(SubPathError);
    expect(fs.readdirSync(outside)).toEqual(['secret']);
    fs.symlinkSync('/', path.join(vol, 'root'));
    expect(() => safeMakeDir(vol, 'root/berth-should-not-exist', 0o755)).toThrow(SubPathError);
    expect(fs.existsSync('/berth-should-not-exist')).toBe(false);
  });

  it('safeMakeDir follows a symlink that stays inside the volume (as upstream) and creates below it', () => {
    fs.mkdirSync(path.join(vol, 'real'));
    fs.symlinkSync('real', path.join(vol, 'alias'));
    safeMakeDir(vol, 'alias/new', 0o755);
    expect(fs.statSync(path.join(vol, 'real/new')).isDirectory()).toBe(true);
  });
});
