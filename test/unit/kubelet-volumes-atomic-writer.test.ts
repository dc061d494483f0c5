// Issue #9 defect 2: configMap/secret/downwardAPI files written as upstream's atomic_writer.go does:
// a timestamped dir, `..data` swapped with one rename, user-visible symlinks, removed keys gone, bytes
// kept as bytes, modes applied whatever the umask.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeAtomic, AtomicWriteError, type FileProjection } from '../../src/kubelet/volumes/atomic-writer.ts';
import { configPayload } from '../../src/kubelet/volumes/index.ts';

const payload = (o: Record<string, string | Buffer>, mode = 0o644): Map<string, FileProjection> =>
  new Map(Object.entries(o).map(([k, v]) => [k, { data: Buffer.isBuffer(v) ? v : Buffer.from(v), mode }]));

describe('writeAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-aw-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lays out ..data → timestamped dir, with user-visible symlinks through ..data', async () => {
    await writeAtomic(dir, payload({ 'a.conf': 'A', 'sub/b': 'B' }), new Date(Date.UTC(2026, 10, 30, 18, 5, 9)));
    const ts = fs.readlinkSync(path.join(dir, '..data'));
    expect(ts).toMatch(/^\.\.2026_11_30_18_05_09\.\w+$/);
    expect(fs.readlinkSync(path.join(dir, 'a.conf'))).toBe('..data/a.conf');
    expect(fs.readlinkSync(path.join(dir, 'sub'))).toBe('..data/sub');
    expect(fs.readFileSync(path.join(dir, 'sub/b'), 'utf8')).toBe('B');
    expect(fs.statSync(path.join(dir, ts)).mode & 0o777).toBe(0o755);
  });

  it('an update swaps the whole version, removes keys that are gone and the old timestamped dir', async () => {
    await writeAtomic(dir, payload({ keep: '1', gone: '2' }));
    const first = fs.readlinkSync(path.join(dir, '..data'));
    await writeAtomic(dir, payload({ keep: '1b', added: '3' }));
    const second = fs.readlinkSync(path.join(dir, '..data'));
    expect(second).not.toBe(first);
    expect(fs.existsSync(path.join(dir, first))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'gone'))).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'keep'), 'utf8')).toBe('1b');
    expect(fs.readFileSync(path.join(dir, 'added'), 'utf8')).toBe('3');
    expect(fs.readdirSync(dir).sort()).toEqual(['..data', second, 'added', 'keep'].sort());
  });

  it('a plain file left where a user-visible link belongs (older berth) is replaced by the link', async () => {
    fs.writeFileSync(path.join(dir, 'k'), 'stale');
    await writeAtomic(dir, payload({ k: 'fresh' }));
    expect(fs.readlinkSync(path.join(dir, 'k'))).toBe('..data/k');
    expect(fs.readFileSync(path.join(dir, 'k'), 'utf8')).toBe('fresh');
  });

  it('an unchanged payload writes nothing', async () => {
    await writeAtomic(dir, payload({ k: 'v' }));
    const first = fs.readlinkSync(path.join(dir, '..data'));
    await writeAtomic(dir, payload({ k: 'v' }));
    expect(fs.readlinkSync(path.join(dir, '..data'))).toBe(first);
  });

  it('bytes are written as bytes (no UTF-8 round trip) and modes survive a strict umask', async () => {
    const bin = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0a]);
    const old = process.umask(0o077);
    try {
      await writeAtomic(dir, new Map([['bin', { data: bin, mode: 0o640 }], ['pub', { data: Buffer.from('x'), mode: 0o644 }]]));
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(path.join(dir, 'bin')).equals(bin)).toBe(true);
    expect(fs.statSync(path.join(dir, 'bin')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(dir, 'pub')).mode & 0o777).toBe(0o644);
  });

  it.each(['../escape', '/etc/x', '..data', 'a/../../x', ''])('refuses payload path %j and writes nothing', async (p) => {
    await expect(writeAtomic(dir, payload({ [p]: 'x' }))).rejects.toThrow(AtomicWriteError);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.existsSync(path.join(path.dirname(dir), 'escape'))).toBe(false);
  });
});

describe('configPayload (configmap.go / secret.go MakePayload)', () => {
  const data = { a: 'text', b: Buffer.from([0xff, 0x00]) };
  it('all keys with the default mode when no items are given', () => {
    const p = configPayload('secret', data, undefined, 0o400, false);
    expect([...p.keys()].sort()).toEqual(['a', 'b']);
    expect(p.get('b')).toEqual({ data: Buffer.from([0xff, 0x00]), mode: 0o400 });
  });
  it('items map keys to paths with their own mode', () => {
    const p = configPayload('configmap', data, [{ key: 'a', path: 'dir/a.txt', mode: 0o600 }], 0o644, false);
    expect([...p]).toEqual([['dir/a.txt', { data: Buffer.from('text'), mode: 0o600 }]]);
  });
  it('a missing key fails with upstream’s message unless optional', () => {
    expect(() => configPayload('configmap', data, [{ key: 'zz', path: 'z' }], 0o644, false)).toThrow('configmap references non-existent config key: zz');
    expect(() => configPayload('secret', data, [{ key: 'zz', path: 'z' }], 0o644, false)).toThrow('references non-existent secret key: zz');
    expect(configPayload('secret', data, [{ key: 'zz', path: 'z' }], 0o644, true).size).toBe(0);
  });
});
