// The garbage collector's loops (kubelet.go StartGarbageCollection): container GC every minute (dead containers
// beyond the per-pod limit, dead sandboxes, and everything dead of pods that are gone, plus their pod and log
// directories) and image GC every five minutes (unused images when imagefs passes the high threshold). Also the
// eviction manager's node-level reclaim (DeleteAllUnusedContainers, DeleteUnusedImages). Each pass logs one
// summary line. Effects only: the selection is in containers.ts, images.ts and dirs.ts.
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Container, Image, ImageService, PodSandbox, RuntimeService } from '../../cri/index.ts';
import { L } from '../../cri/index.ts';
import { errorMessage, isNotFound, SyncRunner, systemClock, type Clock, type Logger } from '../../lib/index.ts';
import type { EventRecorder, ObjectRef } from '../status/events.ts';
import { teardownPodVolumes } from '../volumes/index.ts';
import { computeContainerGC, DEFAULT_CONTAINER_GC_POLICY, type ContainerGCPolicy } from './containers.ts';
import { computeOrphanDirs } from './dirs.ts';
import { computeDanglingLogLinks, type LogLinkEntry } from './log-links.ts';
import { computeImageGC, computeImageRecords, computeImagesInUse, DEFAULT_IMAGE_GC_POLICY, selectImagesToFree, type ImageGCPolicy, type ImageRecord } from './images.ts';

/** Upstream's ContainerGCPeriod and ImageGCPeriod. */
export const CONTAINER_GC_PERIOD_MS = 60_000;
export const IMAGE_GC_PERIOD_MS = 5 * 60_000;

/** What the collector asks the kubelet about pods. */
export interface PodStateProvider {
  /** Every pod source has reported at least once. */
  allSourcesReady(): boolean;
  /** No source knows this pod UID any more. */
  isPodDeleted(uid: string): boolean;
  /** The pod is terminal (Succeeded/Failed). */
  isPodTerminated(uid: string): boolean;
}

export interface GarbageCollectorOptions {
  runtime: Pick<RuntimeService, 'listContainers' | 'listPodSandbox' | 'removeContainer' | 'removePodSandbox'>;
  images: Pick<ImageService, 'listImages' | 'removeImage'>;
  /** Only this node's containers and sandboxes are collected (io.berth.node label). */
  nodeName: string;
  rootDir: string;
  podLogsDir: string;
  /** The sandbox (pause) image: never removed. */
  sandboxImage: string;
  pods: PodStateProvider;
  /** imagefs capacity and available bytes now; undefined when unknown (image GC then skips the pass). */
  imageFs: () => Promise<{ capacityBytes: number; availableBytes: number } | undefined>;
  containerPolicy?: ContainerGCPolicy;
  imagePolicy?: ImageGCPolicy;
  containerGCPeriodMs?: number;
  imageGCPeriodMs?: number;
  recorder: EventRecorder;
  nodeRef: ObjectRef;
  log: Logger;
  clock?: Clock;
}

export interface ContainerGCSummary {
  containers: number;
  sandboxes: number;
  podDirs: number;
  logDirs: number;
  /** Dangling /var/log/containers links removed. */
  logLinks: number;
  failed: number;
}

export interface ImageGCSummary {
  usagePercent?: number;
  bytesToFree: number;
  removed: string[];
  freedBytes: number;
  failed: number;
}

export class GarbageCollector {
  private readonly o: GarbageCollectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly containerRunner: SyncRunner;
  private readonly imageRunner: SyncRunner;
  private records = new Map<string, ImageRecord>();

  constructor(o: GarbageCollectorOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
    const cPeriod = o.containerGCPeriodMs ?? CONTAINER_GC_PERIOD_MS;
    const iPeriod = o.imageGCPeriodMs ?? IMAGE_GC_PERIOD_MS;
    this.containerRunner = new SyncRunner({ name: 'container-gc', run: async () => void (await this.collectContainers(false)), periodMs: cPeriod, minIntervalMs: cPeriod, log: o.log, clock: this.clock });
    this.imageRunner = new SyncRunner({ name: 'image-gc', run: async () => void (await this.collectImages()), periodMs: iPeriod, minIntervalMs: iPeriod, log: o.log, clock: this.clock });
  }

