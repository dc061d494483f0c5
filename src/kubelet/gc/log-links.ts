// Dangling /var/log/containers links (kuberuntime_gc.go evictPodLogsDirectories, "Remove dead container log
// symlinks"): the legacy `<pod>_<namespace>_<container>-<containerID>.log` links berth makes beside the pod log
// root (src/cri/docker/log-links.ts) outlive their container when it is removed behind berth's back (`docker rm`,
// berth stopped mid-removal) or when its log file goes. Pure: which links to remove, from what the pass read.
import type { ContainerState } from '../../cri/index.ts';

/** One entry of the links folder as the pass read it (before listing the runtime). */
export interface LogLinkEntry {
  name: string;
  isSymlink: boolean;
  /** The link resolves (its whole chain: kubelet log path → Docker's json file). */
  targetExists: boolean;
}

/**
 * Only names berth makes: DNS names without `_`, and the full 64-hex Docker ID (a name cut to the ext4 limit lost its
 * ID and is left alone, as is anything else in the folder).
 */
const BERTH_LINK = /^[^_/]+_[^_/]+_[^_/]+-([0-9a-f]{64})\.log$/;

export function containerIdFromLogLink(name: string): string | undefined {
  return BERTH_LINK.exec(name)?.[1];
}

/**
 * The links to remove: berth's links whose container no longer exists, and whose target is gone while their container
 * is not running (upstream skips a container that is not exited: a log rotation briefly leaves no file). `stateOf`
 * answers from a runtime listing made after the links were read, so a link made meanwhile is never judged against a
 * listing that predates its container. Any node's containers count (the folder is the host's).
 */
export function computeDanglingLogLinks(links: readonly LogLinkEntry[], stateOf: (containerId: string) => ContainerState | undefined): string[] {
  return links
    .filter((l) => {
      const id = l.isSymlink ? containerIdFromLogLink(l.name) : undefined;
      if (!id) return false;
      const state = stateOf(id);
      if (state === undefined) return true;
      return !l.targetExists && state === 'CONTAINER_EXITED';
    })
    .map((l) => l.name);
}
