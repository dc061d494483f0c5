// Garbage collection selection as tables: dead containers beyond the per-pod limit (the last dead instance of each
// container stays), dead sandboxes, everything dead of pods that are gone; unused images by least recent use above
// the high threshold down to the low one, never in use, never the pause image, never younger than the minimum
// age; directories of pods that are gone; dangling /var/log/containers links.
import { describe, it, expect } from 'vitest';
import type { Container, Image, PodSandbox } from '../../src/cri/index.ts';
import {
  computeContainerGC,
  computeImageGC,
  computeImageRecords,
  computeImagesInUse,
  computeDanglingLogLinks,
  computeOrphanDirs,
  containerIdFromLogLink,
  DEFAULT_CONTAINER_GC_POLICY,
  selectImagesToFree,
  type ContainerGCInput,
  type ImageRecord,
  type LogLinkEntry,
} from '../../src/kubelet/gc/index.ts';

const T0 = 1_700_000_000_000;
const s = (n: number): number => n * 1000;

function ctr(id: string, o: { uid?: string; name?: string; state?: Container['state']; at?: number; sandbox?: string; imageRef?: string; image?: string } = {}): Container {
  return {
    id,
    podSandboxId: o.sandbox ?? `sb-${o.uid ?? 'a'}`,
    metadata: { name: o.name ?? 'app', attempt: 0 },
    image: o.image ?? 'img',
    imageRef: o.imageRef ?? 'sha256:img',
    state: o.state ?? 'CONTAINER_EXITED',
    createdAt: o.at ?? T0,
    labels: { 'io.kubernetes.pod.uid': o.uid ?? 'a', 'io.kubernetes.container.name': o.name ?? 'app' },
    annotations: {},
  };
}
function sb(id: string, o: { uid?: string; ready?: boolean; at?: number } = {}): PodSandbox {
  return { id, metadata: { name: 'p', namespace: 'ns', uid: o.uid ?? 'a', attempt: 0 }, state: o.ready ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY', createdAt: o.at ?? T0, labels: {}, annotations: {} };
}
function gc(containers: Container[], sandboxes: PodSandbox[], o: Partial<ContainerGCInput> = {}): { containers: string[]; sandboxes: string[] } {
  const r = computeContainerGC({
    containers,
    sandboxes,
    now: T0 + s(3600),
    policy: DEFAULT_CONTAINER_GC_POLICY,
    allSourcesReady: true,
    isPodDeleted: () => false,
    isPodTerminated: () => false,
    evictTerminatedPods: false,
    ...o,
  });
  return { containers: r.containers.map((c) => c.id).sort(), sandboxes: r.sandboxes.map((x) => x.id).sort() };
}

describe('computeContainerGC', () => {
  it('keeps the running container and the newest dead instance of each container (logs --previous), removes older ones', () => {
    const r = gc(
      [
        ctr('app-3', { state: 'CONTAINER_RUNNING', at: T0 + s(30) }),
        ctr('app-2', { at: T0 + s(20) }),
        ctr('app-1', { at: T0 + s(10) }),
        ctr('app-0', { at: T0 }),
        ctr('side-1', { name: 'side', at: T0 + s(10) }),
        ctr('side-0', { name: 'side', at: T0 }),
      ],
      [sb('sb-a', { ready: true })],
    );
    expect(r.containers).toEqual(['app-0', 'app-1', 'side-0']);
    expect(r.sandboxes).toEqual([]);
  });

  it('a container created but not yet started does not push the last dead instance out', () => {
    const r = gc([ctr('app-new', { state: 'CONTAINER_CREATED', at: T0 + s(20) }), ctr('app-dead', { at: T0 + s(10) })], []);
    expect(r.containers).toEqual([]);
  });

  it('removes every dead container and dead sandbox of a pod that is gone, once all sources are ready', () => {
    const containers = [
      ctr('x-1', { uid: 'gone', at: T0 + s(1), sandbox: 'sb-gone-1' }),
      ctr('x-0', { uid: 'gone', sandbox: 'sb-gone-0' }),
      ctr('x-created', { uid: 'gone', state: 'CONTAINER_CREATED', sandbox: 'sb-gone-1' }),
    ];
    const sandboxes = [sb('sb-gone-1', { uid: 'gone', at: T0 + s(1) }), sb('sb-gone-0', { uid: 'gone' })];
    const deleted = (uid: string): boolean => uid === 'gone';
    const r = gc(containers, sandboxes, { isPodDeleted: deleted });
    expect(r.containers).toEqual(['x-0', 'x-1', 'x-created']);
    // Sandboxes still referenced by a container this pass stay until the next pass.
    expect(r.sandboxes).toEqual([]);
    expect(gc([], sandboxes, { isPodDeleted: deleted }).sandboxes).toEqual(['sb-gone-0', 'sb-gone-1']);
    // Not before every source has reported.
    expect(gc(containers, [], { isPodDeleted: deleted, allSourcesReady: false }).containers).toEqual(['x-0']);
  });

  it('never touches a running container, even of a pod that is gone', () => {
    expect(gc([ctr('r', { uid: 'gone', state: 'CONTAINER_RUNNING' })], [sb('sb', { uid: 'gone', ready: true })], { isPodDeleted: () => true })).toEqual({
      containers: [],
      sandboxes: [],
    });
  });

  it('terminal pods keep their last instance, unless the eviction manager asks for everything', () => {
    const containers = [ctr('t-1', { uid: 'done', at: T0 + s(1) }), ctr('t-0', { uid: 'done' })];
    const terminated = (uid: string): boolean => uid === 'done';
    expect(gc(containers, [], { isPodTerminated: terminated }).containers).toEqual(['t-0']);
    expect(gc(containers, [], { isPodTerminated: terminated, evictTerminatedPods: true }).containers).toEqual(['t-0', 't-1']);
  });

  it('keeps the newest sandbox of a live pod and every ready or still referenced one', () => {
    const r = gc(
      [ctr('c', { sandbox: 'sb-1', at: T0 + s(1) })],
      [sb('sb-3', { at: T0 + s(3) }), sb('sb-2', { at: T0 + s(2), ready: true }), sb('sb-1', { at: T0 + s(1) }), sb('sb-0', { at: T0 })],
    );
    expect(r.sandboxes).toEqual(['sb-0']);
  });

  it('honours MinAge and a node-wide MaxContainers (oldest first)', () => {
    const cs = [ctr('a1', { uid: 'a', at: T0 + s(3) }), ctr('a0', { uid: 'a', at: T0 + s(1) }), ctr('b1', { uid: 'b', at: T0 + s(2) }), ctr('b0', { uid: 'b', at: T0 })];
    expect(gc(cs, [], { policy: { minAgeMs: 0, maxPerPodContainer: -1, maxContainers: 3 } }).containers).toEqual(['a0', 'b0']);
    expect(gc(cs, [], { policy: { minAgeMs: 0, maxPerPodContainer: -1, maxContainers: 1 } }).containers).toEqual(['a0', 'b0', 'b1']);
    expect(gc(cs, [], { now: T0 + s(2), policy: { minAgeMs: s(1), maxPerPodContainer: 0, maxContainers: -1 } }).containers).toEqual(['a0', 'b0']);
  });
});

const img = (id: string, size: number, tags: string[] = [`${id}:latest`]): Image => ({ id: `sha256:${id}`, repoTags: tags, repoDigests: [], sizeBytes: size });

describe('image GC', () => {
  const images = [img('old', 300), img('older', 200), img('busy', 500), img('fresh', 100), img('pause', 1, ['berth.local/pause:3.9'])];
  const inUse = computeImagesInUse(images, [ctr('c', { imageRef: 'sha256:busy', state: 'CONTAINER_EXITED' })], 'berth.local/pause:3.9');
  const records = new Map<string, ImageRecord>([
    ['sha256:old', { firstDetected: T0, lastUsed: T0 + s(100), sizeBytes: 300 }],
    ['sha256:older', { firstDetected: T0, lastUsed: T0 + s(50), sizeBytes: 200 }],
    ['sha256:busy', { firstDetected: T0, lastUsed: T0 + s(600), sizeBytes: 500 }],
    ['sha256:fresh', { firstDetected: T0 + s(590), lastUsed: 0, sizeBytes: 100 }],
    ['sha256:pause', { firstDetected: T0, lastUsed: 0, sizeBytes: 1 }],
  ]);
  const now = T0 + s(600);
  const policy = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: s(120) };

  it('counts images of any container (exited too) and the pause image as in use', () => {
    expect([...inUse].sort()).toEqual(['sha256:busy', 'sha256:pause']);
    // A container naming its image by tag only is matched through the tags.
    expect([...computeImagesInUse(images, [ctr('c', { imageRef: '', image: 'old' })], 'none')]).toEqual(['sha256:old']);
  });

  it.each([
    ['below the high threshold: nothing', 850, 0, []],
    ['at 85% used: free down to 80%, least recently used first', 150, 50, ['sha256:older']],
    ['full: stops once enough is freed (down to 80%)', 0, 200, ['sha256:older']],
    ['at 90% used: the least recently used image is enough', 100, 100, ['sha256:older']],
  ] as const)('%s', (_what, available, toFree, removed) => {
    const plan = computeImageGC({ capacityBytes: 1000, availableBytes: available, policy, images, records, inUse, now });
    expect(plan.bytesToFree).toBe(toFree);
    expect(plan.remove.map((i) => i.id)).toEqual(removed);
  });

  it('takes the next least recently used image when the first is not enough, and never the busy, fresh or pause one', () => {
    const plan = computeImageGC({ capacityBytes: 1000, availableBytes: 0, policy: { ...policy, lowThresholdPercent: 10 }, images, records, inUse, now });
    expect(plan.bytesToFree).toBe(900);
    expect(plan.remove.map((i) => i.id)).toEqual(['sha256:older', 'sha256:old']);
    expect(plan.freeingBytes).toBe(500);
  });

  it('usage is computed as upstream: 100 − available×100/capacity, integer', () => {
    expect(computeImageGC({ capacityBytes: 1000, availableBytes: 151, policy, images, records, inUse, now }).usagePercent).toBe(85);
    expect(computeImageGC({ capacityBytes: 1000, availableBytes: 151, policy, images, records, inUse, now }).bytesToFree).toBe(49);
    expect(computeImageGC({ capacityBytes: 1000, availableBytes: 160, policy, images, records, inUse, now }).usagePercent).toBe(84);
  });

  it('the forced reclaim (DeleteUnusedImages) takes every eligible image whatever the usage', () => {
    // Never the busy one, the one younger than the minimum age, nor the pause image.
    expect(selectImagesToFree({ images, records, inUse, now, minAgeMs: s(120), bytesToFree: Infinity }).remove.map((i) => i.id)).toEqual(['sha256:older', 'sha256:old']);
  });

  it('records: new images are first detected now, used ones last used now, vanished ones forgotten', () => {
    const next = computeImageRecords(records, [img('old', 300), img('new', 7)], new Set(['sha256:old']), now + 1);
    expect([...next.keys()]).toEqual(['sha256:old', 'sha256:new']);
    expect(next.get('sha256:old')).toEqual({ firstDetected: T0, lastUsed: now + 1, sizeBytes: 300 });
    expect(next.get('sha256:new')).toEqual({ firstDetected: now + 1, lastUsed: 0, sizeBytes: 7 });
  });
});

