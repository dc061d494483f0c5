// Atomic projection of a set of files into a volume directory, as upstream's
// pkg/volume/util/atomic_writer.go: the payload goes into a fresh timestamped directory
// (`..2006_01_02_15_04_05.<rand>`), then the `..data` symlink is swapped to it with one rename, the
// user-visible names are symlinks through `..data`, and names gone from the payload disappear.
// A reader inside the container always sees one whole version. Bytes are written as bytes.
import { mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, unlink, writeFile, chmod, lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { containedPath } from './contained-path.ts';
import { ownedMode, setVolumeOwnership, type Ownership } from './ownership.ts';

export interface FileProjection {
  data: Buffer;
  /** File mode (permission bits), applied with chmod so the umask does not cut it. */
  mode: number;
}

const DATA_DIR = '..data';
const DATA_TMP = '..data_tmp';
const MAX_FILE_NAME = 255;
const MAX_PATH = 4096;

export class AtomicWriteError extends Error {
  readonly code = 'AtomicWrite';
}

/** atomic_writer.go validatePath: the message is upstream's. */
export function validatePayloadPath(p: string): string | undefined {
  if (p === '') return `invalid path: must not be empty: ${JSON.stringify(p)}`;
  if (p.includes('\0')) return `invalid path: must not contain a NUL byte: ${JSON.stringify(p)}`;
  if (p.startsWith('/')) return `invalid path: must be relative path: ${p}`;
  if (p.length > MAX_PATH) return `invalid path: must be less than or equal to ${MAX_PATH} characters`;
  const items = p.split('/');
  for (const item of items) {
    if (item === '..') return `invalid path: must not contain '..': ${p}`;
    if (item.length > MAX_FILE_NAME) return `invalid path: filenames must be less than or equal to ${MAX_FILE_NAME} characters`;
  }
  if (items[0]!.startsWith('..') && items[0]!.length > 2) return `invalid path: must not start with '..': ${p}`;
  return undefined;
}

function cleanPayload(payload: Map<string, FileProjection>): Map<string, FileProjection> {
  const out = new Map<string, FileProjection>();
  for (const [p, f] of payload) {
    const bad = validatePayloadPath(p);
    if (bad) throw new AtomicWriteError(bad);
    const clean = path.posix.normalize(p).replace(/\/+$/, '');
    if (clean === '.' || clean === '') throw new AtomicWriteError(`invalid path: must not be empty: ${JSON.stringify(p)}`);
    out.set(clean, f);
  }
  return out;
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

async function samePayload(tsDir: string, payload: Map<string, FileProjection>, owner?: Ownership): Promise<boolean> {
  const old = await listFiles(tsDir).catch(() => undefined);
  if (!old || old.length !== payload.size) return false;
  for (const [p, f] of payload) {
    const file = path.join(tsDir, p);
    const st = await lstat(file).catch(() => undefined);
    if (!st?.isFile() || (st.mode & 0o7777) !== (owner ? ownedMode(f.mode, false, owner.readOnly) : f.mode)) return false;
    if (owner && st.gid !== owner.gid) return false;
    if (!(await readFile(file)).equals(f.data)) return false;
  }
  return true;
}

const stamp = (d: Date): string => {
  const z = (n: number): string => String(n).padStart(2, '0');
  return `..${d.getUTCFullYear()}_${z(d.getUTCMonth() + 1)}_${z(d.getUTCDate())}_${z(d.getUTCHours())}_${z(d.getUTCMinutes())}_${z(d.getUTCSeconds())}.`;
};

export interface WriteOptions {
  /**
   * The pod's fsGroup: before the `..data` swap the whole volume gets its group, group bits and setgid
   * (the plugins' setPerms hook calling SetVolumeOwnership), so every version a reader sees already has them.
   */
  ownership?: Ownership | undefined;
}

/**
 * Makes `targetDir` hold exactly `payload` (relative path → bytes + mode). Idempotent: an unchanged
 * payload writes nothing. `targetDir` must exist and be berth's (not writable by a container).
 * Throws AtomicWriteError for an invalid path (upstream's message), fs errors otherwise.
 */
export async function writeAtomic(targetDir: string, payload: Map<string, FileProjection>, now: Date = new Date(), opts: WriteOptions = {}): Promise<void> {
  const files = cleanPayload(payload);
  const dataLink = path.join(targetDir, DATA_DIR);
  const oldTs = await readlink(dataLink).catch(() => '');
  const oldTsPath = oldTs ? containedPath(targetDir, oldTs) : '';
  const oldFiles = oldTsPath ? await listFiles(oldTsPath).catch(() => []) : [];
  if (oldTsPath && (await samePayload(oldTsPath, files, opts.ownership))) return;

  const tsDir = await mkdtemp(path.join(targetDir, stamp(now)));
  await chmod(tsDir, 0o755);
  for (const [p, f] of files) {
    const file = containedPath(tsDir, p);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, f.data, { mode: f.mode });
    await chmod(file, f.mode);
  }
  // atomic_writer.go Write step (8), setPerms: the whole volume (not only the new version) before the swap.
  // Ownership is always walked here (policy Always): the plugins upstream pass no fsGroupChangePolicy.
  if (opts.ownership) await setVolumeOwnership(targetDir, { ...opts.ownership, policy: undefined });
  const tmpLink = path.join(targetDir, DATA_TMP);
  await rm(tmpLink, { force: true });
  await symlink(path.basename(tsDir), tmpLink);
  await rename(tmpLink, dataLink);

  const visible = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  for (const top of visible) {
    const link = containedPath(targetDir, top);
    const st = await lstat(link).catch(() => undefined);
    // A plain file or dir in its place (written by an older berth) would shadow the projection for ever.
    if (st && !st.isSymbolicLink()) await rm(link, { recursive: true, force: true });
    if (!st || !st.isSymbolicLink()) await symlink(path.posix.join(DATA_DIR, top), link);
  }
  for (const top of new Set(oldFiles.map((p) => p.split('/')[0]!))) {
    if (visible.has(top)) continue;
    const link = containedPath(targetDir, top);
    const st = await lstat(link).catch(() => undefined);
    if (st?.isSymbolicLink()) await unlink(link);
  }
  if (oldTsPath) await rm(oldTsPath, { recursive: true, force: true });
}

/** True when `dir` holds a `..data` projection (used by tests and teardown). */
export async function hasProjection(dir: string): Promise<boolean> {
  return (await stat(path.join(dir, DATA_DIR)).catch(() => undefined))?.isDirectory() ?? false;
}
