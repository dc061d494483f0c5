// Prometheus endpoints through prom-client registries (exposition text, escaping and TYPE/HELP come from the
// library, never written by hand):
// - /metrics/cadvisor: cAdvisor's metric names, types and HELP (vendor/github.com/google/cadvisor/metrics/
//   prometheus.go and prometheus_machine.go at the version kubelet 1.20 vendors), labelled as the kubelet's
//   containerPrometheusLabelsFunc does: container, id (cgroup path), image, name (Docker name), namespace, pod.
// - /metrics/resource: pkg/kubelet/metrics/collectors/resource_metrics.go (what metrics-server reads).
// - /metrics/probes: prober_probe_total (pkg/kubelet/prober/prober_manager.go).
// - /metrics: berth itself (process_*, nodejs_*, housekeeping CPU, PLEG relist and pod sync durations; the
//   service proxy's figures stay on /metrics/proxy, src/proxy/metrics.ts).
// Values are taken from the provider's latest snapshot at scrape time; a scrape never reads the kernel.
// prom-client has no per-sample timestamps, so samples carry none (upstream's resource metrics do).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsProvider } from './provider.ts';
import type { CgroupSample, FsSample, NetworkSample, StatsSnapshot } from './types.ts';

type Labels = Record<string, string>;
type Emit = (labels: Labels, value: number) => void;

/** One metric family whose samples are rebuilt from the latest snapshot on every scrape. */
function family(
  reg: Registry,
  type: 'gauge' | 'counter',
  name: string,
  help: string,
  labelNames: readonly string[],
  fill: (emit: Emit) => void,
): void {
  if (type === 'gauge') {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        this.reset();
        fill((l, v) => this.set(l, v));
      },
    });
  } else {
    new Counter({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        this.reset();
        fill((l, v) => this.inc(l, Math.max(0, v)));
      },
    });
  }
}

const BASE = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

interface Entry {
  labels: Labels;
  s: CgroupSample;
  startTimeMs?: number;
  network?: NetworkSample;
  rootfs?: FsSample;
}

/** Every cgroup cAdvisor would list: the root, the system containers, pod cgroups, sandboxes and containers. */
export function cadvisorEntries(snap: StatsSnapshot): Entry[] {
  const blank = { container: '', image: '', name: '', namespace: '', pod: '' };
  const out: Entry[] = [{ labels: { ...blank, id: '/' }, s: snap.node, startTimeMs: snap.node.startTimeMs, network: snap.node.network }];
  for (const sc of snap.node.systemContainers) out.push({ labels: { ...blank, id: sc.cgroupPath }, s: sc, startTimeMs: sc.startTimeMs });
  for (const p of snap.pods) {
    if (p.cgroupPath) out.push({ labels: { ...blank, id: p.cgroupPath, namespace: p.pod.namespace, pod: p.pod.name }, s: p, startTimeMs: p.startTimeMs });
    for (const c of [...(p.sandbox ? [p.sandbox] : []), ...p.containers])
      out.push({
        labels: { container: c.name, id: c.cgroupPath, image: c.image, name: c.dockerName, namespace: c.pod.namespace, pod: c.pod.name },
        s: c,
        startTimeMs: c.startTimeMs,
        network: c === p.sandbox ? p.network : undefined,
        rootfs: c.rootfs,
      });
  }
  return out;
}

export interface CadvisorRegistryOptions {
  /** The block device holding Docker's data root (the `device` label of container_fs_*). */
  imageFsDevice?: string;
}

