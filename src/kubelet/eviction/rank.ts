// Which pod goes first, and what its eviction says. Ported from pkg/kubelet/eviction/helpers.go:
// rankMemoryPressure (exceeds requests → priority → usage over requests), rankDiskPressureFunc (same for
// ephemeral storage or inodes, over the filesystems the signal covers), rankPIDPressure (priority → process
// count), evictionMessage, and pkg/kubelet/types IsCriticalPod. Pure.
import type { Pod } from 'kubernetes-types/core/v1';
import { podRequests } from '../pod/admission.ts';
import { bytes } from '../pod/quantity.ts';
import type { Observations, PodUsage } from './signals.ts';
import { canonicalQuantity, formatBinaryQuantity, formatDecimalQuantity, SIGNAL_RESOURCE, thresholdQuantity, type Signal, type Threshold } from './thresholds.ts';

/** A pod the kubelet runs, as the eviction manager sees it. */
export interface ActivePod {
  pod: Pod;
  /** From a manifest (file source), not the API server: static pods are never evicted. */
  isStatic: boolean;
}

/** scheduling.SystemCriticalPriority. */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;
const CRITICAL_CLASSES = new Set(['system-node-critical', 'system-cluster-critical']);

/**
 * IsCriticalPod: static and mirror pods, and pods whose priority is at least SystemCriticalPriority. A pod naming
 * system-node-critical / system-cluster-critical without a resolved priority (only possible for static pods,
 * which are critical anyway; the API server always resolves it) counts too.
 */
export function isCriticalPod(p: ActivePod): boolean {
  if (p.isStatic) return true;
  if (p.pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined) return true;
  const prio = p.pod.spec?.priority;
  if (prio !== undefined && prio !== null) return prio >= SYSTEM_CRITICAL_PRIORITY;
  return CRITICAL_CLASSES.has(p.pod.spec?.priorityClassName ?? '');
}

type Stats = (uid: string) => PodUsage | undefined;
type Cmp = (a: ActivePod, b: ActivePod) => number;

/** cmpBool: true before false. */
const cmpBool = (a: boolean, b: boolean): number => (a === b ? 0 : a ? -1 : 1);
const uidOf = (p: ActivePod): string => p.pod.metadata?.uid ?? '';
const priorityOf = (p: ActivePod): number => p.pod.spec?.priority ?? 0;

/** Lower priority is evicted first. */
const byPriority: Cmp = (a, b) => Math.sign(priorityOf(a) - priorityOf(b));

/** Wraps a comparison so that pods without stats go first (upstream: "prioritize evicting the pod for which no stats were found"). */
function withStats(stats: Stats, f: (a: PodUsage, b: PodUsage, pa: ActivePod, pb: ActivePod) => number): Cmp {
  return (pa, pb) => {
    const a = stats(uidOf(pa));
    const b = stats(uidOf(pb));
    if (!a || !b) return cmpBool(!a, !b);
    return f(a, b, pa, pb);
  };
}

function orderedBy(pods: readonly ActivePod[], ...cmps: Cmp[]): ActivePod[] {
  return [...pods].sort((a, b) => {
    for (const c of cmps) {
      const r = c(a, b);
      if (r !== 0) return r;
    }
    return 0;
  });
}

const memoryUsage = (u: PodUsage): number => u.memoryWorkingSetBytes ?? 0;

export function rankMemoryPressure(pods: readonly ActivePod[], stats: Stats): ActivePod[] {
  const exceeds = withStats(stats, (a, b, pa, pb) =>
    cmpBool(memoryUsage(a) > podRequests(pa.pod).memoryBytes, memoryUsage(b) > podRequests(pb.pod).memoryBytes),
  );
  const overRequest = withStats(stats, (a, b, pa, pb) => {
    const da = memoryUsage(a) - podRequests(pa.pod).memoryBytes;
    const db = memoryUsage(b) - podRequests(pb.pod).memoryBytes;
    return Math.sign(db - da);
  });
  return orderedBy(pods, exceeds, byPriority, overRequest);
}

export function rankPIDPressure(pods: readonly ActivePod[], stats: Stats): ActivePod[] {
  const processes = withStats(stats, (a, b) => Math.sign((b.processCount ?? 0) - (a.processCount ?? 0)));
  return orderedBy(pods, byPriority, processes);
}

type FsKind = 'root' | 'logs' | 'localVolumes';

/** localVolumeNames: volumes that use the node's disk. */
function localVolumeNames(pod: Pod): Set<string> {
  const out = new Set<string>();
  for (const v of pod.spec?.volumes ?? []) {
    if (v.hostPath || v.gitRepo || v.configMap || (v.emptyDir && (v.emptyDir.medium ?? '') === '')) out.add(v.name);
  }
  return out;
}