  /** Starts both loops (the first passes run at once). */
  start(): void {
    const p = this.o.imagePolicy ?? DEFAULT_IMAGE_GC_POLICY;
    this.log.info({ imageGCHighThresholdPercent: p.highThresholdPercent, imageGCLowThresholdPercent: p.lowThresholdPercent, imageMinimumGCAgeMs: p.minAgeMs }, 'garbage collector started');
    this.containerRunner.start();
    this.imageRunner.start();
  }

  stop(): void {
    this.containerRunner.stop();
    this.imageRunner.stop();
  }

  /** The eviction manager's DeleteAllUnusedContainers: the same policy, and terminal pods' dead containers too. */
  async deleteAllUnusedContainers(): Promise<void> {
    await this.collectContainers(true);
  }

  /** The eviction manager's DeleteUnusedImages: every unused image old enough, whatever the usage. */
  async deleteUnusedImages(): Promise<void> {
    await this.collectImages(Number.POSITIVE_INFINITY);
  }

  /** One container GC pass; resolves with what it removed. Rejects only if the runtime cannot be listed. */
  async collectContainers(evictTerminatedPods: boolean): Promise<ContainerGCSummary> {
    // The links are read before the runtime is listed: a link made after that listing never meets a listing without
    // its container.
    const linksDir = path.join(path.dirname(this.o.podLogsDir), 'containers');
    const links = await listLogLinks(linksDir);
    const [allContainers, allSandboxes] = await Promise.all([this.o.runtime.listContainers(), this.o.runtime.listPodSandbox()]);
    const mine = <T extends { labels: Record<string, string> }>(x: T): boolean => x.labels[L.node] === this.o.nodeName;
    const pods = this.o.pods;
    const allSourcesReady = pods.allSourcesReady();
    const plan = computeContainerGC({
      containers: allContainers.filter(mine),
      sandboxes: allSandboxes.filter(mine),
      now: this.clock.now(),
      policy: this.o.containerPolicy ?? DEFAULT_CONTAINER_GC_POLICY,
      allSourcesReady,
      isPodDeleted: (uid) => pods.isPodDeleted(uid),
      isPodTerminated: (uid) => pods.isPodTerminated(uid),
      evictTerminatedPods,
    });
    const summary: ContainerGCSummary = { containers: 0, sandboxes: 0, podDirs: 0, logDirs: 0, logLinks: 0, failed: 0 };
    const attempt = async (what: () => Promise<void>, ok: keyof ContainerGCSummary, fields: Record<string, string>): Promise<void> => {
      try {
        await what();
        summary[ok]++;
      } catch (err: unknown) {
        summary.failed++;
        this.log.debug({ err, ...fields }, 'gc: remove failed');
      }
    };
    for (const c of plan.containers) await attempt(() => this.o.runtime.removeContainer(c.id), 'containers', { containerId: c.id });
    for (const s of plan.sandboxes) await attempt(() => this.o.runtime.removePodSandbox(s.id), 'sandboxes', { sandboxId: s.id });

    const removedIds = new Set(plan.containers.map((c) => c.id));
    const left = new Set<string>();
    const note = (uid: string | undefined): void => void (uid && left.add(uid));
    for (const c of allContainers as Container[]) if (!removedIds.has(c.id)) note(c.labels[L.podUid]);
    const removedSandboxes = new Set(plan.sandboxes.map((s) => s.id));
    for (const s of allSandboxes as PodSandbox[]) if (!removedSandboxes.has(s.id)) note(s.metadata.uid);
    const dirs = computeOrphanDirs({
      podDirs: await listDir(path.join(this.o.rootDir, 'pods')),
      logDirs: await listDir(this.o.podLogsDir),
      allSourcesReady,
      isPodDeleted: (uid) => pods.isPodDeleted(uid),
      hasRuntimeObjects: (uid) => left.has(uid),
    });
    for (const uid of dirs.podDirs) await attempt(() => teardownPodVolumes(this.o.rootDir, uid), 'podDirs', { podUid: uid });
    for (const d of dirs.logDirs) await attempt(() => rm(path.join(this.o.podLogsDir, d), { recursive: true, force: true }), 'logDirs', { dir: d });
    // Containers removed above took their own links (removeContainer); the listing still names them, as exited.
    const stateOf = new Map((allContainers as Container[]).map((c) => [c.id, c.state]));
    for (const n of computeDanglingLogLinks(links, (id) => stateOf.get(id)))
      await attempt(() => rm(path.join(linksDir, n), { force: true }), 'logLinks', { link: n });

    const any = summary.containers + summary.sandboxes + summary.podDirs + summary.logDirs + summary.logLinks + summary.failed > 0;
    this.log[any ? 'info' : 'debug']({ ...summary, evictTerminatedPods }, 'container gc');
    return summary;
  }

