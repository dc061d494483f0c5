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

/** How long one sync took (ms), by step, and how much it wrote. */
export interface SyncTimings {
  durationMs: number;
  /** Building rules and planning the write (pure part). */
  buildMs: number;
  /** Reading the kernel's state (iptables-save, `nft list table`; full syncs only). */
  saveMs: number;
  /** Writing (iptables-restore, `nft -f -`): process start, parse, kernel commit. */
  restoreMs: number;
  restoreBytes: number;
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
  lastSync: SyncTimings & {
    kind: 'full' | 'partial' | 'none';
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

/** What one sync did, in either mode; S is the mode's plan statistics. */
export interface ProxySyncReport<S extends SyncStatsFields = SyncStatsFields> extends SyncTimings {
  kind: 'full' | 'partial' | 'noop' | 'skipped';
  /** A partial sync failed and a full sync followed. */
  fellBack: boolean;
  stats: S | undefined;
  changedServices: number;
}

/** The plan statistics of either mode that the metrics read (nftables has no -D / -I lines). */
export interface SyncStatsFields {
  chainsWritten: number;
  chainsDeleted: number;
  rulesWritten: number;
  rulesDeleted?: number;
  rulesInserted?: number;
}

/** The mode's view of what it maintains now, read at scrape time. */
export interface AppliedFigures {
  backend: string;
  iptablesRulesTotal: { filter: number; nat: number };
  natChainsTotal: number;
  services: number;
  servicePorts: number;
  largeClusterMode: boolean;
}

/** What the proxy frontend knows at scrape time. */
export interface InputFigures {
  /** Epoch ms of the oldest change still waiting, if any. */
  oldestPendingAt: number | undefined;
  endpoints: number;
  noLocal: { internal: number; external: number };
}

/**
 * The sync counters and histograms both proxy modes keep. The proxy bumps the failure and conntrack counters where
 * they happen and calls recordSync once per completed (not skipped) sync.
 */
export class SyncMetrics {
  private readonly hAll = new Histogram();
  private readonly hFull = new Histogram();
  private readonly hPartial = new Histogram();
  private lastSuccessAt = 0;
  private lastReport: ProxySyncReport | undefined;
  private readonly syncsTotal = { full: 0, partial: 0, noop: 0 };
  restoreFailures = 0;
  partialFailures = 0;
  conntrackDeleted = 0;
  canaryFullSyncs = 0;

  /** A sync reached the kernel (or had nothing to write) at `now`, taking `seconds`. */
  recordSync(report: ProxySyncReport, seconds: number, now: number): void {
    this.lastSuccessAt = now;
    this.hAll.observe(seconds);
    if (report.kind === 'full') {
      this.hFull.observe(seconds);
      this.syncsTotal.full++;
    } else if (report.kind === 'partial') {
      this.hPartial.observe(seconds);
      this.syncsTotal.partial++;
    } else this.syncsTotal.noop++;
    this.lastReport = report;
  }

  snapshot(applied: AppliedFigures, inputs: InputFigures): ProxyMetricsSnapshot {
    const r = this.lastReport;
    return {
      backend: applied.backend,
      syncProxyRulesDurationSeconds: this.hAll.snapshot(),
      syncFullProxyRulesDurationSeconds: this.hFull.snapshot(),
      syncPartialProxyRulesDurationSeconds: this.hPartial.snapshot(),
      syncProxyRulesLastTimestampMs: this.lastSuccessAt,
      syncProxyRulesLastQueuedTimestampMs: inputs.oldestPendingAt ?? 0,
      lastSync: {
        kind: r?.kind === 'full' || r?.kind === 'partial' ? r.kind : 'none',
        durationMs: r?.durationMs ?? 0,
        buildMs: r?.buildMs ?? 0,
        saveMs: r?.saveMs ?? 0,
        restoreMs: r?.restoreMs ?? 0,
        restoreBytes: r?.restoreBytes ?? 0,
        chainsWritten: r?.stats?.chainsWritten ?? 0,
        chainsDeleted: r?.stats?.chainsDeleted ?? 0,
        rulesWritten: r?.stats?.rulesWritten ?? 0,
        rulesDeleted: r?.stats?.rulesDeleted ?? 0,
        rulesInserted: r?.stats?.rulesInserted ?? 0,
      },
      iptablesRulesTotal: { ...applied.iptablesRulesTotal },
      natChainsTotal: applied.natChainsTotal,
      services: applied.services,
      servicePorts: applied.servicePorts,
      endpoints: inputs.endpoints,
      largeClusterMode: applied.largeClusterMode,
      syncsTotal: { ...this.syncsTotal },
      iptablesRestoreFailuresTotal: this.restoreFailures,
      iptablesPartialRestoreFailuresTotal: this.partialFailures,
      syncProxyRulesNoLocalEndpointsTotal: { ...inputs.noLocal },
      conntrackEntriesDeletedTotal: this.conntrackDeleted,
      canaryFullSyncsTotal: this.canaryFullSyncs,
    };
  }
}