/** podDiskUsage for the given filesystems: bytes or inodes. */
export function podDiskUsage(u: PodUsage, pod: Pod, kinds: readonly FsKind[], unit: 'bytes' | 'inodes'): number {
  let sum = 0;
  for (const c of u.containers) {
    if (kinds.includes('root')) sum += (unit === 'bytes' ? c.rootfsBytes : c.rootfsInodes) ?? 0;
    if (kinds.includes('logs')) sum += (unit === 'bytes' ? c.logsBytes : c.logsInodes) ?? 0;
  }
  if (kinds.includes('localVolumes')) {
    const local = localVolumeNames(pod);
    for (const v of u.volumes) if (local.has(v.name)) sum += (unit === 'bytes' ? v.usedBytes : v.inodesUsed) ?? 0;
  }
  return sum;
}

/** Which filesystems a disk signal's ranking measures (buildSignalToRankFunc). */
export function fsKindsFor(signal: Signal, dedicatedImageFs: boolean): FsKind[] {
  if (!dedicatedImageFs) return ['root', 'logs', 'localVolumes'];
  return signal.startsWith('imagefs.') ? ['root'] : ['logs', 'localVolumes'];
}

export function rankDiskPressure(pods: readonly ActivePod[], stats: Stats, signal: Signal, dedicatedImageFs: boolean): ActivePod[] {
  const kinds = fsKindsFor(signal, dedicatedImageFs);
  const unit = signal.endsWith('inodesFree') ? 'inodes' : 'bytes';
  // Only ephemeral-storage has requests; "inodes" requests are always zero.
  const request = (p: ActivePod): number => (unit === 'bytes' ? podRequests(p.pod).ephemeralStorageBytes : 0);
  const exceeds = withStats(stats, (a, b, pa, pb) =>
    cmpBool(podDiskUsage(a, pa.pod, kinds, unit) > request(pa), podDiskUsage(b, pb.pod, kinds, unit) > request(pb)),
  );
  // disk() subtracts the ephemeral-storage request whatever the unit (as upstream).
  const overRequest = withStats(stats, (a, b, pa, pb) => {
    const da = podDiskUsage(a, pa.pod, kinds, unit) - podRequests(pa.pod).ephemeralStorageBytes;
    const db = podDiskUsage(b, pb.pod, kinds, unit) - podRequests(pb.pod).ephemeralStorageBytes;
    return Math.sign(db - da);
  });
  return orderedBy(pods, exceeds, byPriority, overRequest);
}

/** The ranking for a signal. */
export function rankForSignal(signal: Signal, pods: readonly ActivePod[], stats: Stats, dedicatedImageFs: boolean): ActivePod[] {
  if (signal === 'memory.available') return rankMemoryPressure(pods, stats);
  if (signal === 'pid.available') return rankPIDPressure(pods, stats);
  return rankDiskPressure(pods, stats, signal, dedicatedImageFs);
}

const quantityText = (resource: string, n: number): string =>
  resource === 'memory' || resource === 'ephemeral-storage' ? formatBinaryQuantity(n) : formatDecimalQuantity(n);

/**
 * evictionMessage: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92Mi. Container c
 * was using 120Mi, request is 0, has larger consumption of memory. " and the event annotations.
 */
export function evictionMessage(
  resource: string,
  pod: Pod,
  usage: PodUsage | undefined,
  thresholds: readonly Threshold[],
  observations: Observations,
): { message: string; annotations: Record<string, string> } {
  let message = `The node was low on resource: ${resource}. `;
  for (const t of thresholds) {
    if (SIGNAL_RESOURCE[t.signal] !== resource) continue;
    const o = observations[t.signal];
    if (!o) continue;
    const q = t.value.quantityText ?? formatBinaryQuantity(thresholdQuantity(t.value, o.capacity));
    message += `Threshold quantity: ${q}, available: ${quantityText(resource, o.available)}. `;
    break;
  }
  const annotations: Record<string, string> = {};
  if (!usage) return { message, annotations };
  const specs = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const offending: string[] = [];
  const offendingUsage: string[] = [];
  for (const cs of usage.containers) {
    const spec = specs.find((c) => c.name === cs.name);
    if (!spec) continue;
    const reqText = spec.resources?.requests?.[resource];
    const req = reqText === undefined ? 0 : bytes(reqText);
    let used: number | undefined;
    if (resource === 'memory') used = cs.memoryWorkingSetBytes;
    else if (resource === 'ephemeral-storage' && cs.rootfsBytes !== undefined && cs.logsBytes !== undefined) used = cs.rootfsBytes + cs.logsBytes;
    if (used === undefined || used <= req) continue;
    const usedText = formatBinaryQuantity(used);
    message += `Container ${spec.name} was using ${usedText}, request is ${reqText === undefined ? '0' : canonicalQuantity(String(reqText))}, has larger consumption of ${resource}. `;
    offending.push(spec.name);
    offendingUsage.push(usedText);
  }
  annotations.offending_containers = offending.join(',');
  annotations.offending_containers_usage = offendingUsage.join(',');
  annotations.starved_resource = resource;
  return { message, annotations };
}