export function createCadvisorRegistry(provider: StatsProvider, opts: CadvisorRegistryOptions = {}): Registry {
  const reg = new Registry();
  let entries: Entry[] = [];
  let snapTime = 0;
  // Entries are built once per scrape: the first family's collect() refreshes them.
  const each = (f: (e: Entry, emit: Emit) => void) => (emit: Emit) => {
    for (const e of entries) f(e, emit);
  };
  new Gauge({
    name: 'container_scrape_error',
    help: '1 if there was an error while getting container metrics, 0 otherwise',
    registers: [reg],
    collect() {
      const snap = provider.latest();
      entries = snap ? cadvisorEntries(snap) : [];
      snapTime = snap?.timeMs ?? 0;
      this.set(snap ? 0 : 1);
    },
  });
  const m = provider.machine();
  const machineLabels = { boot_id: m.bootId, machine_id: m.machineId, system_uuid: m.systemUuid };
  family(reg, 'gauge', 'machine_cpu_cores', 'Number of logical CPU cores.', Object.keys(machineLabels), (emit) => emit(machineLabels, m.numCores));
  family(reg, 'gauge', 'machine_memory_bytes', 'Amount of memory installed on the machine.', Object.keys(machineLabels), (emit) => emit(machineLabels, m.memoryCapacityBytes));

  const g = (name: string, help: string, f: (e: Entry, emit: Emit) => void, extra: string[] = []): void => family(reg, 'gauge', name, help, [...BASE, ...extra], each(f));
  const c = (name: string, help: string, f: (e: Entry, emit: Emit) => void, extra: string[] = []): void => family(reg, 'counter', name, help, [...BASE, ...extra], each(f));

  g('container_last_seen', 'Last time a container was seen by the exporter', (e, emit) => emit(e.labels, Math.floor(snapTime / 1000)));
  g('container_start_time_seconds', 'Start time of the container since unix epoch in seconds.', (e, emit) => e.startTimeMs && emit(e.labels, e.startTimeMs / 1000));
  c('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed in seconds.', (e, emit) => e.s.cpu && emit({ ...e.labels, cpu: 'total' }, e.s.cpu.usageCoreNanoSeconds / 1e9), ['cpu']);
  c('container_cpu_user_seconds_total', 'Cumulative user cpu time consumed in seconds.', (e, emit) => e.s.cpu && emit(e.labels, e.s.cpu.userNanoSeconds / 1e9));
  c('container_cpu_system_seconds_total', 'Cumulative system cpu time consumed in seconds.', (e, emit) => e.s.cpu && emit(e.labels, e.s.cpu.systemNanoSeconds / 1e9));
  // cAdvisor emits CFS figures only for containers with a quota; a cgroup that never had a period has none.
  const cfs = (e: Entry): boolean => (e.s.cpu?.throttling?.periods ?? 0) > 0;
  c('container_cpu_cfs_periods_total', 'Number of elapsed enforcement period intervals.', (e, emit) => cfs(e) && emit(e.labels, e.s.cpu!.throttling!.periods));
  c('container_cpu_cfs_throttled_periods_total', 'Number of throttled period intervals.', (e, emit) => cfs(e) && emit(e.labels, e.s.cpu!.throttling!.throttledPeriods));
  c('container_cpu_cfs_throttled_seconds_total', 'Total time duration the container has been throttled.', (e, emit) => cfs(e) && emit(e.labels, e.s.cpu!.throttling!.throttledTimeNanoSeconds / 1e9));
  g('container_memory_cache', 'Number of bytes of page cache memory.', (e, emit) => e.s.memory && emit(e.labels, e.s.memory.cacheBytes));
  g('container_memory_rss', 'Size of RSS in bytes.', (e, emit) => e.s.memory && emit(e.labels, e.s.memory.rssBytes));
  g('container_memory_mapped_file', 'Size of memory mapped files in bytes.', (e, emit) => e.s.memory?.mappedFileBytes !== undefined && emit(e.labels, e.s.memory.mappedFileBytes));
  g('container_memory_swap', 'Container swap usage in bytes.', (e, emit) => e.s.memory?.swapBytes !== undefined && emit(e.labels, e.s.memory.swapBytes));
  c('container_memory_failcnt', 'Number of memory usage hits limits', (e, emit) => e.s.memory?.failcnt !== undefined && emit(e.labels, e.s.memory.failcnt));
  g('container_memory_usage_bytes', 'Current memory usage in bytes, including all memory regardless of when it was accessed', (e, emit) => e.s.memory && emit(e.labels, e.s.memory.usageBytes));
  g('container_memory_max_usage_bytes', 'Maximum memory usage recorded in bytes', (e, emit) => e.s.memory?.maxUsageBytes !== undefined && emit(e.labels, e.s.memory.maxUsageBytes));
  g('container_memory_working_set_bytes', 'Current working set in bytes.', (e, emit) => e.s.memory && emit(e.labels, e.s.memory.workingSetBytes));
  c(
    'container_memory_failures_total',
    'Cumulative count of memory allocation failures.',
    (e, emit) => {
      if (!e.s.memory) return;
      emit({ ...e.labels, failure_type: 'pgfault', scope: 'hierarchy' }, e.s.memory.pageFaults);
      emit({ ...e.labels, failure_type: 'pgmajfault', scope: 'hierarchy' }, e.s.memory.majorPageFaults);
    },
    ['failure_type', 'scope'],
  );
  g('container_spec_memory_limit_bytes', 'Memory limit for the container.', (e, emit) => e.s.memory && e.labels.id !== '/' && emit(e.labels, e.s.memory.limitBytes ?? 0));
  g('container_threads', 'Number of threads running inside the container', (e, emit) => e.s.pids && emit(e.labels, e.s.pids.current));
  g('container_threads_max', 'Maximum number of threads allowed inside the container, infinity if value is zero', (e, emit) => e.s.pids && emit(e.labels, e.s.pids.limit ?? 0));
  const net = (name: string, help: string, pick: (i: NetworkSample['interfaces'][number]) => number): void =>
    c(name, help, (e, emit) => e.network?.interfaces.forEach((i) => emit({ ...e.labels, interface: i.name }, pick(i))), ['interface']);
  net('container_network_receive_bytes_total', 'Cumulative count of bytes received', (i) => i.rxBytes);
  net('container_network_receive_packets_total', 'Cumulative count of packets received', (i) => i.rxPackets);
  net('container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving', (i) => i.rxDropped);
  net('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving', (i) => i.rxErrors);
  net('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted', (i) => i.txBytes);
  net('container_network_transmit_packets_total', 'Cumulative count of packets transmitted', (i) => i.txPackets);
  net('container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting', (i) => i.txDropped);
  net('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting', (i) => i.txErrors);
  const device = opts.imageFsDevice ?? '';
  const fs = (name: string, help: string, pick: (f: FsSample) => number | undefined): void =>
    g(
      name,
      help,
      (e, emit) => {
        const v = e.rootfs ? pick(e.rootfs) : undefined;
        if (v !== undefined) emit({ ...e.labels, device }, v);
      },
      ['device'],
    );
  fs('container_fs_inodes_free', 'Number of available Inodes', (f) => f.inodesFree);
  fs('container_fs_inodes_total', 'Number of Inodes', (f) => f.inodes);
  fs('container_fs_limit_bytes', 'Number of bytes that can be consumed by the container on this filesystem.', (f) => f.capacityBytes);
  fs('container_fs_usage_bytes', 'Number of bytes that are consumed by the container on this filesystem.', (f) => f.usedBytes);
  return reg;
}

