// The Node object and its status, computed without effects: the initial Node berth registers, the adoption patch for a
// Node that already exists, the status (addresses, capacity/allocatable, nodeInfo, images, conditions), whether it
// changed, and the strategic-merge patch that posts it. Ported from pkg/kubelet/kubelet_node_status.go (initialNode,
// tryRegisterWithAPIServer, updateDefaultLabels, nodeStatusHasChanged) and pkg/kubelet/nodestatus/setters.go.
import type { ContainerImage, Node, NodeCondition, NodeStatus, Taint } from 'kubernetes-types/core/v1';
import pkg from '../../../package.json' with { type: 'json' };
import type { Image } from '../../cri/index.ts';
import { parseQuantity } from '../pod/quantity.ts';

/**
 * The Kubernetes release whose API berth is written against: its pod/node types are kubernetes-types 1.30, and it
 * degrades to older servers (the e2e rig runs 1.20) through discovery.
 *
 * Why `v1.30.0-berth.<version>` as kubeletVersion: upstream reports the kubelet's own release (version.Get()), which
 * tooling reads as "which API features this node agent understands" (kubectl's VERSION column, skew checks in
 * upgrade tools). berth's own 0.x version would parse as Kubernetes v0.x and mislead them; a pinned older release
 * (v1.20.x) would lie about the fields berth handles. The semver pre-release suffix `-berth.<version>` sorts *below*
 * v1.30.0, so a component that gates behaviour on "kubelet >= 1.30.0" stays conservative with berth, which implements a
 * subset of the kubelet; and it names the agent and its build. kube-proxy reports the same (as upstream: same binary).
 */
export const KUBERNETES_API_VERSION = '1.30.0';
export const KUBELET_VERSION = `v${KUBERNETES_API_VERSION}-berth.${pkg.version}`;

export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_OS = 'kubernetes.io/os';
export const LABEL_ARCH = 'kubernetes.io/arch';
export const LABEL_OS_BETA = 'beta.kubernetes.io/os';
export const LABEL_ARCH_BETA = 'beta.kubernetes.io/arch';
/** Labels the kubelet owns and reconciles on an existing Node (updateDefaultLabels). */
export const DEFAULT_LABEL_KEYS = [LABEL_HOSTNAME, LABEL_OS, LABEL_ARCH, LABEL_OS_BETA, LABEL_ARCH_BETA] as const;
export const ANNOTATION_CONTROLLER_MANAGED_ATTACH_DETACH = 'volumes.kubernetes.io/controller-managed-attach-detach';

/** Upstream's nodeStatusMaxImages default. */
export const MAX_IMAGES_IN_NODE_STATUS = 50;
/** Upstream's MaxNamesPerImageInNodeStatus. */
export const MAX_NAMES_PER_IMAGE = 5;

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };
/** GOARCH of this process (amd64, arm64, ...). */
export const NODE_ARCH = GO_ARCH[process.arch] ?? process.arch;

// ------------------------------------------------------------------ inputs

/** Machine facts read once at start (machine.ts). */
export interface MachineInfo {
  /** Logical CPUs online. */
  numCores: number;
  memoryCapacityBytes: number;
  /** /etc/machine-id. */
  machineID: string;
  /** /sys/class/dmi/id/product_uuid, '' when not readable. */
  systemUUID: string;
  /** /proc/sys/kernel/random/boot_id. */
  bootID: string;
  /** `uname -r`. */
  kernelVersion: string;
  /** PRETTY_NAME of /etc/os-release. */
  osImage: string;
  /** Huge page sizes the kernel supports with the pages reserved of each (`/sys/kernel/mm/hugepages`). */
  hugePages: { sizeBytes: number; count: number }[];
}

export interface FsStats {
  capacityBytes: number;
  availableBytes: number;
  inodes?: number | undefined;
  inodesFree?: number | undefined;
}

/** Readings taken at every status update. A missing field is unknown and never signals pressure. */
export interface NodeStats {
  /** MemAvailable. */
  memoryAvailableBytes?: number | undefined;
  /** The filesystem of the kubelet root dir (ephemeral-storage). */
  nodeFs?: FsStats | undefined;
  /** The filesystem holding images (Docker's root dir). */
  imageFs?: FsStats | undefined;
  pids?: { max: number; running: number } | undefined;
}

