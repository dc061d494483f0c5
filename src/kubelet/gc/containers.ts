// Which dead containers and sandboxes to remove, as a pure function of what the runtime holds and which pods
// still exist. Follows pkg/kubelet/kuberuntime/kuberuntime_gc.go (evictableContainers, evictContainers,
// enforceMaxContainersPerEvictUnit, evictSandboxes, removeOldestN/removeOldestNSandboxes) with upstream's
// defaults: MinAge 0, MaxPerPodContainer 1 (the last dead instance of each container is kept, so
// `kubectl logs --previous` works), MaxContainers -1 (no node-wide limit). Running containers and ready
// sandboxes are never touched: stopping pods is the pod workers' job.
import type { Container, PodSandbox } from '../../cri/index.ts';
import { L } from '../../cri/index.ts';

export interface ContainerGCPolicy {
  /** Minimum age of a dead container before it may be removed (MinAge). */
  minAgeMs: number;
  /** Dead containers kept per (pod, container name); < 0 = no limit (MaxPerPodContainer). */
  maxPerPodContainer: number;
  /** Dead containers kept on the node; < 0 = no limit (MaxContainers). */
  maxContainers: number;
}

/** Upstream's defaults (--minimum-container-ttl-duration 0, --maximum-dead-containers-per-container 1, --maximum-dead-containers -1). */
export const DEFAULT_CONTAINER_GC_POLICY: Readonly<ContainerGCPolicy> = Object.freeze({ minAgeMs: 0, maxPerPodContainer: 1, maxContainers: -1 });

export interface ContainerGCInput {
  /** Every container of this node, any state. */
  containers: readonly Container[];
  /** Every sandbox of this node, any state. */
  sandboxes: readonly PodSandbox[];
  now: number;
  policy: ContainerGCPolicy;
  /** Every pod source has reported: only then may "pod is gone" be believed. */
  allSourcesReady: boolean;
  /** The pod is not known to any source any more (IsPodDeleted). */
  isPodDeleted: (uid: string) => boolean;
  /** The pod is terminal (Succeeded/Failed) (IsPodTerminated). */
  isPodTerminated: (uid: string) => boolean;
  /** Also remove every dead container of terminal pods (the eviction manager's DeleteAllUnusedContainers). */
  evictTerminatedPods: boolean;
}

export interface ContainerGarbage {
  containers: { id: string; podUid: string; name: string }[];
  sandboxes: { id: string; podUid: string }[];
}

const podUidOf = (c: Container): string => c.labels[L.podUid] ?? '';
const nameOf = (c: Container): string => c.labels[L.containerName] ?? c.metadata.name;
const newestFirst = (a: { createdAt: number }, b: { createdAt: number }): number => b.createdAt - a.createdAt;

export function computeContainerGC(i: ContainerGCInput): ContainerGarbage {
  const out: ContainerGarbage = { containers: [], sandboxes: [] };
  const remove = (cs: readonly Container[]): void => {
    for (const c of cs) out.containers.push({ id: c.id, podUid: podUidOf(c), name: nameOf(c) });
  };

  // evictableContainers: not running, older than MinAge, grouped per (pod UID, container name), newest first.
  const units = new Map<string, { uid: string; list: Container[] }>();
  for (const c of i.containers) {
    if (c.state === 'CONTAINER_RUNNING') continue;
    if (i.now - c.createdAt < i.policy.minAgeMs) continue;
    const key = `${podUidOf(c)}\x00${nameOf(c)}`;
    let u = units.get(key);
    if (!u) units.set(key, (u = { uid: podUidOf(c), list: [] }));
    u.list.push(c);
  }
  for (const u of units.values()) u.list.sort(newestFirst);

  if (i.allSourcesReady) {
    for (const [key, u] of units) {
      if (i.isPodDeleted(u.uid) || (i.evictTerminatedPods && i.isPodTerminated(u.uid))) {
        remove(u.list);
        units.delete(key);
      }
    }
  }
  // berth: only exited containers count toward the limit. A container just created (not started yet) by a pod
  // worker is not "dead"; counting it would remove the previous instance `logs --previous` reads. Created/unknown
  // leftovers of live pods are the pod workers' to remove (computePodActions).
  for (const [key, u] of units) {
    u.list = u.list.filter((c) => c.state === 'CONTAINER_EXITED');
    if (u.list.length === 0) units.delete(key);
  }
  const enforcePerUnit = (keep: number): void => {
    for (const u of units.values()) {
      if (u.list.length <= keep) continue;
      remove(u.list.slice(keep));
      u.list = u.list.slice(0, keep);
    }
  };
  if (i.policy.maxPerPodContainer >= 0) enforcePerUnit(i.policy.maxPerPodContainer);
  const count = (): number => [...units.values()].reduce((n, u) => n + u.list.length, 0);
  if (i.policy.maxContainers >= 0 && count() > i.policy.maxContainers) {
    // Leave an equal number per unit (at least one), then the oldest go first.
    enforcePerUnit(Math.max(1, Math.floor(i.policy.maxContainers / Math.max(1, units.size))));
    const n = count();
    if (n > i.policy.maxContainers) {
      const flat = [...units.values()].flatMap((u) => u.list).sort(newestFirst);
      remove(flat.slice(flat.length - (n - i.policy.maxContainers)));
    }
  }

  // evictSandboxes: a sandbox is active while ready or while any container (dead or alive) still points at it.
  const referenced = new Set(i.containers.map((c) => c.podSandboxId));
  const byPod = new Map<string, PodSandbox[]>();
  for (const s of i.sandboxes) {
    const uid = s.metadata.uid;
    if (!byPod.has(uid)) byPod.set(uid, []);
    byPod.get(uid)!.push(s);
  }
  for (const [uid, list] of byPod) {
    list.sort(newestFirst);
    const gone = i.allSourcesReady && (i.isPodDeleted(uid) || (i.evictTerminatedPods && i.isPodTerminated(uid)));
    // Keep the newest one of a pod that still exists (removeOldestNSandboxes(len-1)).
    for (const s of gone ? list : list.slice(1)) {
      if (s.state === 'SANDBOX_READY') continue;
      // Containers removed in this same pass still count (upstream lists once); the next pass takes the sandbox.
      if (referenced.has(s.id)) continue;
      out.sandboxes.push({ id: s.id, podUid: uid });
    }
  }
  return out;
}
