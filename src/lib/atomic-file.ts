// Whole-or-nothing file writes for state berth keeps on disk (its generated serving certificate and key): a full
// disk, a crash or a kill mid-write leaves the old file or no file, never a truncated one.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `data` to `file` through a temporary file in the same directory: write, fsync, rename over `file`, fsync
 * the directory. `mode` is set on the temporary file (before any byte is written, whatever the umask). On failure
 * the temporary file is removed and the error (its `code` kept, e.g. ENOSPC) says which file could not be written.
 * Not for files bind-mounted into running containers: rename gives a new inode they would not see.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
    try {
      if (opts.mode !== undefined) await fh.chmod(opts.mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err: unknown) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw Object.assign(new Error(`writing ${file}: ${e.message ?? String(err)}`, { cause: err }), { code: e.code, path: file });
  }
  // The rename is durable once the directory is synced; a directory that cannot be opened for sync is not an error.
  const dir = await open(path.dirname(file), 'r').catch(() => undefined);
  if (dir) await dir.sync().catch(() => undefined).finally(() => dir.close());
}
