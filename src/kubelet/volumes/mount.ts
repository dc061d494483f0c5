// mount(8)/umount(8) with a timeout (a hung NFS or a stuck kernel must not stall a pod worker forever),
// argument arrays only, and the mount table read from /proc/self/mountinfo.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export const MOUNT_TIMEOUT_MS = 30_000;

export class MountError extends Error {
  readonly code = 'MountFailed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MountError';
  }
}

/** Runs `cmd args…` (no shell); rejects with MountError naming the output, or "timed out" after timeoutMs (SIGKILL). */
export function runWithTimeout(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      const why = e.killed ? `timed out after ${timeoutMs}ms` : String(stderr).trim() || e.message;
      reject(new MountError(`${cmd} ${args.join(' ')} failed: ${why}`, { cause: err }));
    });
  });
}

/** Runs `mount args…`; rejects with MountError (output or "timed out") on failure. */
export const mount = (args: string[], timeoutMs = MOUNT_TIMEOUT_MS): Promise<void> => runWithTimeout('mount', args, timeoutMs);

/** Unmounts `target` (lazily with `lazy`); rejects with MountError on failure or timeout. */
export const unmount = (target: string, o: { lazy?: boolean; timeoutMs?: number } = {}): Promise<void> =>
  runWithTimeout('umount', [...(o.lazy ? ['-l'] : []), target], o.timeoutMs ?? MOUNT_TIMEOUT_MS);

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mount points of this process's mount namespace, in mount order. */
export async function listMountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescape);
}

export async function isMountPoint(dir: string): Promise<boolean> {
  return (await listMountPoints()).includes(dir);
}
