// Builders for kubelet unit tests: desired Pods and what the runtime holds for them (ObservedPod), with the
// Docker labels/annotations berth writes (pkg/kubelet/kuberuntime/labels.go), so planner and status tests read
// as tables: `seen(sandbox(), running('app', { spec }), exited('app', { exitCode: 1, restartCount: 1 }))`.
import type { Container, Pod, PodSpec } from 'kubernetes-types/core/v1';
import type { ContainerState, ContainerStatus, PodSandboxStatus } from '../../../src/cri/index.ts';
import { A, L } from '../../../src/cri/index.ts';
import { newestFirst, type ObservedPod } from '../../../src/kubelet/pod/observed.ts';
import { containerHash } from '../../../src/kubelet/pod/pod-actions.ts';

export const POD_UID = 'uid-1';
export const SANDBOX_ID = 'sb-0';
/** A fixed wall clock for tests (2024-01-01T00:00:00Z). */
export const T0 = Date.UTC(2024, 0, 1);
export const sec = (s: number): number => s * 1000;
export const min = (m: number): number => m * 60_000;

export function spec(name: string, over: Partial<Container> = {}): Container {
  return { name, image: `registry.example/${name}:1.0`, ...over };
}

export interface PodOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  containers?: (string | Container)[];
  initContainers?: (string | Container)[];
  restartPolicy?: PodSpec['restartPolicy'];
  hostNetwork?: boolean;
  deletionTimestamp?: string;
  spec?: Partial<PodSpec>;
}

export function pod(o: PodOptions = {}): Pod {
  const toSpec = (c: string | Container): Container => (typeof c === 'string' ? spec(c) : c);
  const p: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name ?? 'web',
      namespace: o.namespace ?? 'default',
      uid: o.uid ?? POD_UID,
      ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp } : {}),
    },
    spec: {
      containers: (o.containers ?? ['app']).map(toSpec),
      restartPolicy: o.restartPolicy ?? 'Always',
      ...o.spec,
    },
  };
  if (o.initContainers) p.spec!.initContainers = o.initContainers.map(toSpec);
  if (o.hostNetwork) p.spec!.hostNetwork = true;
  return p;
}

/** The spec of container `name` in `p` (app or init), for hashing. */
export function specOf(p: Pod, name: string): Container {
  const c = [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in pod fixture`);
  return c;
}

export interface SandboxOptions {
  id?: string;
  attempt?: number;
  ready?: boolean;
  ip?: string;
  additionalIps?: string[];
  hostNetwork?: boolean;
  createdAt?: number;
}

export function sandbox(o: SandboxOptions = {}): PodSandboxStatus {
  const attempt = o.attempt ?? 0;
  const hostNetwork = o.hostNetwork ?? false;
  return {
    id: o.id ?? `sb-${attempt}`,
    metadata: { name: 'web', namespace: 'default', uid: POD_UID, attempt },
    state: o.ready === false ? 'SANDBOX_NOTREADY' : 'SANDBOX_READY',
    createdAt: o.createdAt ?? T0 + attempt,
    labels: { [L.podUid]: POD_UID, [L.containerName]: 'POD' },
    annotations: {},
    network: { ip: hostNetwork ? undefined : o.ip ?? (o.ready === false ? undefined : '10.1.0.5'), additionalIps: o.additionalIps ?? [] },
    linux: { namespaces: { network: hostNetwork ? 'NODE' : 'POD' } },
  };
}

export interface ContainerOptions {
  id?: string;
  /** Spec the container was created from: its hash is recorded (unchanged spec → no restart). */
  spec?: Container;
  /** Explicit recorded hash (overrides `spec`). */
  hash?: string;
  restartCount?: number;
  init?: boolean;
  sandboxId?: string;
  createdAt?: number;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  reason?: string;
  message?: string;
  image?: string;
  imageRef?: string;
  /** Back-off entry recorded when this instance was started. */
  backoff?: { durationMs: number; updatedAt: number };
}

function container(name: string, state: ContainerState, o: ContainerOptions): ContainerStatus {
  const restartCount = o.restartCount ?? 0;
  const createdAt = o.createdAt ?? T0 + sec(10) + restartCount * sec(1);
  const annotations: Record<string, string> = {
    [A.restartCount]: String(restartCount),
    [A.containerType]: o.init ? 'init' : 'app',
  };
  const hash = o.hash ?? (o.spec ? containerHash(o.spec) : undefined);
  if (hash !== undefined) annotations[A.containerHash] = hash;
  if (o.backoff) {
    annotations[A.backoffMs] = String(o.backoff.durationMs);
    annotations[A.backoffUpdatedAt] = String(o.backoff.updatedAt);
  }
  const started = state === 'CONTAINER_RUNNING' || state === 'CONTAINER_EXITED';
  return {
    id: o.id ?? `${name}-${restartCount}`,
    podSandboxId: o.sandboxId ?? SANDBOX_ID,
    metadata: { name, attempt: restartCount },
    image: o.image ?? `registry.example/${name}:1.0`,
    imageRef: o.imageRef ?? 'sha256:0123abcd',
    state,
    createdAt,
    labels: { [L.podUid]: POD_UID, [L.containerName]: name },
    annotations,
    startedAt: o.startedAt ?? (started ? createdAt + 100 : 0),
    finishedAt: o.finishedAt ?? (state === 'CONTAINER_EXITED' ? createdAt + sec(1) : 0),
    exitCode: o.exitCode ?? 0,
    reason: o.reason ?? (state === 'CONTAINER_EXITED' ? (o.exitCode ? 'Error' : 'Completed') : ''),
    message: o.message ?? '',
    mounts: [],
    logPath: '',
    pid: state === 'CONTAINER_RUNNING' ? 4242 : 0,
  };
}

export const running = (name: string, o: ContainerOptions = {}): ContainerStatus => container(name, 'CONTAINER_RUNNING', o);
export const exited = (name: string, o: ContainerOptions = {}): ContainerStatus => container(name, 'CONTAINER_EXITED', o);
export const created = (name: string, o: ContainerOptions = {}): ContainerStatus => container(name, 'CONTAINER_CREATED', o);
export const unknown = (name: string, o: ContainerOptions = {}): ContainerStatus => container(name, 'CONTAINER_UNKNOWN', o);

/** ObservedPod from sandboxes and containers in any order (sorted newest first, as the PLEG keeps them). */
export function seen(...items: (PodSandboxStatus | ContainerStatus)[]): ObservedPod {
  const isSandbox = (x: PodSandboxStatus | ContainerStatus): x is PodSandboxStatus => 'network' in x;
  return {
    uid: POD_UID,
    sandboxes: items.filter(isSandbox).sort(newestFirst),
    containers: items.filter((x): x is ContainerStatus => !isSandbox(x)).sort(newestFirst),
  };
}