describe('computeOrphanDirs', () => {
  it('removes pod and log directories of pods no source knows and the runtime no longer holds', () => {
    const r = computeOrphanDirs({
      podDirs: ['gone', 'alive', 'gone-but-dead-container', 'lost+found'],
      logDirs: ['ns_web_gone', 'ns_web_alive', 'ns_web_gone-but-dead-container', 'stray'],
      allSourcesReady: true,
      isPodDeleted: (uid) => uid !== 'alive',
      hasRuntimeObjects: (uid) => uid === 'gone-but-dead-container' || uid === 'alive',
    });
    expect(r).toEqual({ podDirs: ['gone'], logDirs: ['ns_web_gone'] });
  });

  it('removes nothing before every source has reported', () => {
    const r = computeOrphanDirs({ podDirs: ['gone'], logDirs: ['ns_web_gone'], allSourcesReady: false, isPodDeleted: () => true, hasRuntimeObjects: () => false });
    expect(r).toEqual({ podDirs: [], logDirs: [] });
  });
});

describe('computeDanglingLogLinks (evictPodLogsDirectories: dead container log symlinks)', () => {
  const ID = (c: string): string => c.repeat(64);
  const link = (name: string, o: Partial<LogLinkEntry> = {}): LogLinkEntry => ({ name, isSymlink: true, targetExists: true, ...o });
  const states: Record<string, Container['state']> = { [ID('a')]: 'CONTAINER_RUNNING', [ID('b')]: 'CONTAINER_EXITED', [ID('c')]: 'CONTAINER_CREATED' };
  const cases: { name: string; entry: LogLinkEntry; removed: boolean }[] = [
    { name: 'container gone, target gone', entry: link(`web_default_app-${ID('f')}.log`, { targetExists: false }), removed: true },
    { name: 'container gone, target still there', entry: link(`web_default_app-${ID('f')}.log`), removed: true },
    { name: 'exited container, target gone', entry: link(`web_default_app-${ID('b')}.log`, { targetExists: false }), removed: true },
    { name: 'exited container, target there (logs --previous)', entry: link(`web_default_app-${ID('b')}.log`), removed: false },
    { name: 'running container, target gone (a rotation in progress)', entry: link(`web_default_app-${ID('a')}.log`, { targetExists: false }), removed: false },
    { name: 'created container, target gone (not started yet)', entry: link(`web_default_app-${ID('c')}.log`, { targetExists: false }), removed: false },
    { name: 'running container, target there', entry: link(`web-7d9f_kube-system_side-car-${ID('a')}.log`), removed: false },
    { name: 'container name with dashes, container gone', entry: link(`web-7d9f_kube-system_side-car-${ID('e')}.log`, { targetExists: false }), removed: true },
    { name: 'not a symlink', entry: link(`web_default_app-${ID('f')}.log`, { isSymlink: false, targetExists: false }), removed: false },
    { name: 'a short id (not a name berth makes)', entry: link(`web_default_app-${'f'.repeat(12)}.log`, { targetExists: false }), removed: false },
    { name: 'upper-case hex', entry: link(`web_default_app-${ID('F')}.log`, { targetExists: false }), removed: false },
    { name: 'two parts only', entry: link(`web_app-${ID('f')}.log`, { targetExists: false }), removed: false },
    { name: 'an extra part', entry: link(`x_web_default_app-${ID('f')}.log`, { targetExists: false }), removed: false },
    { name: 'another suffix', entry: link(`web_default_app-${ID('f')}.log.1`, { targetExists: false }), removed: false },
    { name: 'a name cut to the ext4 limit (id lost)', entry: link(`${'p'.repeat(200)}_default_app-${ID('f').slice(0, 40)}.log`, { targetExists: false }), removed: false },
  ];
  it.each(cases)('$name → removed: $removed', ({ entry, removed }) => {
    expect(computeDanglingLogLinks([entry], (id) => states[id])).toEqual(removed ? [entry.name] : []);
  });

  it('the container id comes from the name', () => {
    expect(containerIdFromLogLink(`web_default_app-${ID('b')}.log`)).toBe(ID('b'));
    expect(containerIdFromLogLink('web_default_app.log')).toBeUndefined();
  });
});
