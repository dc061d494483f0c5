// Image pulls per imagePullPolicy with upstream's reasons, messages, events and per-(pod, image) back-off
// (pkg/kubelet/images/image_manager.go EnsureImageExists).
import type { Container, Pod } from 'kubernetes-types/core/v1';
import type { Image, ImageService } from '../../cri/index.ts';
import { errorMessage, isNotFound, KeyedBackoff, type Clock, systemClock } from '../../lib/index.ts';
import type { EventRecorder, ObjectRef } from '../status/events.ts';

export type EnsureImageResult = { ok: true; imageRef: string } | { ok: false; reason: string; message: string };

const IMAGE_REF = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;

export class ImageManager {
  private readonly images: ImageService;
  private readonly recorder: EventRecorder;
  private readonly clock: Clock;
  /** Per-(pod, image) pull back-off, in memory (image pulls are not worth persisting). */
  readonly backoff: KeyedBackoff;
  private readonly inflight = new Map<string, Promise<string>>();
  constructor(opts: { images: ImageService; recorder: EventRecorder; clock?: Clock; initialBackoffMs?: number; maxBackoffMs?: number }) {
    this.images = opts.images;
    this.recorder = opts.recorder;
    this.clock = opts.clock ?? systemClock;
    this.backoff = new KeyedBackoff({ initialMs: opts.initialBackoffMs ?? 10_000, maxMs: opts.maxBackoffMs ?? 300_000 }, this.clock);
  }

  /** The image's status (its user, for runAsNonRoot). Throws NotFoundError when the image is absent. */
  imageStatus(image: string): Promise<Image> {
    return this.images.imageStatus(image);
  }

  async ensureImageExists(pod: Pod, c: Container, ref: ObjectRef): Promise<EnsureImageResult> {
    const image = c.image ?? '';
    const policy = c.imagePullPolicy ?? 'IfNotPresent';
    if (!IMAGE_REF.test(image)) {
      const message = `Failed to apply default image tag "${image}": couldn't parse image reference "${image}": invalid reference format`;
      this.recorder.event(ref, 'Warning', 'InspectFailed', message);
      return { ok: false, reason: 'InvalidImageName', message };
    }
    let present: string | undefined;
    try {
      present = (await this.images.imageStatus(image)).id;
    } catch (err) {
      if (!isNotFound(err)) {
        const message = `Failed to inspect image "${image}": ${errorMessage(err)}`;
        this.recorder.event(ref, 'Warning', 'InspectFailed', message);
        return { ok: false, reason: 'ImageInspectError', message };
      }
    }
    if (present && policy !== 'Always') {
      this.recorder.event(ref, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
      return { ok: true, imageRef: present };
    }
    if (policy === 'Never') {
      const message = `Container image "${image}" is not present with pull policy of Never`;
      this.recorder.event(ref, 'Warning', 'ErrImageNeverPull', message);
      return { ok: false, reason: 'ErrImageNeverPull', message };
    }
    const key = `${pod.metadata?.uid}_${image}`;
    if (this.backoff.isInBackOffSinceUpdate(key)) {
      const message = `Back-off pulling image "${image}"`;
      this.recorder.event(ref, 'Normal', 'BackOff', message);
      return { ok: false, reason: 'ImagePullBackOff', message };
    }
    this.recorder.event(ref, 'Normal', 'Pulling', `Pulling image "${image}"`);
    const t0 = this.clock.now();
    try {
      let p = this.inflight.get(image);
      if (!p) {
        p = this.images.pullImage(image).finally(() => this.inflight.delete(image));
        this.inflight.set(image, p);
      }
      const id = await p;
      const secs = ((this.clock.now() - t0) / 1000).toFixed(3);
      this.recorder.event(ref, 'Normal', 'Pulled', `Successfully pulled image "${image}" in ${secs}s`);
      this.backoff.reset(key);
      return { ok: true, imageRef: id };
    } catch (err) {
      this.backoff.next(key);
      const message = errorMessage(err);
      this.recorder.event(ref, 'Warning', 'Failed', `Failed to pull image "${image}": ${message}`);
      this.recorder.event(ref, 'Warning', 'Failed', 'Error: ErrImagePull');
      return { ok: false, reason: 'ErrImagePull', message };
    }
  }

  /** Time until the pull back-off for this pod's image ends (0 = not backing off). */
  pullRetryInMs(pod: Pod, image: string): number {
    return this.backoff.remainingMs(`${pod.metadata?.uid}_${image}`);
  }

  forgetPod(uid: string): void {
    this.backoff.gcPrefix(`${uid}_`);
  }
}