/** Hard eviction thresholds (kubelet --eviction-hard). Percentages are of the capacity. */
export interface EvictionThresholds {
  memoryAvailableBytes: number;
  nodeFsAvailablePercent: number;
  /** A nodefs.available threshold given as a quantity (wins over the percentage for allocatable). */
  nodeFsAvailableBytes?: number | undefined;
  nodeFsInodesFreePercent: number;
  imageFsAvailablePercent: number;
  /** Upstream has no default pid.available threshold: undefined = PIDPressure is never reported. */
  pidAvailablePercent?: number | undefined;
}

/** Upstream's DefaultEvictionHard on Linux: memory.available<100Mi, nodefs.available<10%, nodefs.inodesFree<5%, imagefs.available<15%. */
export const DEFAULT_EVICTION_HARD: Readonly<EvictionThresholds> = Object.freeze({
  memoryAvailableBytes: 100 * 2 ** 20,
  nodeFsAvailablePercent: 10,
  nodeFsInodesFreePercent: 5,
  imageFsAvailablePercent: 15,
  pidAvailablePercent: undefined,
});

/** --kube-reserved + --system-reserved (none by default). */
export interface Reservations {
  cpuMillis?: number | undefined;
  memoryBytes?: number | undefined;
  ephemeralStorageBytes?: number | undefined;
}

export interface NodePressure {
  memory: boolean;
  disk: boolean;
  pid: boolean;
}

export interface NodeStatusInput {
  machine: MachineInfo;
  /** Capacity of the root dir's filesystem; undefined when it could not be read. */
  nodeFsCapacityBytes: number | undefined;
  hostIP: string;
  hostname: string;
  maxPods: number;
  kubeletPort: number;
  /** `docker://20.10.24`. */
  containerRuntimeVersion: string;
  images: readonly Image[];
  pressure: NodePressure;
  /** Why the node is not ready (empty = ready), see computeReadinessErrors. */
  readinessErrors: readonly string[];
  reserved?: Reservations | undefined;
  evictionHard?: EvictionThresholds | undefined;
}

// ------------------------------------------------------------------ quantities

const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** A byte count as apimachinery's canonical BinarySI quantity: `8038468Ki`, `2Mi`, `0`, `32847216396`. */
export function formatBinaryQuantity(bytes: number): string {
  let n = Math.max(0, Math.trunc(bytes));
  // Values below 1024 are written in DecimalSI (resource.Quantity's CanonicalizeBytes).
  if (n < 1024) return String(n);
  let exp = 0;
  while (exp < BINARY_SUFFIXES.length - 1 && n % 1024 === 0) {
    n /= 1024;
    exp++;
  }
  return `${n}${BINARY_SUFFIXES[exp]}`;
}

/** Millicores as a canonical DecimalSI quantity: `2`, `1500m`. */
export function formatCpuQuantity(millis: number): string {
  const m = Math.max(0, Math.trunc(millis));
  return m % 1000 === 0 ? String(m / 1000) : `${m}m`;
}

/** `2Mi` → `hugepages-2Mi` (v1helper.HugePageResourceName). */
export function hugePageResourceName(sizeBytes: number): string {
  return `hugepages-${formatBinaryQuantity(sizeBytes)}`;
}

function isHugePageResource(name: string): boolean {
  return name.startsWith('hugepages-');
}

// ------------------------------------------------------------------ pressure and readiness

/** Which hard thresholds the readings cross now (the eviction manager's signal observations). */
export function computeThresholdsCrossed(stats: NodeStats, t: EvictionThresholds = DEFAULT_EVICTION_HARD): NodePressure {
  const below = (avail: number | undefined, cap: number | undefined, pct: number | undefined): boolean =>
    avail !== undefined && cap !== undefined && cap > 0 && pct !== undefined && pct > 0 && avail < (cap * pct) / 100;
  const memory = stats.memoryAvailableBytes !== undefined && stats.memoryAvailableBytes < t.memoryAvailableBytes;
  const disk =
    below(stats.nodeFs?.availableBytes, stats.nodeFs?.capacityBytes, t.nodeFsAvailablePercent) ||
    below(stats.nodeFs?.inodesFree, stats.nodeFs?.inodes, t.nodeFsInodesFreePercent) ||
    below(stats.imageFs?.availableBytes, stats.imageFs?.capacityBytes, t.imageFsAvailablePercent);
  const pid = stats.pids !== undefined && below(stats.pids.max - stats.pids.running, stats.pids.max, t.pidAvailablePercent);
  return { memory, disk, pid };
}

/** When each pressure was last observed (epoch ms). */
export interface PressureObservations {
  memory?: number | undefined;
  disk?: number | undefined;
  pid?: number | undefined;
}

