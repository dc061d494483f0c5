// The Docker room: berth's CRI RuntimeService + ImageService over the Docker Engine, compatible with cri-dockerd
// (names, labels, sandbox/container settings, status reasons). It is the only place that imports dockerode and
// the only place that knows Docker's shapes and errors; it also owns berth's locally built pause image and the
// host capability probe that decides how privileged containers and negative oom_score_adj are expressed.
export { DockerRuntime, type DockerRuntimeOptions } from './runtime.ts';
export { DockerStreamingRuntime, type DockerStreamingOptions } from './streaming.ts';
export { PAUSE_IMAGE, buildPauseBinary, buildPauseImageTar } from './pause-image.ts';
export { type HostCaps, readHostCaps, computeHostCaps, FULL_HOST_CAPS } from './host-caps.ts';
export { buildTar, type TarEntry } from './tar.ts';
