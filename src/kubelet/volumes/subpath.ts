// Symlink-safe subPath mounts, as upstream's pkg/volume/util/subpath/subpath_linux.go (the fix for
// CVE-2017-1002101 and CVE-2021-25741): the subPath is resolved inside the volume, then opened component
// by component without following any symlink (openat emulated through /proc/self/fd/<dir>/<name> with
// O_NOFOLLOW), and the open file descriptor — not a path a container could swap — is bind-mounted at a
// berth-owned target under the pod dir (volume-subpaths/<volume>/<container>/<index>). The runtime gets
// that target, so a container that replaces a directory of a shared volume with a symlink to `/` between
// the checks cannot get another container a mount of the host.
import fs from 'node:fs';
import path from 'node:path';
import { containedPath, isWithin, assertName } from './contained-path.ts';
import { isMountPoint, mount, unmount } from './mount.ts';

const O_PATH = 0o10000000; // Linux; not exported by node:fs
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** A subPath could not be created or opened safely; the message is for logs (it may name host paths). */
export class SubPathError extends Error {
  readonly code = 'SubPathUnsafe';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SubPathError';
  }
}

const fdPath = (fd: number, name: string): string => `/proc/self/fd/${fd}/${name}`;

function components(rel: string): string[] {
  return rel.split('/').filter((c) => c !== '' && c !== '.');
}

