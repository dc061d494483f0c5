// What both proxy modes (iptables, nftables) share in front of their rule writers: the informer side (change
// trackers, this node's object), the sync loop (coalescing runner, kube-proxy's minSyncPeriod/burst throttle, one
// sync at a time), the choice between a full and a partial sync with the fall-back from a failed partial one, the
// bookkeeping behind /healthz, the canary check and the sync metrics. A mode subclasses ProxyFrontend and supplies
// how to build its context, run a partial or a full sync, and what to do after one; it never touches the loop.
import type { Endpoints, Node, Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import type { Clock, Logger } from '../lib/index.ts';
import { SyncRunner, errorMessage, systemClock } from '../lib/index.ts';
import { ChangeSet, EndpointsChangeTracker, ServiceChangeTracker } from './change-tracker.ts';
import type { ProxyConfig } from './config.ts';
import { type Conntrack, computeConntrackCleanup } from './conntrack.ts';
import type { ServiceHealthServer } from './healthcheck.ts';
import { isIPv4 } from './ip.ts';
import { type AppliedFigures, type ProxyMetricsSnapshot, type ProxySyncReport, SyncMetrics, type SyncStatsFields } from './metrics.ts';
import { ServiceSummaries } from './service-summaries.ts';
import type { Sysctl } from './sysctl.ts';
import { SyncThrottle } from './throttle.ts';
import type { EndpointSliceV1beta1, NodeInfo, PortChange } from './types.ts';

/**
 * What informers call. Every method is synchronous and cheap: it records the object in a tracker and, when the
 * proxy-relevant view changed, asks for a sync. Safe to call before start(); repeated identical objects are no-ops.
 */
export interface ProxyEventHandler {
  onServiceAdd(svc: Service): void;
  onServiceUpdate(oldSvc: Service | undefined, svc: Service): void;
  onServiceDelete(svc: Service): void;
  /** The Service informer finished its initial list. No sync runs before this and one of the *Synced below. */
  onServicesSynced(): void;
  onEndpointSliceAdd(slice: EndpointSlice | EndpointSliceV1beta1): void;
  onEndpointSliceUpdate(oldSlice: EndpointSlice | EndpointSliceV1beta1 | undefined, slice: EndpointSlice | EndpointSliceV1beta1): void;
  onEndpointSliceDelete(slice: EndpointSlice | EndpointSliceV1beta1): void;
  onEndpointSlicesSynced(): void;
  /** Core Endpoints, the fallback when the API server serves no EndpointSlices. */
  onEndpointsAdd(ep: Endpoints): void;
  onEndpointsUpdate(oldEp: Endpoints | undefined, ep: Endpoints): void;
  onEndpointsDelete(ep: Endpoints): void;
  onEndpointsSynced(): void;
  /** This node's object (labels for topology, addresses); other nodes are ignored. */
  onNodeUpdate(node: Node): void;
}

/** This node as the composition root knows it before the Node informer delivers the object. */
export interface ProxyNodeOptions {
  name: string;
  ip?: string;
  ips?: readonly string[];
  labels?: Readonly<Record<string, string>>;
}

/** What a mode's constructor takes; E is its executor, S its plan statistics. */
export interface ProxyModeOptions<E, S extends SyncStatsFields> {
  config: ProxyConfig;
  node: ProxyNodeOptions;
  executor: E;
  /** Absent: no sysctl is read or written. */
  sysctl?: Sysctl;
  /** Absent: no conntrack cleanup. */
  conntrack?: Conntrack;
  /** Absent: healthCheckNodePorts are not served. */
  healthServer?: ServiceHealthServer;
  log: Logger;
  clock?: Clock;
  /** Called after every completed sync (not for skipped ones), e.g. to export metrics or in benchmarks. */
  onSync?: (report: ProxySyncReport<S>) => void;
}

/** The mode's canary chain, what to log when it is gone (a flush behind berth's back) or cannot be read. */
export interface CanaryMessages {
  chain: string;
  missing: string;
  failed: string;
}

/** Log messages of the shared sync driver that name the mode. */
export interface SyncMessages {
  canary: CanaryMessages;
  /** A partial sync was rejected; a full one follows at once. */
  partialFailed: string;
}

/** A mode's build context; the namer memoises chain names and is left out of the context key. */
export interface ModeContext {
  namer: unknown;
}

export abstract class ProxyFrontend<E, S extends SyncStatsFields, C extends ModeContext> implements ProxyEventHandler {
  readonly serviceTracker: ServiceChangeTracker;
  readonly endpointsTracker: EndpointsChangeTracker;
  protected readonly changes: ChangeSet;
  protected readonly cfg: ProxyConfig;
  protected readonly executor: E;
  protected readonly sysctl: Sysctl | undefined;
  protected readonly conntrack: Conntrack | undefined;
  protected readonly healthServer: ServiceHealthServer | undefined;
  protected readonly log: Logger;
  protected readonly clock: Clock;
  protected readonly stats = new SyncMetrics();
  protected readonly summaries = new ServiceSummaries();
  protected readonly abort = new AbortController();
  protected node: NodeInfo;
  protected needFullSync = true;
  protected needFullSince: number;
  protected lastFullSyncAt = 0;
  protected appliedContextKey = '';
  protected started = false;
  protected stopped = false;
  private readonly messages: SyncMessages;
  private readonly onSync: ((report: ProxySyncReport<S>) => void) | undefined;
  private readonly throttle: SyncThrottle;
  private readonly runner: SyncRunner;
  private servicesSynced = false;
  private endpointsSynced = false;
  private canaryTimer: NodeJS.Timeout | undefined;
  private canaryChecking = false;
  private exclusive: Promise<unknown> = Promise.resolve();

  constructor(opts: ProxyModeOptions<E, S>, messages: SyncMessages) {
    this.cfg = opts.config;
    this.executor = opts.executor;
    this.sysctl = opts.sysctl;
    this.conntrack = opts.conntrack;
    this.healthServer = opts.healthServer;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.onSync = opts.onSync;
    this.messages = messages;
    this.changes = new ChangeSet(() => this.clock.now());
    this.serviceTracker = new ServiceChangeTracker({ changes: this.changes, log: this.log });
    this.endpointsTracker = new EndpointsChangeTracker({ nodeName: opts.node.name, changes: this.changes, log: this.log });
    this.node = {
      name: opts.node.name,
      ip: opts.node.ip ?? opts.node.ips?.find(isIPv4) ?? '',
      ips: (opts.node.ips ?? (opts.node.ip ? [opts.node.ip] : [])).filter(isIPv4),
      labels: { ...(opts.node.labels ?? {}) },
    };
    this.needFullSince = this.clock.now();
    this.throttle = new SyncThrottle({ minIntervalMs: this.cfg.minSyncPeriodMs, burst: this.cfg.burstSyncs, clock: this.clock });
    this.runner = new SyncRunner({
      name: 'proxy',
      run: async (signal) => {
        await this.throttle.acquire(signal);
        await this.syncOnce(signal);
      },
      periodMs: this.cfg.syncPeriodMs,
      initialBackoffMs: 1000,
      maxBackoffMs: 30_000,
      log: this.log,
      clock: this.clock,
    });
  }

  /** The mode's build context from config, this node and the probes made at start. */
  protected abstract buildContext(): C;

  /**
   * Writes only the given Services' rules against what was last applied and sets report.kind ('partial' or
   * 'noop'), stats and timings. Throws when the write was rejected (the caller falls back to a full sync).
   * Returns the changes for conntrack cleanup.
   */
  protected abstract partialSync(services: ReadonlySet<string>, ctx: C, ctxKey: string, report: ProxySyncReport<S>, signal: AbortSignal): Promise<PortChange[]>;

  /**
   * Reads the kernel's state and reconciles every Service's rules against it; sets report.kind 'full', stats and
   * timings. `dirty` names the Services changed since the last sync (their conntrack entries may be stale).
   */
  protected abstract fullSync(dirty: ReadonlySet<string>, ctx: C, ctxKey: string, report: ProxySyncReport<S>, signal: AbortSignal): Promise<PortChange[]>;

  /** Brings this.summaries in step with the rules just applied (`changed`: the Services of this sync's batch). */
  protected abstract updateSummaries(changes: readonly PortChange[], full: boolean, changed: ReadonlySet<string>): void;

  /** What the mode maintains now, for metrics(). */
  protected abstract appliedFigures(): AppliedFigures;

  /** The one log line of a sync that wrote something. */
  protected abstract logSynced(report: ProxySyncReport<S>): void;

  /** Fields for the log line of a rejected write (the failing line and the lines around it). */
  protected abstract errorFields(err: unknown): Record<string, unknown>;

  /** A full sync failed (not aborted); the sync runner logs the error itself. */
  protected onFullSyncFailed(_err: unknown): void {}

  /** Whether the mode's canary chain still exists. Throws when it cannot be read. */
  protected abstract canaryPresent(signal: AbortSignal): Promise<boolean>;

  /** Called when this node's labels or IPs changed, before the full sync that follows is requested. */
  protected onNodeChanged(): void {}

  // ---- informer side -------------------------------------------------------------------------------------

  onServiceAdd(svc: Service): void {
    if (this.serviceTracker.onServiceAdd(svc)) this.requestSync();
  }
  onServiceUpdate(oldSvc: Service | undefined, svc: Service): void {
    if (this.serviceTracker.onServiceUpdate(oldSvc, svc)) this.requestSync();
  }
  onServiceDelete(svc: Service): void {
    if (this.serviceTracker.onServiceDelete(svc)) this.requestSync();
  }
  onServicesSynced(): void {
    this.servicesSynced = true;
    this.requestSync();
  }
  onEndpointSliceAdd(slice: EndpointSlice | EndpointSliceV1beta1): void {
    if (this.endpointsTracker.onEndpointSliceAdd(slice)) this.requestSync();
  }
  onEndpointSliceUpdate(oldSlice: EndpointSlice | EndpointSliceV1beta1 | undefined, slice: EndpointSlice | EndpointSliceV1beta1): void {
    if (this.endpointsTracker.onEndpointSliceUpdate(oldSlice, slice)) this.requestSync();
  }
  onEndpointSliceDelete(slice: EndpointSlice | EndpointSliceV1beta1): void {
    if (this.endpointsTracker.onEndpointSliceDelete(slice)) this.requestSync();
  }
  onEndpointSlicesSynced(): void {
    this.endpointsSynced = true;
    this.requestSync();
  }
  onEndpointsAdd(ep: Endpoints): void {
    if (this.endpointsTracker.onEndpointsAdd(ep)) this.requestSync();
  }
  onEndpointsUpdate(oldEp: Endpoints | undefined, ep: Endpoints): void {
    if (this.endpointsTracker.onEndpointsUpdate(oldEp, ep)) this.requestSync();
  }
  onEndpointsDelete(ep: Endpoints): void {
    if (this.endpointsTracker.onEndpointsDelete(ep)) this.requestSync();
  }
  onEndpointsSynced(): void {
    this.endpointsSynced = true;
    this.requestSync();
  }
  onNodeUpdate(node: Node): void {
    if (node.metadata?.name !== this.node.name) {
      this.log.warn({ eventNode: node.metadata?.name, node: this.node.name }, 'ignoring node that is not this node');
      return;
    }
    const ips = (node.status?.addresses ?? []).filter((a) => isIPv4(a.address) && a.type !== 'Hostname').map((a) => a.address);
    const internal = node.status?.addresses?.find((a) => a.type === 'InternalIP' && isIPv4(a.address))?.address;
    const next: NodeInfo = {
      name: this.node.name,
      ip: internal ?? ips[0] ?? this.node.ip,
      ips: ips.length > 0 ? ips : this.node.ips,
      labels: { ...(node.metadata?.labels ?? {}) },
    };
    if (JSON.stringify(next) === JSON.stringify(this.node)) return;
    this.node = next;
    this.onNodeChanged();
    // Node labels and IPs affect every Service's rules (topology, nodePortAddresses, LB firewall).
    this.markFullSync();
    this.requestSync();
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  /** Starts the sync loop and the periodic canary check. The mode's start() calls it once, after its probes. */
  protected startLoop(): void {
    this.runner.start();
    this.canaryTimer = setInterval(() => void this.checkCanary(), this.cfg.syncPeriodMs);
    this.canaryTimer.unref();
  }

  /** Stops the loop and the health check listeners. Rules stay in place (use runCleanup to remove them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.runner.stop();
    this.abort.abort(new Error('proxy stopped'));
    if (this.canaryTimer) clearInterval(this.canaryTimer);
    await this.exclusive.catch(() => {});
    await this.healthServer?.close();
  }

  /**
   * Runs one sync now (not rate limited), after any sync in progress; resolves with what it did, rejects when it
   * failed (the loop retries on its own). Tests and benchmarks use it; production relies on the loop.
   */
  syncNow(): Promise<ProxySyncReport<S>> {
    return this.syncOnce(this.abort.signal);
  }

  /** False when a change has waited for the kernel longer than healthTimeoutMs (kube-proxy's /healthz). */
  healthy(): boolean {
    const pending = this.changes.oldestPendingAt();
    const since = this.needFullSync ? Math.min(this.needFullSince, pending ?? Infinity) : pending;
    if (since === undefined) return true;
    return this.clock.now() - since <= this.cfg.healthTimeoutMs;
  }

  /** Plain-data metrics; cheap, call at scrape time. */
  metrics(): ProxyMetricsSnapshot {
    return this.stats.snapshot(this.appliedFigures(), {
      oldestPendingAt: this.changes.oldestPendingAt(),
      endpoints: this.endpointsTracker.totalEndpoints,
      noLocal: this.summaries.noLocal,
    });
  }

  /** Test hook: runs the canary check once. */
  async checkCanaryNow(): Promise<void> {
    await this.checkCanary();
  }

  // ---- sync plumbing -------------------------------------------------------------------------------------

  protected requestSync(): void {
    if (this.started && !this.stopped) this.runner.trigger();
  }

  protected markFullSync(): void {
    if (!this.needFullSync) this.needFullSince = this.clock.now();
    this.needFullSync = true;
  }

  private syncOnce(signal: AbortSignal): Promise<ProxySyncReport<S>> {
    const run = this.exclusive.catch(() => {}).then(() => this.doSync(signal));
    this.exclusive = run;
    return run;
  }

  /**
   * One sync: full when asked for (start, failure, canary, node change), when the context changed or the full
   * resync period passed; partial otherwise, falling back to full when the partial write fails. The ChangeSet
   * batch is committed only after the kernel took the rules.
   */
  private async doSync(signal: AbortSignal): Promise<ProxySyncReport<S>> {
    const t0 = performance.now();
    const report: ProxySyncReport<S> = {
      kind: 'skipped',
      fellBack: false,
      durationMs: 0,
      buildMs: 0,
      saveMs: 0,
      restoreMs: 0,
      restoreBytes: 0,
      stats: undefined,
      changedServices: 0,
    };
    if (!this.servicesSynced || !this.endpointsSynced) {
      this.log.debug('not syncing until services and endpoints are synced');
      return report;
    }
    const batch = this.changes.peek();
    report.changedServices = batch.services.size;
    const ctx = this.buildContext();
    const { namer: _n, ...rest } = ctx;
    const ctxKey = JSON.stringify(rest);
    let full = this.needFullSync || ctxKey !== this.appliedContextKey || this.clock.now() - this.lastFullSyncAt >= this.cfg.fullSyncPeriodMs;
    let changes: PortChange[] = [];

    if (!full) {
      try {
        changes = await this.partialSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        if (signal.aborted) throw err;
        this.stats.partialFailures++;
        this.stats.restoreFailures++;
        this.log.warn({ err, ...this.errorFields(err) }, this.messages.partialFailed);
        report.fellBack = true;
        full = true;
        this.markFullSync();
      }
    }
    if (full) {
      try {
        changes = await this.fullSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        // Logged once by the caller (the sync runner); the restore errors carry the failing line and the lines
        // around it as fields, which the err serializer includes.
        if (!signal.aborted) {
          this.stats.restoreFailures++;
          this.markFullSync();
          this.onFullSyncFailed(err);
        }
        throw err;
      }
      this.needFullSync = false;
      this.appliedContextKey = ctxKey;
      this.lastFullSyncAt = this.clock.now();
    }
    this.changes.commit(batch.generation);

    const seconds = (performance.now() - t0) / 1000;
    report.durationMs = seconds * 1000;
    this.stats.recordSync(report, seconds, this.clock.now());
    if (report.kind !== 'noop') this.logSynced(report);
    if (batch.services.size > 0 || report.kind === 'full') await this.afterSync(changes, report.kind === 'full', batch.services);
    this.onSync?.(report);
    return report;
  }

  /**
   * After the rules are in: the summaries, the health check listeners, stale UDP conntrack entries. Failures here
   * are only logged by the runner; the rules stay.
   */
  private async afterSync(changes: readonly PortChange[], full: boolean, changed: ReadonlySet<string>): Promise<void> {
    this.updateSummaries(changes, full, changed);
    if (this.healthServer) {
      this.healthServer.syncEndpoints(new Map(this.summaries.localReady));
      await this.healthServer.syncServices(new Map(this.summaries.hcPorts));
    }
    if (this.conntrack && this.cfg.conntrackCleanup) {
      const deletions = computeConntrackCleanup(changes);
      for (const d of deletions) this.stats.conntrackDeleted += await this.conntrack.delete(d);
      if (deletions.length > 0) this.log.debug({ deletions: deletions.length }, 'stale udp conntrack entries deleted');
    }
  }

  private async checkCanary(): Promise<void> {
    if (this.canaryChecking || this.stopped || this.lastFullSyncAt === 0 || this.needFullSync) return;
    this.canaryChecking = true;
    try {
      const present = await this.canaryPresent(this.abort.signal);
      if (!present && !this.needFullSync) {
        this.log.info({ chain: this.messages.canary.chain }, this.messages.canary.missing);
        this.stats.canaryFullSyncs++;
        this.markFullSync();
        this.runner.trigger();
      }
    } catch (err: unknown) {
      if (!this.stopped) this.log.warn({ err: errorMessage(err) }, this.messages.canary.failed);
    } finally {
      this.canaryChecking = false;
    }
  }
}