/**
 * A pressure condition stays True for `transitionMs` after the threshold was last crossed, so the condition does not
 * oscillate (eviction manager's nodeConditionsObservedSince, --eviction-pressure-transition-period, default 5 min).
 */
export function computePressure(
  crossed: NodePressure,
  last: PressureObservations,
  now: number,
  transitionMs: number,
): { pressure: NodePressure; observations: PressureObservations } {
  const observations: PressureObservations = {
    memory: crossed.memory ? now : last.memory,
    disk: crossed.disk ? now : last.disk,
    pid: crossed.pid ? now : last.pid,
  };
  const recent = (t: number | undefined): boolean => t !== undefined && now - t < transitionMs;
  return {
    pressure: { memory: recent(observations.memory), disk: recent(observations.disk), pid: recent(observations.pid) },
    observations,
  };
}

export interface ReadinessInput {
  now: number;
  /** Last successful runtime call (version), undefined if none yet. */
  runtimeLastOkAt: number | undefined;
  /** Whether a runtime check was attempted (and failed) before any success. */
  runtimeChecked: boolean;
  /** Upstream's maxWaitForContainerRuntime (30 s): a runtime silent for longer is down. */
  runtimeThresholdMs: number;
  pleg?: { ok: boolean; message?: string | undefined } | undefined;
  /** The runtime's own not-ready error from its last status check (runtimeState.runtimeError), see computeRuntimeNotReady. */
  runtimeError?: string | undefined;
  /** Further reasons (network plugin not ready...), each a message. */
  extra?: readonly string[] | undefined;
}

/** The reasons the node is not ready, as runtimeState.runtimeErrors() + networkErrors() (pkg/kubelet/runtime.go). */
export function computeReadinessErrors(i: ReadinessInput): string[] {
  const errs: string[] = [];
  if (i.runtimeLastOkAt === undefined) {
    errs.push(i.runtimeChecked ? 'container runtime is down' : 'container runtime status check may not have completed yet');
  } else if (i.now - i.runtimeLastOkAt >= i.runtimeThresholdMs) {
    errs.push('container runtime is down');
  }
  if (i.pleg && !i.pleg.ok) errs.push(`PLEG is not healthy: ${i.pleg.message ?? 'pleg has yet to be successful'}`);
  if (i.runtimeError) errs.push(i.runtimeError);
  for (const e of i.extra ?? []) if (e) errs.push(e);
  return errs;
}

/**
 * The runtime error a failed version call leaves until the next check succeeds: dockershim's Status() reports
 * RuntimeReady=false (reason DockerDaemonNotReady, docker_service.go) and updateRuntimeUp turns it into this
 * (kubelet.go), so the node is NotReady from the next status update on, not only once the 30 s threshold passed.
 */
export function computeRuntimeNotReady(versionError: string): string {
  const why = versionError.replace(/^docker version: /, '');
  return `Container runtime not ready: RuntimeReady=false reason:DockerDaemonNotReady message:docker: failed to get docker version: ${why}`;
}

/** An error list as the Ready message shows it: utilerrors.NewAggregate's Error() (one as is; more deduplicated in brackets). */
export function formatAggregate(errs: readonly string[]): string {
  const unique = [...new Set(errs)];
  return unique.length === 1 ? unique[0]! : `[${unique.join(', ')}]`;
}

