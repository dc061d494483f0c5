// Wiring of the eviction manager and the garbage collector for `berth run`: thresholds and GC policy from the
// config, stats from the cadvisor provider (or the node's machine reader until it runs), pod state from the
// Kubelet, node-level reclaim from the collector, and Events on the Node.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { StatsProvider } from '../cadvisor/index.ts';
import type { ImageService, RuntimeService } from '../cri/index.ts';
import {
  EvictionManager,
  FILE_SOURCE,
  GarbageCollector,
  evictionStatsFromNodeStats,
  evictionStatsFromSnapshot,
  hostMachineReader,
  parseThresholdConfig,
  type EvictionStats,
  type Kubelet,
  type NodePressure,
  type Threshold,
} from '../kubelet/index.ts';
import type { Logger } from '../lib/index.ts';
import type { BerthConfig } from './config.ts';

/** Docker's data root: imagefs. */
const DOCKER_ROOT = '/var/lib/docker';

export interface RunningEvictionGC {
  thresholds: Threshold[];
  eviction: EvictionManager;
  gc: GarbageCollector;
  /** Node conditions for the node manager. */
  pressure(): NodePressure;
  /** Hooks the node status update called when the conditions change. */
  onConditionsChanged(cb: () => void): void;
  /** Uses the stats provider from now on (it starts after the kubelet). */
  useStats(p: StatsProvider): void;
  start(): void;
  stop(): void;
}

/** Device of `dir` or of its nearest existing ancestor. */
async function deviceOf(dir: string): Promise<number | undefined> {
  let p = path.resolve(dir);
  for (;;) {
    try {
      return (await stat(p)).dev;
    } catch {
      const parent = path.dirname(p);
      if (parent === p) return undefined;
      p = parent;
    }
  }
}

export function createEvictionGC(o: {
  cfg: BerthConfig;
  log: Logger;
  runtime: RuntimeService & ImageService;
  kubelet: Kubelet;
  sandboxImage: string;
  memoryCapacityBytes: number;
}): RunningEvictionGC {
  const { cfg, kubelet } = o;
  const thresholds = parseThresholdConfig({
    hard: cfg.evictionHard,
    soft: cfg.evictionSoft,
    softGracePeriod: cfg.evictionSoftGracePeriod,
    minimumReclaim: cfg.evictionMinimumReclaim,
  });
  const nodeRef = { kind: 'Node', apiVersion: 'v1', name: cfg.nodeName, uid: cfg.nodeName };
  const machine = hostMachineReader({ rootDir: cfg.rootDir, imageFsDir: DOCKER_ROOT });
  let provider: StatsProvider | undefined;
  let changed: (() => void) | undefined;

  const gc = new GarbageCollector({
    runtime: o.runtime,
    images: o.runtime,
    nodeName: cfg.nodeName,
    rootDir: cfg.rootDir,
    podLogsDir: cfg.podLogsDir,
    sandboxImage: o.sandboxImage,
    pods: {
      allSourcesReady: () => kubelet.sourcesReady(),
      isPodDeleted: (uid) => kubelet.desiredPod(uid) === undefined,
      isPodTerminated: (uid) => ['Succeeded', 'Failed'].includes(kubelet.pod(uid)?.status.phase ?? ''),
    },
    imageFs: async () => {
      const fs = (await machine.nodeStats()).imageFs;
      return fs ? { capacityBytes: fs.capacityBytes, availableBytes: fs.availableBytes } : undefined;
    },
    imagePolicy: { highThresholdPercent: cfg.imageGCHighThresholdPercent, lowThresholdPercent: cfg.imageGCLowThresholdPercent, minAgeMs: cfg.imageMinimumGCAgeMs },
    recorder: kubelet.recorder,
    nodeRef,
    log: o.log.child({ component: 'gc' }),
  });

  const stats = async (): Promise<EvictionStats> => {
    if (provider) {
      try {
        const snap = provider.latest() ?? (await provider.refresh());
        return evictionStatsFromSnapshot(snap, provider.machine().memoryCapacityBytes);
      } catch (err: unknown) {
        // Node-level signals still protect the node while the stats provider cannot answer.
        o.log.warn({ err }, 'stats provider failed; eviction uses node-level readings only');
      }
    }
    return evictionStatsFromNodeStats(await machine.nodeStats(), o.memoryCapacityBytes, Date.now());
  };

  const eviction = new EvictionManager({
    thresholds,
    pressureTransitionPeriodMs: cfg.evictionPressureTransitionPeriodMs,
    maxPodGracePeriodSeconds: cfg.evictionMaxPodGracePeriodSeconds,
    stats,
    dedicatedImageFs: async () => {
      const [a, b] = await Promise.all([deviceOf(cfg.rootDir), deviceOf(DOCKER_ROOT)]);
      return a !== undefined && b !== undefined && a !== b;
    },
    activePods: () => kubelet.activePods().map((d) => ({ pod: d.pod, isStatic: d.source === FILE_SOURCE })),
    evictPod: async (pod, e) => kubelet.evictPod(pod.metadata?.uid ?? '', e),
    podCleanedUp: (uid) => kubelet.podCleanedUp(uid),
    reclaim: { containers: () => gc.deleteAllUnusedContainers(), images: () => gc.deleteUnusedImages() },
    recorder: kubelet.recorder,
    nodeRef,
    onConditionsChanged: () => changed?.(),
    log: o.log.child({ component: 'eviction' }),
  });

  return {
    thresholds,
    eviction,
    gc,
    pressure: () => eviction.pressure(),
    onConditionsChanged: (cb) => {
      changed = cb;
    },
    useStats: (p) => {
      provider = p;
    },
    start: () => {
      gc.start();
      eviction.start();
    },
    stop: () => {
      eviction.stop();
      gc.stop();
    },
  };
}
