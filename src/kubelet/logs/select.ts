// Which container instance a log request reads, from the pod's status: a port of upstream's
// validateContainerLogStatus (pkg/kubelet/kubelet_pods.go), messages included. `previous` reads the last
// terminated instance (lastState.terminated.containerID), which exists only while the kubelet keeps that dead
// container (GC keeps the newest dead instance per container until the pod goes).
import type { ContainerStatus, Pod, PodStatus } from 'kubernetes-types/core/v1';

export type LogSelection = { ok: true; containerId: string } | { ok: false; message: string };

const stripScheme = (id: string): string => id.replace(/^[a-z-]+:\/\//, '');

/** True when the pod's spec has a container (app, init or ephemeral) with this name (GetContainerSpec). */
export function hasContainerSpec(pod: Pod, name: string): boolean {
  const s = pod.spec;
  return [...(s?.containers ?? []), ...(s?.initContainers ?? []), ...(s?.ephemeralContainers ?? [])].some((c) => c.name === name);
}

/** Pure: the runtime container id to read, or upstream's error message (served as 400). */
export function selectLogContainer(podName: string, status: PodStatus, containerName: string, previous: boolean): LogSelection {
  const find = (list: ContainerStatus[] | undefined): ContainerStatus | undefined => list?.find((c) => c.name === containerName);
  const cs = find(status.containerStatuses) ?? find(status.initContainerStatuses) ?? find(status.ephemeralContainerStatuses);
  const fail = (message: string): LogSelection => ({ ok: false, message });
  if (!cs) return fail(`container "${containerName}" in pod "${podName}" is not available`);
  const last = cs.lastState?.terminated;
  const { waiting, running, terminated } = cs.state ?? {};
  if (previous) {
    if (!last?.containerID) return fail(`previous terminated container "${containerName}" in pod "${podName}" not found`);
    return { ok: true, containerId: stripScheme(last.containerID) };
  }
  if (running) return cs.containerID ? { ok: true, containerId: stripScheme(cs.containerID) } : fail(`container "${containerName}" in pod "${podName}" is waiting to start - no logs yet`);
  if (terminated) {
    const id = terminated.containerID || last?.containerID;
    return id ? { ok: true, containerId: stripScheme(id) } : fail(`container "${containerName}" in pod "${podName}" is terminated`);
  }
  if (last) return last.containerID ? { ok: true, containerId: stripScheme(last.containerID) } : fail(`container "${containerName}" in pod "${podName}" is terminated`);
  if (waiting) {
    if (waiting.reason === 'ErrImagePull') return fail(`container "${containerName}" in pod "${podName}" is waiting to start: image can't be pulled`);
    if (waiting.reason === 'ImagePullBackOff') return fail(`container "${containerName}" in pod "${podName}" is waiting to start: trying and failing to pull image`);
    return fail(`container "${containerName}" in pod "${podName}" is waiting to start: ${waiting.reason ?? ''}`);
  }
  return fail(`container "${containerName}" in pod "${podName}" is waiting to start - no logs yet`);
}