/** Go's time.Duration.String for milliseconds: `3m0s`, `1m30.5s`, `250ms`, `2h0m0s`. */
export function formatGoDuration(ms: number): string {
  const neg = ms < 0;
  let rest = Math.abs(Math.round(ms));
  if (rest === 0) return '0s';
  if (rest < 1000) return `${neg ? '-' : ''}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = (rest / 1000).toFixed(3).replace(/\.?0+$/, '');
  let out = `${s}s`;
  if (h > 0 || m > 0) out = `${m}m${out}`;
  if (h > 0) out = `${h}h${out}`;
  return `${neg ? '-' : ''}${out}`;
}

/**
 * The PLEG health the Kubelet should hand to the node manager (generic.go Healthy()): for a relist last started at
 * `lastRelistStart` (0 = never) and the threshold (3 min).
 */
export function computePlegHealth(lastRelistStart: number, thresholdMs: number, now: number): { ok: boolean; message?: string } {
  if (lastRelistStart === 0) return { ok: false, message: 'pleg has yet to be successful' };
  const elapsed = now - lastRelistStart;
  if (elapsed > thresholdMs) {
    return { ok: false, message: `pleg was last seen active ${formatGoDuration(elapsed)} ago; threshold is ${formatGoDuration(thresholdMs)}` };
  }
  return { ok: true };
}

// ------------------------------------------------------------------ status

/** metav1.Time on the wire: RFC 3339, whole seconds. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const PRESSURE_CONDITIONS = [
  {
    type: 'MemoryPressure',
    key: 'memory',
    on: ['KubeletHasInsufficientMemory', 'kubelet has insufficient memory available'],
    off: ['KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
  },
  {
    type: 'DiskPressure',
    key: 'disk',
    on: ['KubeletHasDiskPressure', 'kubelet has disk pressure'],
    off: ['KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
  },
  {
    type: 'PIDPressure',
    key: 'pid',
    on: ['KubeletHasInsufficientPID', 'kubelet has insufficient PID available'],
    off: ['KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
  },
] as const;

/** The condition types the kubelet owns (others, e.g. NetworkUnavailable, belong to other agents). */
export const KUBELET_CONDITION_TYPES = ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'] as const;

function condition(type: string, status: 'True' | 'False', reason: string, message: string, prev: NodeCondition | undefined, nowText: string): NodeCondition {
  // The transition time changes only when the status does (setters.go).
  const lastTransitionTime = prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : nowText;
  return { type, status, reason, message, lastHeartbeatTime: nowText, lastTransitionTime };
}

/** Node images, biggest first, at most 50, each with up to 5 names (digests first, as setters.go Images). */
export function computeNodeImages(images: readonly Image[], max = MAX_IMAGES_IN_NODE_STATUS): ContainerImage[] {
  const named = images
    .map((i) => ({ i, names: [...i.repoDigests, ...i.repoTags].filter((n) => n && !n.startsWith('<none>')) }))
    .filter((x) => x.names.length > 0);
  named.sort((a, b) => b.i.sizeBytes - a.i.sizeBytes || (a.i.id < b.i.id ? -1 : a.i.id > b.i.id ? 1 : 0));
  return named.slice(0, Math.max(0, max)).map((x) => ({ names: x.names.slice(0, MAX_NAMES_PER_IMAGE), sizeBytes: x.i.sizeBytes }));
}

/** Capacity and allocatable (setters.go MachineInfo; cm GetNodeAllocatableReservation with hardEvictionReservation). */
export function computeResources(input: Pick<NodeStatusInput, 'machine' | 'nodeFsCapacityBytes' | 'maxPods' | 'reserved' | 'evictionHard'>): {
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
} {
  const { machine } = input;
  const reserved = input.reserved ?? {};
  const eviction = input.evictionHard ?? DEFAULT_EVICTION_HARD;
  const capacity: Record<string, string> = {
    cpu: formatCpuQuantity(machine.numCores * 1000),
    memory: formatBinaryQuantity(machine.memoryCapacityBytes),
    pods: String(input.maxPods),
  };
  const allocatable: Record<string, string> = {
    cpu: formatCpuQuantity(machine.numCores * 1000 - (reserved.cpuMillis ?? 0)),
    pods: String(input.maxPods),
  };
  let hugePagesBytes = 0;
  for (const hp of machine.hugePages) {
    const total = hp.sizeBytes * hp.count;
    hugePagesBytes += total;
    capacity[hugePageResourceName(hp.sizeBytes)] = formatBinaryQuantity(total);
    allocatable[hugePageResourceName(hp.sizeBytes)] = formatBinaryQuantity(total);
  }
  // Memory held back: reservations, the hard eviction threshold, and pages set aside as huge pages.
  allocatable.memory = formatBinaryQuantity(
    Math.max(0, machine.memoryCapacityBytes - (reserved.memoryBytes ?? 0) - eviction.memoryAvailableBytes - hugePagesBytes),
  );
  if (input.nodeFsCapacityBytes !== undefined) {
    const cap = input.nodeFsCapacityBytes;
    capacity['ephemeral-storage'] = formatBinaryQuantity(cap);
    // GetThresholdQuantity multiplies by the percentage as a float32 (0.1 → 0.10000000149...).
    const evictionBytes = eviction.nodeFsAvailableBytes ?? Math.trunc(cap * Math.fround(eviction.nodeFsAvailablePercent / 100));
    allocatable['ephemeral-storage'] = formatBinaryQuantity(Math.max(0, cap - (reserved.ephemeralStorageBytes ?? 0) - evictionBytes));
  }
  return { capacity, allocatable };
}

/**
 * The kubelet-owned part of the Node status at `now`, carrying transition times over from `previous` (the status the
 * API server holds). Conditions come in upstream's order, Ready last; only the four kubelet conditions are returned.
 */
export function computeNodeStatus(input: NodeStatusInput, previous: NodeStatus | undefined, now: number): NodeStatus {
  const nowText = formatTime(now);
  const prevConditions = new Map((previous?.conditions ?? []).map((c) => [c.type, c]));
  const conditions: NodeCondition[] = [];
  for (const p of PRESSURE_CONDITIONS) {
    const on = input.pressure[p.key];
    const [reason, message] = on ? p.on : p.off;
    conditions.push(condition(p.type, on ? 'True' : 'False', reason, message, prevConditions.get(p.type), nowText));
  }
  const { capacity, allocatable } = computeResources(input);
  const errors = [...input.readinessErrors];
  const missing = ['cpu', 'memory', 'pods', 'ephemeral-storage'].filter((r) => capacity[r] === undefined);
  if (missing.length > 0) errors.push(`Missing node capacity for resources: ${missing.join(', ')}`);
  conditions.push(
    errors.length === 0
      ? condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status', prevConditions.get('Ready'), nowText)
      : condition('Ready', 'False', 'KubeletNotReady', formatAggregate(errors), prevConditions.get('Ready'), nowText),
  );
  const { machine } = input;
  return {
    conditions,
    addresses: [
      { type: 'InternalIP', address: input.hostIP },
      { type: 'Hostname', address: input.hostname },
    ],
    capacity,
    allocatable,
    daemonEndpoints: { kubeletEndpoint: { Port: input.kubeletPort } },
    nodeInfo: {
      machineID: machine.machineID,
      systemUUID: machine.systemUUID,
      bootID: machine.bootID,
      kernelVersion: machine.kernelVersion,
      osImage: machine.osImage,
      containerRuntimeVersion: input.containerRuntimeVersion,
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: 'linux',
      architecture: NODE_ARCH,
    },
    images: computeNodeImages(input.images),
  };
}

// ------------------------------------------------------------------ change detection and the patch

function sameQuantity(a: string | undefined, b: string | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  try {
    return parseQuantity(a) === parseQuantity(b);
  } catch {
    return false;
  }
}

/** Stale huge page sizes in `prev` that `next` no longer reports (removed by the patch). */
function staleResources(prev: Record<string, string> | undefined, next: Record<string, string> | undefined): string[] {
  return Object.keys(prev ?? {}).filter((k) => isHugePageResource(k) && !(k in (next ?? {})));
}

function sameResources(prev: Record<string, string> | undefined, next: Record<string, string> | undefined): boolean {
  for (const [k, v] of Object.entries(next ?? {})) if (!sameQuantity(prev?.[k], v)) return false;
  return staleResources(prev, next).length === 0;
}

function conditionKey(c: NodeCondition | undefined): string {
  if (!c) return '';
  return JSON.stringify([c.status, c.reason ?? '', c.message ?? '', c.lastTransitionTime ?? '']);
}

/**
 * Whether `next` (from computeNodeStatus) differs from `prev` (the server's) in anything the kubelet owns, ignoring
 * heartbeat times (nodeStatusHasChanged). Quantities compare by value: the server canonicalizes them.
 */
export function isNodeStatusChanged(prev: NodeStatus | undefined, next: NodeStatus): boolean {
  if (!prev) return true;
  const prevConditions = new Map((prev.conditions ?? []).map((c) => [c.type, c]));
  for (const c of next.conditions ?? []) if (conditionKey(prevConditions.get(c.type)) !== conditionKey(c)) return true;
  const addr = (s: NodeStatus): string => JSON.stringify((s.addresses ?? []).map((a) => [a.type, a.address]));
  if (addr(prev) !== addr(next)) return true;
  if (!sameResources(prev.capacity, next.capacity) || !sameResources(prev.allocatable, next.allocatable)) return true;
  if ((prev.daemonEndpoints?.kubeletEndpoint?.Port ?? 0) !== (next.daemonEndpoints?.kubeletEndpoint?.Port ?? 0)) return true;
  const info = (s: NodeStatus): string => {
    const i = s.nodeInfo;
    if (!i) return '';
    return JSON.stringify([
      i.machineID, i.systemUUID, i.bootID, i.kernelVersion, i.osImage, i.containerRuntimeVersion, i.kubeletVersion,
      i.kubeProxyVersion, i.operatingSystem, i.architecture,
    ]);
  };
  if (info(prev) !== info(next)) return true;
  const images = (s: NodeStatus): string => JSON.stringify((s.images ?? []).map((i) => [i.names ?? [], i.sizeBytes ?? 0]));
  return images(prev) !== images(next);
}

/**
 * The strategic-merge patch for PATCH nodes/<name>/status that makes the server's status match `next` in the fields the
 * kubelet owns and leaves the rest alone: conditions merge by type (NetworkUnavailable and other agents' conditions
 * stay), capacity/allocatable merge by key (extended resources advertised by others stay; huge page sizes the kernel
 * no longer reports are removed with null), addresses are replaced as a whole (`$patch: replace`: the kubelet owns
 * them without a cloud provider), images and nodeInfo are replaced. PatchNodeStatus computes a two-way merge patch to
 * the same effect.
 */
export function buildNodeStatusPatch(prev: NodeStatus | undefined, next: NodeStatus): { status: Record<string, unknown> } {
  const withRemovals = (p: Record<string, string> | undefined, n: Record<string, string> | undefined): Record<string, string | null> => {
    const out: Record<string, string | null> = { ...(n ?? {}) };
    for (const k of staleResources(p, n)) out[k] = null;
    return out;
  };
  return {
    status: {
      conditions: next.conditions ?? [],
      addresses: [{ $patch: 'replace' }, ...(next.addresses ?? [])],
      capacity: withRemovals(prev?.capacity, next.capacity),
      allocatable: withRemovals(prev?.allocatable, next.allocatable),
      daemonEndpoints: next.daemonEndpoints,
      nodeInfo: next.nodeInfo,
      images: next.images ?? [],
    },
  };
}

// ------------------------------------------------------------------ registration

export interface InitialNodeInput {
  nodeName: string;
  /** Value of kubernetes.io/hostname (the hostname or --hostname-override). */
  hostname: string;
  /** --node-labels: added at registration only, as upstream. */
  nodeLabels?: Readonly<Record<string, string>> | undefined;
  /** --register-with-taints: set at registration only (NodeRestriction forbids a node changing its taints later). */
  taints?: readonly Taint[] | undefined;
  status: NodeStatus;
}

/** The Node berth creates (initialNode). */
export function buildInitialNode(i: InitialNodeInput): Node {
  const labels: Record<string, string> = {
    [LABEL_HOSTNAME]: i.hostname,
    [LABEL_OS]: 'linux',
    [LABEL_ARCH]: NODE_ARCH,
    [LABEL_OS_BETA]: 'linux',
    [LABEL_ARCH_BETA]: NODE_ARCH,
  };
  for (const [k, v] of Object.entries(i.nodeLabels ?? {})) labels[k] = v;
  const node: Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: i.nodeName,
      labels,
      annotations: { [ANNOTATION_CONTROLLER_MANAGED_ATTACH_DETACH]: 'true' },
    },
    spec: {},
    status: i.status,
  };
  if (i.taints && i.taints.length > 0) node.spec = { taints: i.taints.map((t) => ({ ...t })) };
  return node;
}

/**
 * A JSON merge patch that adopts an existing Node (tryRegisterWithAPIServer): the default labels take berth's values,
 * the attach/detach annotation is set, everything else (other labels, taints, annotations) stays. Undefined when the
 * Node already agrees.
 */
export function computeAdoptionPatch(desired: Node, existing: Node): { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } } | undefined {
  const labels: Record<string, string> = {};
  for (const k of DEFAULT_LABEL_KEYS) {
    const want = desired.metadata?.labels?.[k];
    if (want === undefined || want === '') continue;
    if (existing.metadata?.labels?.[k] !== want) labels[k] = want;
  }
  const annotations: Record<string, string> = {};
  const cmad = desired.metadata?.annotations?.[ANNOTATION_CONTROLLER_MANAGED_ATTACH_DETACH];
  if (cmad !== undefined && existing.metadata?.annotations?.[ANNOTATION_CONTROLLER_MANAGED_ATTACH_DETACH] !== cmad) {
    annotations[ANNOTATION_CONTROLLER_MANAGED_ATTACH_DETACH] = cmad;
  }
  const hasLabels = Object.keys(labels).length > 0;
  const hasAnnotations = Object.keys(annotations).length > 0;
  if (!hasLabels && !hasAnnotations) return undefined;
  return { metadata: { ...(hasLabels ? { labels } : {}), ...(hasAnnotations ? { annotations } : {}) } };
}
