// Pod volumes on the host, laid out as the kubelet does (<root>/pods/<uid>/volumes/<plugin>/<name>):
// emptyDir (disk, or tmpfs for medium Memory; mode 0777 whatever the umask), hostPath with its type
// checks, and downwardAPI/configMap/secret projected with the atomic writer (secrets on tmpfs, never on
// the root dir's disk). Every path built from pod data goes through containedPath(); subPaths through
// subpath.ts. Ported from pkg/volume/{emptydir,secret,configmap,downwardapi,hostpath}.
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pod, Volume } from 'kubernetes-types/core/v1';
import type { ConfigDataSource, ConfigValue, NodeAllocatable } from '../runtime/env.ts';
import { bytes } from '../pod/quantity.ts';
import { assertName, containedPath } from './contained-path.ts';
import { isMountPoint, listMountPoints, mount, unmount } from './mount.ts';
import { writeAtomic, type FileProjection } from './atomic-writer.ts';
import { downwardPayload } from './downward-api.ts';
import { configPayload } from './config-payload.ts';
import { projectedPayload, type TokenSource } from './projected.ts';
import { podOwnership, setVolumeOwnership, SETGID } from './ownership.ts';

export { containedPath, assertName, isWithin, PathEscapeError } from './contained-path.ts';
export { prepareSubPath, subPathTarget, SubPathError } from './subpath.ts';
export { writeAtomic, validatePayloadPath, AtomicWriteError, type FileProjection } from './atomic-writer.ts';
export { configPayload } from './config-payload.ts';
export { projectedPayload, type TokenSource } from './projected.ts';
export { setVolumeOwnership, podOwnership, type Ownership } from './ownership.ts';

/** A volume could not be set up; `message` is upstream's FailedMount text for this volume. */
export class VolumeError extends Error {
  readonly volume: string;
  constructor(volume: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.volume = volume;
  }
}

/** Mode of berth's own directories (pod dir, plugin dirs, container dirs, subPath targets): root only. */
export const PRIVATE_DIR_MODE = 0o700;

/** <root>/pods/<uid>; throws PathEscapeError for a UID that is not one file name. */
export const podDir = (rootDir: string, uid: string): string => containedPath(rootDir, 'pods', assertName(uid, 'pod UID'));

export { isForcedReadOnly } from './read-only.ts';

async function checkHostPath(v: Volume, p: string): Promise<void> {
  const type = v.hostPath?.type ?? '';
  const st = await stat(p).catch(() => undefined);
  const fail = (what: string): never => {
    throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a ${what}`);
  };
  switch (type) {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!st) {
        await mkdir(p, { recursive: true, mode: 0o755 });
        await chmod(p, 0o755);
      } else if (!st.isDirectory()) fail('directory');
      return;
    case 'Directory':
      if (!st?.isDirectory()) fail('directory');
      return;
    case 'FileOrCreate':
      if (!st) {
        await mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
        await writeFile(p, '', { mode: 0o644, flag: 'a' });
        await chmod(p, 0o644);
      } else if (!st.isFile()) fail('file');
      return;
    case 'File':
      if (!st?.isFile()) fail('file');
      return;
    case 'Socket':
      if (!st?.isSocket()) fail('socket');
      return;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) fail('character device');
      return;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) fail('block device');
      return;
    default:
      throw new VolumeError(v.name, `hostPath type ${JSON.stringify(type)} is not supported`);
  }
}

/**
 * mkdir + chmod (the umask must not cut the mode), then tmpfs on it when asked and not there yet. Resolves true when
 * the volume is new (the directory made, or a tmpfs mounted: after a reboot the old contents are gone).
 */
async function makeVolumeDir(v: Volume, dir: string, o: { mode: number; tmpfs: boolean; sizeBytes?: number }): Promise<boolean> {
  await mkdir(path.dirname(dir), { recursive: true, mode: PRIVATE_DIR_MODE });
  let fresh = (await mkdir(dir, { recursive: true, mode: o.mode })) !== undefined;
  if (o.tmpfs && !(await isMountPoint(dir))) {
    fresh = true;
    // Whatever lies below the mount point (an older berth wrote secrets to disk) must not stay on the disk.
    for (const e of await readdir(dir)) await rm(path.join(dir, e), { recursive: true, force: true });
    const size = o.sizeBytes ? `,size=${o.sizeBytes}` : '';
    await mount(['-t', 'tmpfs', '-o', `mode=${o.mode.toString(8).padStart(4, '0')}${size}`, 'tmpfs', dir]).catch((err: unknown) => {
      throw new VolumeError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : mount tmpfs failed`, { cause: err });
    });
  }
  // The setgid bit an fsGroup walk gave the volume's root stays (the pod's fsGroup cannot change).
  const st = await stat(dir);
  const mode = o.mode | (st.mode & SETGID);
  if ((st.mode & 0o7777) !== mode) await chmod(dir, mode);
  return fresh;
}

export interface VolumeOptions {
  rootDir: string;
  data?: ConfigDataSource;
  /** Service-account tokens for projected serviceAccountToken sources (cluster mode); none → FailedMount. */
  tokens?: TokenSource;
  /** Node allocatable, for downwardAPI resourceFieldRef items of containers without that limit. */
  nodeAllocatable?: NodeAllocatable;
}

const isNotFound = (err: unknown): boolean => (err as { code?: string } | undefined)?.code === 'NotFound';

