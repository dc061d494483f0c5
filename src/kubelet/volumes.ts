// Pod volumes on the host, laid out as the kubelet does (<root>/pods/<uid>/volumes/<plugin>/<name>):
// emptyDir (disk, or tmpfs for medium Memory), hostPath with its type checks, downwardAPI, and
// configMap/secret through a ConfigDataSource when an API server is there.
import { mkdir, rm, stat, writeFile, rename, readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Pod, Volume } from 'kubernetes-types/core/v1';
import type { ConfigDataSource } from './env.ts';
import { bytes } from './quantity.ts';

const run = promisify(execFile);

export class VolumeError extends Error {
  readonly volume: string;
  constructor(volume: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.volume = volume;
  }
}

export const podDir = (rootDir: string, uid: string): string => path.join(rootDir, 'pods', uid);

async function isMountPoint(dir: string): Promise<boolean> {
  try {
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[1] === dir);
  } catch {
    return false;
  }
}

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
      if (!st) await mkdir(p, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) fail('directory');
      return;
    case 'Directory':
      if (!st?.isDirectory()) fail('directory');
      return;
    case 'FileOrCreate':
      if (!st) {
        await mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
        await writeFile(p, '', { mode: 0o644 });
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

/** Writes files atomically into dir (as the kubelet's AtomicWriter does, simplified: write then rename). */
async function writeFiles(dir: string, files: Record<string, string | Buffer>, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    if (!p.startsWith(dir + path.sep)) continue;
    await mkdir(path.dirname(p), { recursive: true });
    const tmp = `${p}.berth-tmp`;
    await writeFile(tmp, content, { mode });
    await rename(tmp, p);
  }
}

function downwardFiles(pod: Pod, v: Volume): Record<string, string> {
  const out: Record<string, string> = {};
  const m = pod.metadata ?? {};
  const fmtMap = (o: Record<string, string> | undefined): string =>
    Object.keys(o ?? {})
      .sort()
      .map((k) => `${k}=${JSON.stringify(o![k])}`)
      .join('\n');
  for (const item of v.downwardAPI?.items ?? []) {
    const f = item.fieldRef?.fieldPath;
    let val = '';
    if (f === 'metadata.labels') val = fmtMap(m.labels);
    else if (f === 'metadata.annotations') val = fmtMap(m.annotations);
    else if (f === 'metadata.name') val = m.name ?? '';
    else if (f === 'metadata.namespace') val = m.namespace ?? '';
    else if (f === 'metadata.uid') val = m.uid ?? '';
    out[item.path] = val;
  }
  return out;
}

export interface VolumeOptions {
  rootDir: string;
  data?: ConfigDataSource;
}

/** Prepares every volume of the pod; returns volume name → host path. Idempotent. Throws VolumeError. */
export async function setupPodVolumes(pod: Pod, opts: VolumeOptions): Promise<Map<string, string>> {
  const uid = pod.metadata!.uid!;
  const base = path.join(podDir(opts.rootDir, uid), 'volumes');
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    if (v.hostPath) {
      await checkHostPath(v, v.hostPath.path);
      out.set(v.name, v.hostPath.path);
    } else if (v.emptyDir) {
      const dir = path.join(base, 'kubernetes.io~empty-dir', v.name);
      await mkdir(dir, { recursive: true, mode: 0o777 });
      if (v.emptyDir.medium === 'Memory' && !(await isMountPoint(dir))) {
        const size = v.emptyDir.sizeLimit ? `,size=${bytes(v.emptyDir.sizeLimit)}` : '';
        await run('mount', ['-t', 'tmpfs', '-o', `mode=0777${size}`, 'tmpfs', dir]).catch((err: unknown) => {
          throw new VolumeError(v.name, `mount tmpfs on ${dir} failed`, { cause: err });
        });
      }
      out.set(v.name, dir);
    } else if (v.downwardAPI) {
      const dir = path.join(base, 'kubernetes.io~downward-api', v.name);
      await writeFiles(dir, downwardFiles(pod, v), v.downwardAPI.defaultMode ?? 0o644);
      out.set(v.name, dir);
    } else if (v.configMap || v.secret) {
      const isCM = !!v.configMap;
      const name = (isCM ? v.configMap?.name : v.secret?.secretName) ?? '';
      const optional = (isCM ? v.configMap?.optional : v.secret?.optional) ?? false;
      const dir = path.join(base, isCM ? 'kubernetes.io~configmap' : 'kubernetes.io~secret', v.name);
      let data: Record<string, string> = {};
      try {
        if (!opts.data) throw new Error('no API server configured');
        data = await (isCM ? opts.data.configMap(pod.metadata!.namespace!, name) : opts.data.secret(pod.metadata!.namespace!, name));
      } catch (err) {
        if (!optional)
          throw new VolumeError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : ${isCM ? 'configmap' : 'secret'} "${name}" not found`, { cause: err });
      }
      const items = (isCM ? v.configMap?.items : v.secret?.items) ?? Object.keys(data).map((key) => ({ key, path: key }));
      const files: Record<string, string | Buffer> = {};
      for (const it of items) {
        const val = data[it.key];
        if (val !== undefined) files[it.path] = val;
      }
      await writeFiles(dir, files, (isCM ? v.configMap?.defaultMode : v.secret?.defaultMode) ?? 0o644);
      out.set(v.name, dir);
    } else {
      const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
      throw new VolumeError(v.name, `volume type ${kind} is not supported by berth`);
    }
  }
  return out;
}

/** Removes the pod's directory (unmounting tmpfs volumes first). Idempotent. */
export async function teardownPodVolumes(rootDir: string, uid: string): Promise<void> {
  const dir = podDir(rootDir, uid);
  try {
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    for (const line of mounts.split('\n')) {
      const mp = line.split(' ')[1];
      if (mp && mp.startsWith(dir + '/')) await run('umount', ['-l', mp]).catch(() => undefined);
    }
  } catch {
    // no /proc/self/mounts: nothing mounted by us
  }
  await rm(dir, { recursive: true, force: true });
}
