// Image garbage collection as a pure function: image records (first detected, last used), and which unused images
// to remove when imagefs usage passes imageGCHighThresholdPercent, down to imageGCLowThresholdPercent. Follows
// pkg/kubelet/images/image_gc_manager.go (detectImages, GarbageCollect, freeSpace, byLastUsedAndDetected):
// least recently used first, never an image younger than imageMinimumGCAge since berth first saw it, never an
// image a container (of any state) uses, never the sandbox (pause) image.
import type { Container, Image } from '../../cri/index.ts';

export interface ImageGCPolicy {
  /** --image-gc-high-threshold (85): at or above this usage, collect. 100 disables. */
  highThresholdPercent: number;
  /** --image-gc-low-threshold (80): collect down to this usage. */
  lowThresholdPercent: number;
  /** --image-minimum-gc-age / --minimum-image-ttl-duration (2 min). */
  minAgeMs: number;
}

export const DEFAULT_IMAGE_GC_POLICY: Readonly<ImageGCPolicy> = Object.freeze({ highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 120_000 });

export interface ImageRecord {
  firstDetected: number;
  /** 0 = never seen in use. */
  lastUsed: number;
  sizeBytes: number;
}

/** Image IDs in use: every container's image (by ID, or by reference resolved through tags), plus the sandbox image. */
export function computeImagesInUse(images: readonly Image[], containers: readonly Container[], sandboxImage: string): Set<string> {
  const byRef = new Map<string, string>();
  for (const img of images) {
    byRef.set(img.id, img.id);
    for (const r of [...img.repoTags, ...img.repoDigests]) byRef.set(r, img.id);
  }
  const inUse = new Set<string>();
  const add = (ref: string): void => {
    const id = byRef.get(ref) ?? byRef.get(ref.includes(':') || ref.includes('@') ? ref : `${ref}:latest`);
    if (id) inUse.add(id);
  };
  add(sandboxImage);
  for (const c of containers) {
    if (c.imageRef) add(c.imageRef);
    if (c.image) add(c.image);
  }
  return inUse;
}

/** detectImages: records for the images present now (new ones first detected `now`, used ones last used `now`). */
export function computeImageRecords(prev: ReadonlyMap<string, ImageRecord>, images: readonly Image[], inUse: ReadonlySet<string>, now: number): Map<string, ImageRecord> {
  const next = new Map<string, ImageRecord>();
  for (const img of images) {
    const old = prev.get(img.id);
    next.set(img.id, {
      firstDetected: old?.firstDetected ?? now,
      lastUsed: inUse.has(img.id) ? now : (old?.lastUsed ?? 0),
      sizeBytes: img.sizeBytes,
    });
  }
  return next;
}

export interface ImageGCInput {
  /** imagefs (Docker's data root filesystem). */
  capacityBytes: number;
  availableBytes: number;
  policy: ImageGCPolicy;
  images: readonly Image[];
  records: ReadonlyMap<string, ImageRecord>;
  inUse: ReadonlySet<string>;
  now: number;
}

export interface ImageGCPlan {
  usagePercent: number;
  /** 0 when usage is below the high threshold. */
  bytesToFree: number;
  /** Images to remove, in order; their sizes add up to at least bytesToFree when possible. */
  remove: Image[];
  /** Sum of the sizes of `remove`. */
  freeingBytes: number;
}

/** freeSpace: unused images old enough, least recently used (then first detected) first, until `bytesToFree`. */
export function selectImagesToFree(i: Omit<ImageGCInput, 'capacityBytes' | 'availableBytes' | 'policy'> & { minAgeMs: number; bytesToFree: number }): { remove: Image[]; freeingBytes: number } {
  const candidates = i.images
    .filter((img) => !i.inUse.has(img.id))
    .map((img) => ({ img, rec: i.records.get(img.id) }))
    .filter((x): x is { img: Image; rec: ImageRecord } => x.rec !== undefined)
    .filter((x) => x.rec.lastUsed < i.now && i.now - x.rec.firstDetected >= i.minAgeMs)
    .sort((a, b) => a.rec.lastUsed - b.rec.lastUsed || a.rec.firstDetected - b.rec.firstDetected);
  const remove: Image[] = [];
  let freeingBytes = 0;
  for (const c of candidates) {
    if (freeingBytes >= i.bytesToFree) break;
    remove.push(c.img);
    freeingBytes += c.img.sizeBytes;
  }
  return { remove, freeingBytes };
}

/** GarbageCollect: usage = 100 − available×100/capacity (integer); at ≥ high, free down to low. */
export function computeImageGC(i: ImageGCInput): ImageGCPlan {
  const available = Math.min(i.availableBytes, i.capacityBytes);
  const usagePercent = 100 - Math.trunc((available * 100) / i.capacityBytes);
  if (usagePercent < i.policy.highThresholdPercent) return { usagePercent, bytesToFree: 0, remove: [], freeingBytes: 0 };
  const bytesToFree = Math.trunc((i.capacityBytes * (100 - i.policy.lowThresholdPercent)) / 100) - available;
  const sel = selectImagesToFree({ images: i.images, records: i.records, inUse: i.inUse, now: i.now, minAgeMs: i.policy.minAgeMs, bytesToFree });
  return { usagePercent, bytesToFree, ...sel };
}
