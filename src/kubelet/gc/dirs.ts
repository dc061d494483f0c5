// Directories of pods that are gone: <root>/pods/<uid> (volumes, termination messages) and the pod log
// directories <pod-logs-dir>/<namespace>_<name>_<uid>. Follows kuberuntime_gc.go evictPodLogsDirectories and
// kubelet_volumes.go cleanupOrphanedPodDirs: only once every source has reported, only for pods no source knows,
// and only when the runtime holds nothing of the pod any more (a dead container's log stays readable). Pure.

export interface OrphanDirsInput {
  /** Entry names under <root>/pods (pod UIDs). */
  podDirs: readonly string[];
  /** Entry names under the pod logs dir (`ns_name_uid`). */
  logDirs: readonly string[];
  allSourcesReady: boolean;
  isPodDeleted: (uid: string) => boolean;
  /** Any container or sandbox of this pod UID exists in the runtime (any node, any state). */
  hasRuntimeObjects: (uid: string) => boolean;
}

/** parsePodUIDFromLogsDirectory: the last `_`-separated part. */
export function podUidFromLogDir(name: string): string {
  const parts = name.split('_');
  return parts[parts.length - 1] ?? '';
}

const UID = /^[0-9a-zA-Z][0-9a-zA-Z-]*$/;

export function computeOrphanDirs(i: OrphanDirsInput): { podDirs: string[]; logDirs: string[] } {
  if (!i.allSourcesReady) return { podDirs: [], logDirs: [] };
  const orphan = (uid: string): boolean => UID.test(uid) && i.isPodDeleted(uid) && !i.hasRuntimeObjects(uid);
  return {
    podDirs: i.podDirs.filter(orphan),
    logDirs: i.logDirs.filter((n) => n.split('_').length >= 3 && orphan(podUidFromLogDir(n))),
  };
}