/** [ALPHA] prefix as k8s.io/component-base/metrics adds it to HELP. */
const alpha = (help: string): string => `[ALPHA] ${help}`;

export function createResourceRegistry(provider: StatsProvider): Registry {
  const reg = new Registry();
  let snap: StatsSnapshot | undefined;
  // Registered first: prom-client collects families in registration order, and this one loads the snapshot.
  new Gauge({
    name: 'scrape_error',
    help: alpha('1 if there was an error while getting container metrics, 0 otherwise'),
    registers: [reg],
    collect() {
      snap = provider.latest();
      this.set(snap ? 0 : 1);
    },
  });
  const containers = (f: (c: StatsSnapshot['pods'][number]['containers'][number], p: StatsSnapshot['pods'][number], emit: Emit) => void) => (emit: Emit) => {
    for (const p of snap?.pods ?? []) for (const c of p.containers) f(c, p, emit);
  };
  const pods = (f: (p: StatsSnapshot['pods'][number], emit: Emit) => void) => (emit: Emit) => {
    for (const p of snap?.pods ?? []) f(p, emit);
  };
  family(reg, 'counter', 'container_cpu_usage_seconds_total', alpha('Cumulative cpu time consumed by the container in core-seconds'), ['container', 'pod', 'namespace'], containers((c, p, emit) => c.cpu && emit({ container: c.name, pod: p.pod.name, namespace: p.pod.namespace }, c.cpu.usageCoreNanoSeconds / 1e9)));
  family(reg, 'gauge', 'container_memory_working_set_bytes', alpha('Current working set of the container in bytes'), ['container', 'pod', 'namespace'], containers((c, p, emit) => c.memory && emit({ container: c.name, pod: p.pod.name, namespace: p.pod.namespace }, c.memory.workingSetBytes)));
  family(reg, 'counter', 'node_cpu_usage_seconds_total', alpha('Cumulative cpu time consumed by the node in core-seconds'), [], (emit) => snap?.node.cpu && emit({}, snap.node.cpu.usageCoreNanoSeconds / 1e9));
  family(reg, 'gauge', 'node_memory_working_set_bytes', alpha('Current working set of the node in bytes'), [], (emit) => snap?.node.memory && emit({}, snap.node.memory.workingSetBytes));
  family(reg, 'counter', 'pod_cpu_usage_seconds_total', alpha('Cumulative cpu time consumed by the pod in core-seconds'), ['pod', 'namespace'], pods((p, emit) => p.cpu && emit({ pod: p.pod.name, namespace: p.pod.namespace }, p.cpu.usageCoreNanoSeconds / 1e9)));
  family(reg, 'gauge', 'pod_memory_working_set_bytes', alpha('Current working set of the pod in bytes'), ['pod', 'namespace'], pods((p, emit) => p.memory && emit({ pod: p.pod.name, namespace: p.pod.namespace }, p.memory.workingSetBytes)));
  return reg;
}

