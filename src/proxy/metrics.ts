// Proxy metrics as plain data (the composition root renders them, e.g. as Prometheus text). Names follow
// upstream's kubeproxy_* metrics (pkg/proxy/metrics) in camelCase.

/** Cumulative histogram: counts[i] = observations <= bounds[i]; the last bucket is +Inf. */
export interface HistogramSnapshot {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Upstream's buckets: exponential 1 ms … 16 s. */
export const SYNC_DURATION_BOUNDS_SECONDS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

export class Histogram {
  private readonly bounds: number[];
  private readonly buckets: number[];
  private sum = 0;
  private count = 0;
  constructor(bounds: number[] = SYNC_DURATION_BOUNDS_SECONDS) {
    this.bounds = bounds;
    this.buckets = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.buckets[i]!++;
    this.sum += v;
    this.count++;
  }
  snapshot(): HistogramSnapshot {
    let acc = 0;
    const counts = this.buckets.map((b) => (acc += b));
    return { bounds: [...this.bounds, Infinity], counts, sum: this.sum, count: this.count };
  }
}

export interface ProxyMetricsSnapshot {
  backend: string;
  /** All syncs, and full / partial separately (seconds). */
  syncProxyRulesDurationSeconds: HistogramSnapshot;
  syncFullProxyRulesDurationSeconds: HistogramSnapshot;
  syncPartialProxyRulesDurationSeconds: HistogramSnapshot;
  /** Epoch ms of the last successful sync / of the oldest change still waiting (0 = none). */
  syncProxyRulesLastTimestampMs: number;
  syncProxyRulesLastQueuedTimestampMs: number;
  lastSync: {
    kind: 'full' | 'partial' | 'none';
    durationMs: number;
    /** Time spent building rules (pure part) and in iptables-save / iptables-restore. */
    buildMs: number;
    saveMs: number;
    restoreMs: number;
    restoreBytes: number;
    chainsWritten: number;
    chainsDeleted: number;
    rulesWritten: number;
    rulesDeleted: number;
    rulesInserted: number;
  };
  /** Rules berth maintains now, per table. */
  iptablesRulesTotal: { filter: number; nat: number };
  natChainsTotal: number;
  services: number;
  servicePorts: number;
  endpoints: number;
  largeClusterMode: boolean;
  syncsTotal: { full: number; partial: number; noop: number };
  iptablesRestoreFailuresTotal: number;
  iptablesPartialRestoreFailuresTotal: number;
  syncProxyRulesNoLocalEndpointsTotal: { internal: number; external: number };
  conntrackEntriesDeletedTotal: number;
  canaryFullSyncsTotal: number;
}
