// The cri room owns the container runtime boundary: CRI-shaped types, the RuntimeService / ImageService
// contracts, and cri-dockerd-compatible naming and labels. `src/cri/docker/` is the only place that talks
// to the Docker Engine; everything above it sees CRI shapes and berth's error family.
export type * from './types.ts';
export type { RuntimeService, ImageService, ExecResult } from './runtime.ts';
export type { StreamingRuntime, StreamIO, TerminalSize } from './runtime.ts';
export * from './labels.ts';
