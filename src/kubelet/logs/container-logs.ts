// One container-log request from start to finish, shared by GET /containerLogs/{ns}/{pod}/{container} and
// `berth logs`: options, pod and container lookup, instance selection (current or previous), then streaming the
// json-file. Every refusal carries upstream's status code and message (pkg/kubelet/server/server.go
// getContainerLogs and kubelet_pods.go GetKubeletContainerLogs).
import { realpath } from 'node:fs/promises';
import type { ContainerStatus as ApiContainerStatus, Pod, PodStatus } from 'kubernetes-types/core/v1';
import type { ContainerStatus, RuntimeService } from '../../cri/index.ts';
import { errorMessage } from '../../lib/index.ts';
import { nameOf, newestFirst } from '../pod/observed.ts';
import { readContainerLog } from './json-file.ts';
import { sinceMs, type PodLogOptions } from './log-options.ts';
import { hasContainerSpec, selectLogContainer } from './select.ts';

/** Finds a pod this node runs by namespace and name (upstream's GetPodByName); undefined when it is not here. */
export type PodLookup = (namespace: string, name: string) => { pod: Pod; status: PodStatus } | undefined;
export type LogRuntime = Pick<RuntimeService, 'containerStatus'>;

export interface ContainerLogRequest {
  namespace: string;
  pod: string;
  container: string;
  options: PodLogOptions;
}

export type OpenedLog =
  | { ok: true; containerId: string; stream: (write: (chunk: Buffer) => Promise<void>, signal: AbortSignal) => Promise<void> }
  | { ok: false; status: 400 | 404; message: string };

/**
 * Resolves the request to one container's log file; refuses with upstream's status and message. `isRunning` tells a
 * follow when to end (default: ask the runtime; the kubelet API passes its PLEG cache so that open follow streams cost
 * no Docker calls).
 */
export async function openContainerLog(
  req: ContainerLogRequest,
  lookup: PodLookup,
  runtime: LogRuntime,
  isRunning?: (containerId: string) => Promise<boolean>,
): Promise<OpenedLog> {
  if (!req.pod) return { ok: false, status: 400, message: '{"message": "Missing podID."}' };
  if (!req.container) return { ok: false, status: 400, message: '{"message": "Missing container name."}' };
  if (!req.namespace) return { ok: false, status: 400, message: '{"message": "Missing podNamespace."}' };
  const found = lookup(req.namespace, req.pod);
  if (!found) return { ok: false, status: 404, message: `pod "${req.pod}" does not exist` };
  if (!hasContainerSpec(found.pod, req.container)) return { ok: false, status: 404, message: `container "${req.container}" not found in pod "${req.pod}"` };
  const sel = selectLogContainer(req.pod, found.status, req.container, req.options.previous);
  if (!sel.ok) return { ok: false, status: 400, message: sel.message };
  let status: ContainerStatus;
  try {
    status = await runtime.containerStatus(sel.containerId);
  } catch (err) {
    return { ok: false, status: 400, message: `failed to get container status "${sel.containerId}": ${errorMessage(err)}` };
  }
  if (!status.logPath) return { ok: false, status: 400, message: `failed to open log file for container "${sel.containerId}": no log path` };
  // Checked before any header goes out, so a missing file is still a clean 400 (kuberuntime/logs ReadLogs' message).
  try {
    await realpath(status.logPath);
  } catch (err) {
    return { ok: false, status: 400, message: `failed to try resolving symlinks in path "${status.logPath}": ${errorMessage(err)}` };
  }
  const id = sel.containerId;
  const o = req.options;
  return {
    ok: true,
    containerId: id,
    stream: (write, signal) =>
      readContainerLog({
        path: status.logPath,
        options: { tailLines: o.tailLines, sinceMs: sinceMs(o, Date.now()), timestamps: o.timestamps, limitBytes: o.limitBytes, follow: o.follow },
        write,
        signal,
        isRunning: isRunning ? () => isRunning(id) : async () => (await runtime.containerStatus(id)).state === 'CONTAINER_RUNNING',
      }),
  };
}

/**
 * Pure: a pod as Docker labels describe it (for `berth logs` while berth is down): the containers named in
 * labels make the spec; per name the newest instance is the current state, and the last state is the newest dead
 * instance other than a running current one — what the kubelet's status shows during a crash-loop back-off (state
 * waiting, lastState = the instance that just died) and after a restart.
 */
export function podFromRuntime(namespace: string, name: string, containers: ContainerStatus[]): { pod: Pod; status: PodStatus } | undefined {
  const mine = containers.filter((c) => c.labels['io.kubernetes.pod.namespace'] === namespace && c.labels['io.kubernetes.pod.name'] === name).sort(newestFirst);
  if (!mine.length) return undefined;
  const byName = new Map<string, ContainerStatus[]>();
  for (const c of mine) byName.set(nameOf(c), [...(byName.get(nameOf(c)) ?? []), c]);
  const state = (c: ContainerStatus): ApiContainerStatus['state'] =>
    c.state === 'CONTAINER_RUNNING'
      ? { running: {} }
      : c.state === 'CONTAINER_EXITED'
        ? { terminated: { exitCode: c.exitCode, containerID: `docker://${c.id}` } }
        : { waiting: {} };
  const lastDead = (all: ContainerStatus[]): ContainerStatus | undefined => all.find((c, i) => c.state === 'CONTAINER_EXITED' && (i > 0 || all[0]!.state !== 'CONTAINER_RUNNING'));
  const statuses: ApiContainerStatus[] = [...byName].map(([n, all]) => ({
    name: n,
    image: all[0]!.image,
    imageID: '',
    ready: false,
    restartCount: 0,
    containerID: `docker://${all[0]!.id}`,
    state: state(all[0]!),
    ...(lastDead(all) ? { lastState: state(lastDead(all)!) } : {}),
  }));
  return {
    pod: { metadata: { namespace, name }, spec: { containers: [...byName.keys()].map((n) => ({ name: n })) } },
    status: { containerStatuses: statuses },
  };
}
