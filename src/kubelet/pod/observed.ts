// What the runtime holds for one pod, as the PLEG last saw it, plus small readers over it.
import type { ContainerStatus, PodSandboxStatus } from '../../cri/index.ts';
import { A, L } from '../../cri/index.ts';

export interface ObservedPod {
  uid: string;
  /** Newest first. */
  sandboxes: PodSandboxStatus[];
  /** Every container of the pod across sandboxes, newest first. */
  containers: ContainerStatus[];
}

export const emptyObserved = (uid: string): ObservedPod => ({ uid, sandboxes: [], containers: [] });

export const nameOf = (c: ContainerStatus): string => c.labels[L.containerName] ?? c.metadata.name;
export const restartCountOf = (c: ContainerStatus): number => Number(c.annotations[A.restartCount] ?? c.metadata.attempt) || 0;
export const hashOf = (c: ContainerStatus): string | undefined => c.annotations[A.containerHash];
export const isInit = (c: ContainerStatus): boolean => c.annotations[A.containerType] === 'init';

/** Newest container status with this name (upstream's FindContainerStatusByName on a newest-first list). */
export function findByName(seen: ObservedPod, name: string): ContainerStatus | undefined {
  return seen.containers.find((c) => nameOf(c) === name);
}

/** Sort helper: newest first, by creation time then attempt. */
export function newestFirst<T extends { createdAt: number; metadata: { attempt: number } }>(a: T, b: T): number {
  return b.createdAt - a.createdAt || b.metadata.attempt - a.metadata.attempt;
}
