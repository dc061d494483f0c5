// The kubelet Summary API (GET /stats/summary) as stats.k8s.io/v1alpha1 defines it
// (staging/src/k8s.io/kubelet/pkg/apis/stats/v1alpha1/types.go, 1.20): a pure mapping of a snapshot. Field
// names and omitempty behaviour follow the Go types: optional pointers are left out when unmeasured, times are
// metav1.Time (RFC 3339, second precision). Pods list only running containers (no sandbox), like the CRI
// stats provider; `?only_cpu_and_memory=true` trims to what metrics-server reads (upstream's GetCPUAndMemoryStats).
import type { ContainerSample, CpuSample, FsSample, MemorySample, NetworkSample, PodSample, StatsSnapshot, SystemContainerSample } from './types.ts';

type Json = Record<string, unknown>;

export const metaTime = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** Adds `key: value` only when the value is defined (Go's omitempty on pointers). */
function put(o: Json, key: string, v: unknown): Json {
  if (v !== undefined) o[key] = v;
  return o;
}

const uint = (n: number | undefined): number | undefined => (n === undefined || !Number.isFinite(n) ? undefined : Math.max(0, Math.round(n)));

export function cpuStats(c: CpuSample | undefined): Json | undefined {
  if (!c) return undefined;
  const o: Json = { time: metaTime(c.timeMs) };
  put(o, 'usageNanoCores', uint(c.usageNanoCores));
  put(o, 'usageCoreNanoSeconds', uint(c.usageCoreNanoSeconds));
  return o;
}

export function memoryStats(m: MemorySample | undefined): Json | undefined {
  if (!m) return undefined;
  const o: Json = { time: metaTime(m.timeMs) };
  put(o, 'availableBytes', uint(m.availableBytes));
  put(o, 'usageBytes', uint(m.usageBytes));
  put(o, 'workingSetBytes', uint(m.workingSetBytes));
  put(o, 'rssBytes', uint(m.rssBytes));
  put(o, 'pageFaults', uint(m.pageFaults));
  put(o, 'majorPageFaults', uint(m.majorPageFaults));
  return o;
}

export function fsStats(f: FsSample | undefined): Json | undefined {
  if (!f) return undefined;
  const o: Json = { time: metaTime(f.timeMs) };
  put(o, 'availableBytes', uint(f.availableBytes));
  put(o, 'capacityBytes', uint(f.capacityBytes));
  put(o, 'usedBytes', uint(f.usedBytes));
  put(o, 'inodesFree', uint(f.inodesFree));
  put(o, 'inodes', uint(f.inodes));
  put(o, 'inodesUsed', uint(f.inodesUsed));
  return o;
}

function ifaceStats(i: { name: string; rxBytes: number; rxErrors: number; txBytes: number; txErrors: number }): Json {
  return { name: i.name, rxBytes: uint(i.rxBytes), rxErrors: uint(i.rxErrors), txBytes: uint(i.txBytes), txErrors: uint(i.txErrors) };
}

export function networkStats(n: NetworkSample | undefined): Json | undefined {
  if (!n) return undefined;
  const o: Json = { time: metaTime(n.timeMs) };
  const def = n.interfaces.find((i) => i.name === n.defaultInterface);
  if (def) Object.assign(o, ifaceStats(def));
  if (n.interfaces.length > 0) o.interfaces = n.interfaces.map(ifaceStats);
  return o;
}

function containerStats(c: ContainerSample | SystemContainerSample, cpuAndMemoryOnly: boolean): Json {
  const o: Json = { name: c.name, startTime: metaTime(c.startTimeMs) };
  put(o, 'cpu', cpuStats(c.cpu));
  put(o, 'memory', memoryStats(c.memory));
  if (!cpuAndMemoryOnly && 'rootfs' in c) {
    put(o, 'rootfs', fsStats(c.rootfs));
    put(o, 'logs', fsStats(c.logs));
  }
  return o;
}

function podStats(p: PodSample, cpuAndMemoryOnly: boolean): Json {
  const o: Json = {
    podRef: { name: p.pod.name, namespace: p.pod.namespace, uid: p.pod.uid },
    startTime: metaTime(p.startTimeMs),
    containers: p.containers.map((c) => containerStats(c, cpuAndMemoryOnly)),
  };
  put(o, 'cpu', cpuStats(p.cpu));
  put(o, 'memory', memoryStats(p.memory));
  if (cpuAndMemoryOnly) return o;
  put(o, 'network', networkStats(p.network));
  if (p.volumes.length > 0) o.volume = p.volumes.map((v) => ({ ...fsStats(v), name: v.name }));
  put(o, 'ephemeral-storage', fsStats(p.ephemeralStorage));
  if (p.pids) o.process_stats = { process_count: p.pids.current };
  return o;
}

export interface SummaryOptions {
  nodeName: string;
  /** `only_cpu_and_memory=true`. */
  cpuAndMemoryOnly?: boolean;
}

export function buildSummary(snap: StatsSnapshot, opts: SummaryOptions): Json {
  const n = snap.node;
  const node: Json = {
    nodeName: opts.nodeName,
    systemContainers: n.systemContainers.map((s) => containerStats(s, true)),
    startTime: metaTime(n.startTimeMs),
  };
  put(node, 'cpu', cpuStats(n.cpu));
  put(node, 'memory', memoryStats(n.memory));
  if (!opts.cpuAndMemoryOnly) {
    put(node, 'network', networkStats(n.network));
    put(node, 'fs', fsStats(n.fs));
    if (n.imageFs) node.runtime = { imageFs: fsStats(n.imageFs) };
    if (n.rlimit) node.rlimit = { time: metaTime(n.rlimit.timeMs), maxpid: n.rlimit.maxPid, curproc: n.rlimit.curProc };
  }
  return { node, pods: snap.pods.map((p) => podStats(p, opts.cpuAndMemoryOnly === true)) };
}