function openChild(parentFd: number, name: string, flags: number, shown: string): number {
  if (name === '..' || name.includes('/')) throw new SubPathError(`invalid path element ${JSON.stringify(name)} in ${shown}`);
  try {
    return fs.openSync(fdPath(parentFd, name), flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new SubPathError(`symlink found at ${shown}`, { cause: err });
    throw new SubPathError(`cannot open ${shown}: ${code ?? String(err)}`, { cause: err });
  }
}

/**
 * Opens `base/rel` without following a symlink in any component of `rel` (base itself is trusted:
 * berth's volume dir or the pod's hostPath, already resolved). Intermediate components must be
 * directories; the last one is opened O_PATH (any file type) and must not be a symlink.
 * Returns the fd; the caller closes it. Throws SubPathError.
 */
export function openBeneath(base: string, rel: string): number {
  const comps = components(rel);
  let fd = fs.openSync(base, comps.length === 0 ? O_PATH | O_NOFOLLOW : DIR_FLAGS);
  let shown = base;
  try {
    comps.forEach((name, i) => {
      shown = path.join(shown, name);
      const last = i === comps.length - 1;
      const next = openChild(fd, name, last ? O_PATH | O_NOFOLLOW : DIR_FLAGS, shown);
      fs.closeSync(fd);
      fd = next;
    });
    if (fs.fstatSync(fd).isSymbolicLink()) throw new SubPathError(`symlink found at ${shown}`);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Creates the missing directories of `volumePath/subPath` inside the volume only, each with `perm`
 * (chmod after mkdir: the umask does not cut it), as upstream's doSafeMakeDir. An existing directory is
 * left alone; an existing prefix that resolves outside the volume is refused. Throws SubPathError.
 */
export function safeMakeDir(volumePath: string, subPath: string, perm: number): void {
  const realVol = fs.realpathSync(volumePath);
  const comps = components(subPath);
  // Longest existing prefix, resolved, must stay in the volume.
  let i = comps.length;
  let realPrefix = '';
  for (; i >= 0; i--) {
    try {
      realPrefix = fs.realpathSync(path.join(volumePath, ...comps.slice(0, i)));
      break;
    } catch {
      // does not exist (yet)
    }
  }
  if (!isWithin(realVol, realPrefix)) throw new SubPathError(`path ${realPrefix} is outside of allowed base ${realVol}`);
  if (i === comps.length) return; // exists already (a file or a directory): nothing to create
  let fd = openBeneath(realVol, path.relative(realVol, realPrefix));
  try {
    if (!fs.fstatSync(fd).isDirectory()) throw new SubPathError(`${realPrefix} is not a directory`);
    // openBeneath returned an O_PATH fd for the last element: reopen it as a directory through the
    // magic link (which jumps to the opened file itself; O_NOFOLLOW would stop at the link).
    const dirFd = fs.openSync(`/proc/self/fd/${fd}`, O_RDONLY | O_DIRECTORY);
    fs.closeSync(fd);
    fd = dirFd;
    let shown = realPrefix;
    for (const name of comps.slice(i)) {
      shown = path.join(shown, name);
      try {
        fs.mkdirSync(fdPath(fd, name), { mode: perm });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new SubPathError(`cannot create directory ${shown}`, { cause: err });
      }
      const next = openChild(fd, name, DIR_FLAGS, shown);
      fs.closeSync(fd);
      fd = next;
      fs.fchmodSync(fd, perm);
    }
  } finally {
    fs.closeSync(fd);
  }
}

export interface SubPathInput {
  /** The pod's directory (<root>/pods/<uid>): the bind target is made below it. */
  podDir: string;
  volumeName: string;
  /** Host path of the volume (berth's volume dir, or the hostPath). */
  volumePath: string;
  containerName: string;
  /** Index of the mount in the container's volumeMounts. */
  index: number;
  /** The subPath (or expanded subPathExpr), already validated: relative, no `..`. */
  subPath: string;
}

/** The berth-owned bind target for one subPath mount (never reachable from a container). */
export const subPathTarget = (i: Pick<SubPathInput, 'podDir' | 'volumeName' | 'containerName' | 'index'>): string =>
  containedPath(i.podDir, 'volume-subpaths', assertName(i.volumeName, 'volume name'), assertName(i.containerName, 'container name'), String(i.index));

/**
 * Creates a missing subPath directory (inside the volume, with the volume's mode), resolves and opens
 * the subPath safely and bind-mounts the opened file at subPathTarget(); returns that target. Idempotent:
 * a target already bound to the same file is reused, one bound to another file is re-bound.
 * Throws SubPathError (or MountError); the messages name host paths, so callers show users upstream's
 * short message instead.
 */
export async function prepareSubPath(i: SubPathInput): Promise<string> {
  const fd = openSubPath(i);
  try {
    return await bindSubPath(fd, subPathTarget(i));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The first half of prepareSubPath: creates a missing subPath directory, resolves the subPath inside the
 * volume and opens it without following symlinks. Returns the fd (the caller closes it). Throws SubPathError.
 */
export function openSubPath(i: SubPathInput): number {
  containedPath(i.volumePath, i.subPath); // lexical check again: relative, no `..`, no NUL
  const hostPath = path.join(i.volumePath, i.subPath);
  let exists = true;
  try {
    fs.statSync(hostPath);
  } catch {
    exists = false;
  }
  if (!exists) safeMakeDir(i.volumePath, i.subPath, fs.statSync(i.volumePath).mode & 0o7777);
  const realVol = fs.realpathSync(i.volumePath);
  let realSub: string;
  try {
    realSub = fs.realpathSync(hostPath);
  } catch (err) {
    throw new SubPathError(`error resolving symlinks in ${hostPath}`, { cause: err });
  }
  if (!isWithin(realVol, realSub)) throw new SubPathError(`subpath ${realSub} not within volume path ${realVol}`);
  return openBeneath(realVol, path.relative(realVol, realSub));
}

/**
 * The second half: bind-mounts the file open as `fd` (through /proc/<pid>/fd, so the path it was opened
 * by no longer matters) at `target`, a berth-owned path. Idempotent: a target already bound to the same
 * file is kept. Returns target. Throws MountError.
 */
export async function bindSubPath(fd: number, target: string): Promise<string> {
  const st = fs.fstatSync(fd);
  if (await isMountPoint(target)) {
    const cur = fs.statSync(target);
    if (cur.dev === st.dev && cur.ino === st.ino) return target;
    await unmount(target);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
  const have = fs.lstatSync(target, { throwIfNoEntry: false });
  if (have && have.isDirectory() !== st.isDirectory()) {
    if (have.isDirectory()) fs.rmdirSync(target);
    else fs.unlinkSync(target);
  }
  if (st.isDirectory()) fs.mkdirSync(target, { recursive: true, mode: 0o700 });
  else if (!fs.existsSync(target)) fs.writeFileSync(target, '', { mode: 0o600 });
  await mount(['--no-canonicalize', '--bind', `/proc/${process.pid}/fd/${fd}`, target]);
  return target;
}
