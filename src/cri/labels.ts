// Docker names and labels, compatible with cri-dockerd / dockershim so `docker ps`, crictl-like tools and
// a later switch of agent see the same state. Annotations are stored as labels prefixed `annotation.`
// (dockershim's convention). Everything berth needs to rebuild its state after a restart lives here.

export const KUBERNETES_PREFIX = 'k8s';
export const SANDBOX_CONTAINER_NAME = 'POD';
export const ANNOTATION_PREFIX = 'annotation.';

export const L = {
  podName: 'io.kubernetes.pod.name',
  podNamespace: 'io.kubernetes.pod.namespace',
  podUid: 'io.kubernetes.pod.uid',
  containerName: 'io.kubernetes.container.name',
  dockerType: 'io.kubernetes.docker.type',
  sandboxId: 'io.kubernetes.sandbox.id',
  containerLogPath: 'io.kubernetes.container.logpath',
  /** Set on every object berth creates; used by `berth ps` and cleanup. */
  managedBy: 'io.berth.managed-by',
  /** Node name of the berth that created the object: a berth only ever adopts or removes its own. */
  node: 'io.berth.node',
} as const;

export const DOCKER_TYPE_SANDBOX = 'podsandbox';
export const DOCKER_TYPE_CONTAINER = 'container';

/** Annotation keys the kubelet writes (pkg/kubelet/kuberuntime/labels.go), stored as `annotation.<key>`. */
export const A = {
  containerHash: 'io.kubernetes.container.hash',
  restartCount: 'io.kubernetes.container.restartCount',
  terminationMessagePath: 'io.kubernetes.container.terminationMessagePath',
  terminationMessagePolicy: 'io.kubernetes.container.terminationMessagePolicy',
  terminationGracePeriod: 'io.kubernetes.pod.terminationGracePeriod',
  podDeletionGracePeriod: 'io.kubernetes.pod.deletionGracePeriod',
  containerPorts: 'io.kubernetes.container.ports',
  preStopHandler: 'io.kubernetes.container.preStopHandler',
  /** berth: the crash-loop back-off set when this container was started (ms) and the time it was set. */
  backoffMs: 'io.berth.backoff.durationMs',
  backoffUpdatedAt: 'io.berth.backoff.updatedAt',
  /** berth: init container vs app container. */
  containerType: 'io.berth.container.type',
  /** berth: where the pod came from (file / api) and its config hash. */
  podSource: 'kubernetes.io/config.source',
  podConfigHash: 'kubernetes.io/config.hash',
} as const;

/** k8s_POD_<pod>_<ns>_<uid>_<attempt> (cri-dockerd naming). */
export function sandboxName(m: { name: string; namespace: string; uid: string; attempt: number }): string {
  return [KUBERNETES_PREFIX, SANDBOX_CONTAINER_NAME, m.name, m.namespace, m.uid, String(m.attempt)].join('_');
}

/** k8s_<container>_<pod>_<ns>_<uid>_<attempt> (cri-dockerd naming). */
export function containerName(
  c: { name: string; attempt: number },
  pod: { name: string; namespace: string; uid: string },
): string {
  return [KUBERNETES_PREFIX, c.name, pod.name, pod.namespace, pod.uid, String(c.attempt)].join('_');
}

/** Parses a cri-dockerd name; returns undefined for containers that are not Kubernetes'. */
export function parseName(
  dockerName: string,
): { containerName: string; podName: string; namespace: string; uid: string; attempt: number } | undefined {
  const parts = dockerName.replace(/^\//, '').split('_');
  if (parts.length < 6 || parts[0] !== KUBERNETES_PREFIX) return undefined;
  const attempt = Number(parts[5]);
  if (!Number.isInteger(attempt)) return undefined;
  return { containerName: parts[1]!, podName: parts[2]!, namespace: parts[3]!, uid: parts[4]!, attempt };
}

export function toDockerLabels(labels: Record<string, string>, annotations: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...labels };
  for (const [k, v] of Object.entries(annotations)) out[ANNOTATION_PREFIX + k] = v;
  return out;
}

export function fromDockerLabels(all: Record<string, string> | undefined): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(all ?? {})) {
    if (k.startsWith(ANNOTATION_PREFIX)) annotations[k.slice(ANNOTATION_PREFIX.length)] = v;
    else labels[k] = v;
  }
  return { labels, annotations };
}