/** Shape of the prober's run hook (src/kubelet/prober/prober.ts ProbeRun), declared here so cadvisor does not import kubelet. */
export interface ProbeRunLike {
  probeType: string;
  result: 'successful' | 'failed' | 'unknown';
  container: string;
  pod: string;
  namespace: string;
  podUid: string;
}

export function createProbeMetrics(): { registry: Registry; record(run: ProbeRunLike): void } {
  const registry = new Registry();
  const total = new Counter({
    name: 'prober_probe_total',
    help: alpha('Cumulative number of a liveness, readiness or startup probe for a container by result.'),
    labelNames: ['probe_type', 'result', 'container', 'pod', 'namespace', 'pod_uid'],
    registers: [registry],
  });
  return {
    registry,
    record(r) {
      total.inc({ probe_type: r.probeType === 'liveness' ? 'Liveness' : r.probeType === 'readiness' ? 'Readiness' : 'Startup', result: r.result, container: r.container, pod: r.pod, namespace: r.namespace, pod_uid: r.podUid });
    },
  };
}

/** berth's own /metrics: process and Node.js runtime metrics plus histograms berth's loops observe. */
export interface BerthMetrics {
  registry: Registry;
  housekeepingDuration: Histogram;
  /** kubelet_pleg_relist_duration_seconds, for the PLEG (observe seconds). */
  plegRelistDuration: Histogram;
  /** kubelet_pod_worker_duration_seconds{operation}, for pod workers (berth labels every sync `sync`). */
  podWorkerDuration: Histogram<'operation'>;
}

export function createBerthMetrics(provider?: StatsProvider): BerthMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  const housekeepingDuration = new Histogram({
    name: 'berth_housekeeping_cpu_seconds',
    help: 'CPU time of one stats housekeeping pass (reading every cgroup and /proc file).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  provider?.onHousekeeping((s) => housekeepingDuration.observe(s.passCpuMicros / 1e6));
  return {
    registry,
    housekeepingDuration,
    plegRelistDuration: new Histogram({ name: 'kubelet_pleg_relist_duration_seconds', help: alpha('Duration in seconds for relisting pods in PLEG.'), buckets, registers: [registry] }),
    podWorkerDuration: new Histogram({ name: 'kubelet_pod_worker_duration_seconds', help: alpha('Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync'), labelNames: ['operation'], buckets, registers: [registry] }),
  };
}
