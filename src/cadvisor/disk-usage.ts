// The expensive figures, refreshed off the housekeeping tick on a slower period (cAdvisor's fs handler also
// runs `du` on its own schedule): each running container's writable layer (overlay2 upper dir), each pod's
// volume directories (<rootDir>/pods/<uid>/volumes/<plugin>/<name>, as the kubelet lays them out), and the total
// size of the images (imagefs usedBytes, as the CRI's ImageFsInfo). One walk at a time; results are attached to
// later snapshots.
import { stat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ImageService } from '../cri/index.ts';
import { errorMessage, type Logger } from '../lib/index.ts';
import { diskUsage, statFs, writableLayerDir } from './fs.ts';
import type { FsSample, VolumeSample } from './types.ts';

export interface DiskUsageOptions {
  rootDir: string;
  dockerDataRoot: string;
  images?: Pick<ImageService, 'listImages'>;
  log: Logger;
  now: () => number;
}

export class DiskUsageCache {
  private readonly o: DiskUsageOptions;
  private readonly rootfsById = new Map<string, FsSample>();
  private readonly volumesByUid = new Map<string, { all: VolumeSample[]; onNodeFs: VolumeSample[] }>();
  /** Sum of image sizes; undefined until listed (or without an image service). */
  imagesBytes?: number;

  constructor(o: DiskUsageOptions) {
    this.o = o;
  }

  rootfs(containerId: string): FsSample | undefined {
    return this.rootfsById.get(containerId);
  }
  volumes(uid: string): VolumeSample[] {
    return this.volumesByUid.get(uid)?.all ?? [];
  }
  /** The pod's volumes on nodefs (not tmpfs-backed): what counts towards ephemeral storage. */
  nodeFsVolumes(uid: string): VolumeSample[] {
    return this.volumesByUid.get(uid)?.onNodeFs ?? [];
  }

  /** Walks everything once; drops entries of containers and pods no longer given. Never rejects. */
  async refresh(containers: { id: string; isSandbox: boolean; podUid: string }[], signal?: AbortSignal): Promise<void> {
    const t = this.o.now();
    const ids = new Set(containers.map((c) => c.id));
    for (const id of this.rootfsById.keys()) if (!ids.has(id)) this.rootfsById.delete(id);
    for (const c of containers) {
      if (c.isSandbox || signal?.aborted) continue;
      const dir = await writableLayerDir(this.o.dockerDataRoot, c.id);
      if (!dir) continue;
      try {
        const du = await diskUsage(dir);
        this.rootfsById.set(c.id, { timeMs: t, usedBytes: du.bytes, inodesUsed: du.inodes });
      } catch {
        // container removed meanwhile
      }
    }
    const uids = new Set(containers.map((c) => c.podUid));
    for (const uid of this.volumesByUid.keys()) if (!uids.has(uid)) this.volumesByUid.delete(uid);
    const nodeDev = await stat(this.o.rootDir).then((s) => s.dev, () => undefined);
    for (const uid of uids) {
      if (signal?.aborted) break;
      this.volumesByUid.set(uid, await this.podVolumes(uid, t, nodeDev));
    }
    if (this.o.images) {
      try {
        this.imagesBytes = (await this.o.images.listImages()).reduce((a, i) => a + i.sizeBytes, 0);
      } catch (err: unknown) {
        this.o.log.debug({ err: errorMessage(err) }, 'stats: list images failed');
      }
    }
  }

  private async podVolumes(uid: string, t: number, nodeDev: number | undefined): Promise<{ all: VolumeSample[]; onNodeFs: VolumeSample[] }> {
    const base = path.join(this.o.rootDir, 'pods', uid, 'volumes');
    const all: VolumeSample[] = [];
    const onNodeFs: VolumeSample[] = [];
    const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);
    for (const plugin of await list(base)) {
      for (const name of await list(path.join(base, plugin))) {
        const dir = path.join(base, plugin, name);
        try {
          const [du, st] = await Promise.all([diskUsage(dir), stat(dir)]);
          const fs = statFs(dir, t);
          const v: VolumeSample = { name, timeMs: t, capacityBytes: fs?.capacityBytes, availableBytes: fs?.availableBytes, inodes: fs?.inodes, inodesFree: fs?.inodesFree, usedBytes: du.bytes, inodesUsed: du.inodes };
          all.push(v);
          if (st.dev === nodeDev) onNodeFs.push(v);
        } catch {
          // removed meanwhile
        }
      }
    }
    return { all, onNodeFs };
  }
}