/** Prepares every volume of the pod; returns volume name → host path. Idempotent. Throws VolumeError. */
export async function setupPodVolumes(pod: Pod, opts: VolumeOptions): Promise<Map<string, string>> {
  const pd = podDir(opts.rootDir, pod.metadata?.uid ?? '');
  await mkdir(pd, { recursive: true, mode: PRIVATE_DIR_MODE });
  const base = containedPath(pd, 'volumes');
  const ns = pod.metadata?.namespace ?? 'default';
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    const name = assertName(v.name, 'volume name');
    const setUpFailed = (msg: string, cause?: unknown): VolumeError => new VolumeError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : ${msg}`, { cause });
    if (v.hostPath) {
      await checkHostPath(v, v.hostPath.path);
      out.set(v.name, v.hostPath.path);
    } else if (v.emptyDir) {
      const dir = containedPath(base, 'kubernetes.io~empty-dir', name);
      const mem = v.emptyDir.medium === 'Memory';
      const fresh = await makeVolumeDir(v, dir, { mode: 0o777, tmpfs: mem, sizeBytes: mem && v.emptyDir.sizeLimit ? bytes(v.emptyDir.sizeLimit) : undefined });
      // empty_dir.go SetUpAt: ownership once, at setup (the plugin's ready file; a Memory volume that is no longer
      // mounted is set up again); later syncs leave what the containers made of their files alone.
      const ready = containedPath(pd, 'plugins', 'kubernetes.io~empty-dir', name, 'ready');
      if (fresh || !(await stat(ready).catch(() => undefined))) {
        await setVolumeOwnership(dir, podOwnership(pod, false)).catch((err: unknown) => {
          throw setUpFailed(`failed to set volume ownership: ${err instanceof Error ? err.message : String(err)}`, err);
        });
        await mkdir(path.dirname(ready), { recursive: true, mode: PRIVATE_DIR_MODE });
        await writeFile(ready, '', { mode: 0o600 });
      }
      out.set(v.name, dir);
    } else if (v.downwardAPI) {
      const dir = containedPath(base, 'kubernetes.io~downward-api', name);
      await makeVolumeDir(v, dir, { mode: 0o777, tmpfs: false });
      try {
        await writeAtomic(dir, downwardPayload(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? 0o644, opts.nodeAllocatable), undefined, { ownership: podOwnership(pod, true) });
      } catch (err) {
        throw setUpFailed(err instanceof Error ? err.message : String(err), err);
      }
      out.set(v.name, dir);
    } else if (v.configMap || v.secret) {
      const isCM = !!v.configMap;
      const objName = (isCM ? v.configMap?.name : v.secret?.secretName) ?? '';
      const optional = (isCM ? v.configMap?.optional : v.secret?.optional) ?? false;
      const dir = containedPath(base, isCM ? 'kubernetes.io~configmap' : 'kubernetes.io~secret', name);
      let data: Record<string, ConfigValue> = {};
      try {
        if (!opts.data) throw new Error('no API server configured');
        const uid = pod.metadata?.uid;
        data = await (isCM ? opts.data.configMap(ns, objName, uid) : opts.data.secret(ns, objName, uid));
      } catch (err) {
        if (!(optional && (isNotFound(err) || !opts.data))) throw setUpFailed(`${isCM ? 'configmap' : 'secret'} "${objName}" not found`, err);
      }
      // Secrets never touch the root dir's disk: the volume is a tmpfs (secret.go wraps a Memory emptyDir).
      await makeVolumeDir(v, dir, { mode: isCM ? 0o777 : 0o755, tmpfs: !isCM });
      try {
        const payload = isCM
          ? configPayload('configmap', data, v.configMap?.items, v.configMap?.defaultMode ?? 0o644, optional)
          : configPayload('secret', data, v.secret?.items, v.secret?.defaultMode ?? 0o644, optional);
        await writeAtomic(dir, payload, undefined, { ownership: podOwnership(pod, true) });
      } catch (err) {
        throw setUpFailed(err instanceof Error ? err.message : String(err), err);
      }
      out.set(v.name, dir);
    } else if (v.projected) {
      const dir = containedPath(base, 'kubernetes.io~projected', name);
      let payload: Map<string, FileProjection>;
      try {
        payload = await projectedPayload(pod, v.projected, { data: opts.data, tokens: opts.tokens, nodeAllocatable: opts.nodeAllocatable });
      } catch (err) {
        throw setUpFailed(err instanceof Error ? err.message : String(err), err);
      }
      // projected.go wraps a Memory emptyDir: tokens and secrets stay off the disk.
      await makeVolumeDir(v, dir, { mode: 0o755, tmpfs: true });
      try {
        await writeAtomic(dir, payload, undefined, { ownership: podOwnership(pod, true) });
      } catch (err) {
        throw setUpFailed(err instanceof Error ? err.message : String(err), err);
      }
      out.set(v.name, dir);
    } else {
      const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
      throw new VolumeError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : volume type ${kind} is not supported by berth`);
    }
  }
  return out;
}

/**
 * Unmounts everything berth mounted under the pod's directory (subPath binds, tmpfs volumes; deepest
 * first), then removes the directory. Never removes while something is still mounted there (that would
 * delete a volume's or the host's files through the mount). Idempotent; throws VolumeError.
 */
export async function teardownPodVolumes(rootDir: string, uid: string): Promise<void> {
  const dir = podDir(rootDir, uid);
  const under = async (): Promise<string[]> =>
    (await listMountPoints().catch(() => [] as string[])).filter((mp) => mp.startsWith(dir + '/')).sort((a, b) => b.length - a.length);
  for (const mp of await under()) await unmount(mp).catch(() => unmount(mp, { lazy: true }).catch(() => undefined));
  const left = await under();
  if (left.length > 0) throw new VolumeError('', `cannot remove ${dir}: still mounted: ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}