  /**
   * One image GC pass (GarbageCollect), or with `bytesToFree` a forced one (DeleteUnusedImages). Records a
   * FreeDiskSpaceFailed Warning when it could not free enough.
   */
  async collectImages(bytesToFree?: number): Promise<ImageGCSummary> {
    const [images, containers, fs] = await Promise.all([this.o.images.listImages(), this.o.runtime.listContainers(), this.o.imageFs()]);
    const now = this.clock.now();
    const inUse = computeImagesInUse(images, containers, this.o.sandboxImage);
    this.records = computeImageRecords(this.records, images, inUse, now);
    const policy = this.o.imagePolicy ?? DEFAULT_IMAGE_GC_POLICY;
    let plan: { remove: Image[]; bytesToFree: number; usagePercent?: number };
    if (bytesToFree !== undefined) {
      plan = { ...selectImagesToFree({ images, records: this.records, inUse, now, minAgeMs: policy.minAgeMs, bytesToFree }), bytesToFree };
    } else {
      if (!fs || fs.capacityBytes <= 0) {
        this.log.debug('image gc: imagefs capacity unknown; skipping');
        return { bytesToFree: 0, removed: [], freedBytes: 0, failed: 0 };
      }
      plan = computeImageGC({ ...fs, policy, images, records: this.records, inUse, now });
    }
    const summary: ImageGCSummary = { usagePercent: plan.usagePercent, bytesToFree: plan.bytesToFree, removed: [], freedBytes: 0, failed: 0 };
    for (const img of plan.remove) {
      try {
        await this.removeImage(img);
        this.records.delete(img.id);
        summary.removed.push(img.repoTags[0] ?? img.id);
        summary.freedBytes += img.sizeBytes;
      } catch (err: unknown) {
        summary.failed++;
        this.log.debug({ err, imageId: img.id }, 'image gc: remove failed');
      }
    }
    const short = bytesToFree === undefined && summary.freedBytes < plan.bytesToFree;
    if (short) {
      this.o.recorder.event(
        this.o.nodeRef,
        'Warning',
        'FreeDiskSpaceFailed',
        `failed to garbage collect required amount of images. Wanted to free ${plan.bytesToFree} bytes, but freed ${summary.freedBytes} bytes`,
      );
    }
    const acted = plan.bytesToFree > 0 || summary.removed.length > 0 || summary.failed > 0;
    this.log[acted ? 'info' : 'debug'](
      { ...summary, highThresholdPercent: policy.highThresholdPercent, lowThresholdPercent: policy.lowThresholdPercent, forced: bytesToFree !== undefined },
      'image gc',
    );
    return summary;
  }

  /** As dockershim's RemoveImage: every tag and digest, then the ID, so a multi-tagged image really goes. */
  private async removeImage(img: Image): Promise<void> {
    for (const ref of [...img.repoTags.filter((t) => !t.startsWith('<none>')), ...img.repoDigests.filter((d) => !d.startsWith('<none>')), img.id]) {
      try {
        await this.o.images.removeImage(ref);
      } catch (err: unknown) {
        if (!isNotFound(err)) throw new Error(`remove image ${ref}: ${errorMessage(err)}`, { cause: err });
      }
    }
  }
}

/** The `*.log` entries of the links folder: whether each is a symlink and whether its target chain resolves. */
async function listLogLinks(dir: string): Promise<LogLinkEntry[]> {
  const names = (await listDir(dir)).filter((n) => n.endsWith('.log'));
  return Promise.all(
    names.map(async (name) => {
      const p = path.join(dir, name);
      const isSymlink = await lstat(p).then((st) => st.isSymbolicLink(), () => false);
      const targetExists = await stat(p).then(() => true, () => false);
      return { name, isSymlink, targetExists };
    }),
  );
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
