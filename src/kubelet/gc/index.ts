// Garbage collection (pkg/kubelet/kuberuntime/kuberuntime_gc.go, pkg/kubelet/images/image_gc_manager.go): dead
// containers beyond the per-pod limit (the last dead instance of each container stays for `logs --previous`), dead
// sandboxes, everything dead of pods that are gone and their volume/log directories, dangling /var/log/containers
// links; unused images when imagefs passes the high threshold, least recently used first. Pure selection in
// containers.ts, images.ts, dirs.ts, log-links.ts; the loops in manager.ts.
export { computeContainerGC, DEFAULT_CONTAINER_GC_POLICY, type ContainerGCPolicy, type ContainerGCInput, type ContainerGarbage } from './containers.ts';
export {
  computeImageGC,
  computeImageRecords,
  computeImagesInUse,
  selectImagesToFree,
  DEFAULT_IMAGE_GC_POLICY,
  type ImageGCPolicy,
  type ImageRecord,
  type ImageGCPlan,
} from './images.ts';
export { computeOrphanDirs, podUidFromLogDir } from './dirs.ts';
export { computeDanglingLogLinks, containerIdFromLogLink, type LogLinkEntry } from './log-links.ts';
export {
  GarbageCollector,
  CONTAINER_GC_PERIOD_MS,
  IMAGE_GC_PERIOD_MS,
  type GarbageCollectorOptions,
  type PodStateProvider,
  type ContainerGCSummary,
  type ImageGCSummary,
} from './manager.ts';
