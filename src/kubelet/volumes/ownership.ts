// Volume ownership for the pod's fsGroup, as upstream's pkg/volume/volume_linux.go SetVolumeOwnership: every
// file and directory of the volume (walked deepest first, symlinks not followed) gets the fsGroup as its group;
// regular files and directories get group (and owner) read, plus write unless the volume is read-only
// (rwMask 0660 / roMask 0440); directories also get x (execMask 0110) and the setgid bit, so that files the
// container creates later inherit the group. Symlinks are lchown'ed but never chmod'ed (a chmod would reach the
// target and undo the projection's modes). fsGroupChangePolicy OnRootMismatch skips the walk when the volume's
// root already has the group, the mode bits and setgid (requiresPermissionChange).
import type { Stats } from 'node:fs';
import { chmod, lchown, lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { fsGroupOf } from '../pod/security-context.ts';

export const RW_MASK = 0o660;
export const RO_MASK = 0o440;
export const EXEC_MASK = 0o110;
export const SETGID = 0o2000;

export type FSGroupChangePolicy = 'Always' | 'OnRootMismatch';

export interface Ownership {
  /** The pod's fsGroup. */
  gid: number;
  /** The plugin's GetAttributes().ReadOnly: configMap, secret, downwardAPI and projected volumes are. */
  readOnly: boolean;
  /** Absent = Always (the volume plugins upstream pass nil for these volume types). */
  policy?: FSGroupChangePolicy | undefined;
}

/** The volume ownership a pod asks for: its fsGroup and fsGroupChangePolicy; undefined without fsGroup. */
export function podOwnership(pod: Pod, readOnly: boolean): Ownership | undefined {
  const gid = fsGroupOf(pod);
  if (typeof gid !== 'number') return undefined;
  return { gid, readOnly, policy: pod.spec?.securityContext?.fsGroupChangePolicy as FSGroupChangePolicy | undefined };
}

/** changeFilePermission's new mode (permission + setgid/sticky bits) of a file or directory. Pure. */
export function ownedMode(mode: number, isDir: boolean, readOnly: boolean): number {
  let mask = readOnly ? RO_MASK : RW_MASK;
  if (isDir) mask |= SETGID | EXEC_MASK;
  return (mode & 0o7777) | mask;
}

/** requiresPermissionChange: true unless the root has the group, a superset of the wanted bits and setgid. Pure. */
export function requiresPermissionChange(root: { gid: number; mode: number; isDir: boolean }, o: Ownership): boolean {
  if (root.gid !== o.gid) return true;
  if (!root.isDir) return true;
  const want = (o.readOnly ? RO_MASK : RW_MASK) | EXEC_MASK;
  return (root.mode & want) !== want || (root.mode & SETGID) === 0;
}

/** skipPermissionChange: only OnRootMismatch may skip, and only when the root already matches. */
export async function skipPermissionChange(dir: string, o: Ownership): Promise<boolean> {
  if (o.policy !== 'OnRootMismatch') return false;
  const st = await stat(dir).catch(() => undefined);
  if (!st) return false;
  return !requiresPermissionChange({ gid: st.gid, mode: st.mode, isDir: st.isDirectory() }, o);
}

const isGone = (err: unknown): boolean => (err as { code?: string } | undefined)?.code === 'ENOENT';

async function changeFilePermission(p: string, st: Stats, o: Ownership): Promise<void> {
  // uid -1: the owner stays; only the group changes (os.Lchown(filename, -1, fsGroup)).
  await lchown(p, -1, o.gid);
  if (st.isSymbolicLink()) return;
  const mode = ownedMode(st.mode, st.isDirectory(), o.readOnly);
  if ((st.mode & 0o7777) !== mode) await chmod(p, mode);
}

/** walkDeep: children before their directory, symlinks not followed; a file removed meanwhile is skipped. */
async function walkDeep(p: string, fn: (p: string, st: Stats) => Promise<void>): Promise<void> {
  const st = await lstat(p).catch((err: unknown) => {
    if (isGone(err)) return undefined;
    throw err;
  });
  if (!st) return;
  if (st.isDirectory()) for (const e of await readdir(p).catch((err: unknown) => (isGone(err) ? [] : Promise.reject(err)))) await walkDeep(path.join(p, e), fn);
  await fn(p, st).catch((err: unknown) => {
    if (!isGone(err)) throw err;
  });
}

/** SetVolumeOwnership: no fsGroup → nothing; OnRootMismatch with a matching root → nothing; else the whole walk. */
export async function setVolumeOwnership(dir: string, o: Ownership | undefined): Promise<void> {
  if (!o) return;
  if (await skipPermissionChange(dir, o)) return;
  await walkDeep(dir, (p, st) => changeFilePermission(p, st, o));
}
