// Filesystem figures: statfs(2) for nodefs / imagefs (cheap, every pass) and a disk-usage walk for writable
// layers, volumes and similar directories (expensive: run on a slower period, asynchronously, bounded). The walk
// counts allocated blocks (st_blocks × 512, like `du`) and inodes, does not follow symlinks and does not cross
// into other filesystems (a tmpfs emptyDir is measured by its own statfs instead).
import { statfsSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FsSample } from './types.ts';

export function statFs(dir: string, timeMs: number): FsSample | undefined {
  try {
    const s = statfsSync(dir);
    return {
      timeMs,
      capacityBytes: s.blocks * s.bsize,
      availableBytes: s.bavail * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
      inodes: s.files,
      inodesFree: s.ffree,
      inodesUsed: s.files - s.ffree,
    };
  } catch {
    return undefined;
  }
}

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

/**
 * `du -s --one-file-system` of `dir`. Missing dir → NotFound (rejects). Entries that vanish mid-walk are
 * skipped. `maxEntries` bounds the work (a runaway tree stops being counted; the figure is then a lower bound).
 */
export async function diskUsage(dir: string, opts: { maxEntries?: number } = {}): Promise<DiskUsage> {
  const max = opts.maxEntries ?? 200_000;
  const root = await lstat(dir);
  const dev = root.dev;
  let bytes = root.blocks * 512;
  let inodes = 1;
  const stack = root.isDirectory() ? [dir] : [];
  while (stack.length > 0 && inodes < max) {
    const d = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue;
    }
    for (const n of names) {
      const p = path.join(d, n);
      try {
        const st = await lstat(p);
        if (st.dev !== dev) continue;
        bytes += st.blocks * 512;
        inodes++;
        if (st.isDirectory()) stack.push(p);
      } catch {
        // vanished while walking
      }
    }
  }
  return { bytes, inodes };
}

/**
 * The writable layer of a Docker container under the overlay2 driver: Docker records the layer's directory in
 * <dataRoot>/image/overlay2/layerdb/mounts/<id>/mount-id; the upper dir is <dataRoot>/overlay2/<mount-id>/diff.
 * Undefined for other drivers or when the files are not there.
 */
export async function writableLayerDir(dataRoot: string, containerId: string): Promise<string | undefined> {
  try {
    const mountId = (await readFile(path.join(dataRoot, 'image', 'overlay2', 'layerdb', 'mounts', containerId, 'mount-id'), 'utf8')).trim();
    if (!/^[A-Za-z0-9]+$/.test(mountId)) return undefined;
    return path.join(dataRoot, 'overlay2', mountId, 'diff');
  } catch {
    return undefined;
  }
}
