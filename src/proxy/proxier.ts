// The service proxy: informer events → change trackers → (rate-limited) sync → one iptables-restore.
//
// A sync reads the whole desired state from the trackers. The first sync, the periodic one (fullSyncPeriodMs),
// one after the canary chain vanished, after a failure or a change of node/config is *full*: it reconciles every
// berth chain against iptables-save. All others are *partial*: only the chains of Services marked in the
// ChangeSet, against what was last applied. A failed partial restore falls back to a full one at once. Marks are
// cleared only after the restore succeeded.
import type { Endpoints, Node, Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import type { Clock, Logger } from '../lib/index.ts';
import { SyncRunner, errorMessage, systemClock } from '../lib/index.ts';
import { ChangeSet, EndpointsChangeTracker, ServiceChangeTracker } from './change-tracker.ts';
import { ChainNamer, KUBE_PROXY_CANARY } from './chain-names.ts';
import type { ProxyConfig } from './config.ts';
import { type Conntrack, computeConntrackCleanup } from './conntrack.ts';
import { type IptablesExecutor, IptablesRestoreError, supportsRandomFully } from './executor.ts';
import type { ServiceHealthServer } from './healthcheck.ts';
import { cidrContains, isIPv4 } from './ip.ts';
import { parseIptablesSave } from './iptables-save.ts';
import { Histogram, type ProxyMetricsSnapshot } from './metrics.ts';
import { type PlanStats, type ServiceChange, computeFullSyncPlan, computePartialSyncPlan, countRules } from './plan.ts';
import { type BuildContext, type GlobalRules, type RuleOptions, type ServicePortRules, buildGlobalRules, buildServicePortRules } from './rules.ts';
import {
  SYSCTL_BRIDGE_NF_CALL_IPTABLES,
  SYSCTL_CONNTRACK_TCP_BE_LIBERAL,
  SYSCTL_IP_FORWARD,
  SYSCTL_ROUTE_LOCALNET,
  type Sysctl,
  type SysctlRequirement,
  ensureSysctls,
} from './sysctl.ts';
import { SyncThrottle } from './throttle.ts';
import { type EndpointSliceV1beta1, type NodeInfo, endpointsPortKey } from './types.ts';

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

export interface ServiceProxyOptions {
  config: ProxyConfig;
  node: { name: string; ip?: string; ips?: readonly string[]; labels?: Readonly<Record<string, string>> };
  executor: IptablesExecutor;
  /** Absent: no sysctl is read or written. */
  sysctl?: Sysctl;
  /** Absent: no conntrack cleanup. */
  conntrack?: Conntrack;
  /** Absent: healthCheckNodePorts are not served. */
  healthServer?: ServiceHealthServer;
  log: Logger;
  clock?: Clock;
  /** Called after every completed sync (not for skipped ones), e.g. to export metrics or in benchmarks. */
  onSync?: (report: SyncReport) => void;
}

export interface SyncReport {
  kind: 'full' | 'partial' | 'noop' | 'skipped';
  /** A partial restore failed and a full sync followed. */
  fellBack: boolean;
  durationMs: number;
  buildMs: number;
  saveMs: number;
  restoreMs: number;
  restoreBytes: number;
  stats: PlanStats | undefined;
  changedServices: number;
}

export class ServiceProxy implements ProxyEventHandler {
  readonly serviceTracker: ServiceChangeTracker;
  readonly endpointsTracker: EndpointsChangeTracker;
  private readonly changes: ChangeSet;
  private readonly cfg: ProxyConfig;
  private readonly executor: IptablesExecutor;
  private readonly sysctl: Sysctl | undefined;
  private readonly conntrack: Conntrack | undefined;
  private readonly healthServer: ServiceHealthServer | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly onSync: ((report: SyncReport) => void) | undefined;
  private readonly namer = new ChainNamer();
  private readonly throttle: SyncThrottle;
  private readonly runner: SyncRunner;
  private node: NodeInfo;
  private ruleOptions: RuleOptions;
  private randomFully = false;
  private conntrackTCPLiberal = false;

  /**
   * Per Service, its rules as last built and the inputs they were built from. The trackers keep a Service's port
   * and endpoint objects while its proxy-relevant view is unchanged, so identical inputs (by identity) and the same
   * context mean identical rules: a full sync rebuilds only what changed since the last build.
   */
  private built = new Map<string, { ports: readonly unknown[]; eps: unknown; ctxKey: string; rules: ServicePortRules[] }>();
  /** Per Service, its rules as last applied to the kernel. */
  private applied = new Map<string, readonly ServicePortRules[]>();
  private appliedCounts = { filter: 0, nat: 0, natChains: 0, servicePorts: 0 };
  private needFullSync = true;
  private needFullSince: number;
  private lastFullSyncAt = 0;
  private appliedContextKey = '';
  private servicesSynced = false;
  private endpointsSynced = false;
  private started = false;
  private stopped = false;
  private canaryTimer: NodeJS.Timeout | undefined;
  private canaryChecking = false;
  private exclusive: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();

  private readonly hAll = new Histogram();
  private readonly hFull = new Histogram();
  private readonly hPartial = new Histogram();
  private lastSuccessAt = 0;
  private lastReport: SyncReport | undefined;
  private syncsTotal = { full: 0, partial: 0, noop: 0 };
  private restoreFailures = 0;
  private partialFailures = 0;
  private conntrackDeleted = 0;
  private canaryFullSyncs = 0;
  private noLocal = { internal: 0, external: 0 };
  /** healthCheckNodePort and local ready endpoints per Service, as applied. */
  private readonly hcPorts = new Map<string, number>();
  private readonly hcLocal = new Map<string, number>();
  private largeClusterMode = false;

  constructor(opts: ServiceProxyOptions) {
    this.cfg = opts.config;
    this.executor = opts.executor;
    this.sysctl = opts.sysctl;
    this.conntrack = opts.conntrack;
    this.healthServer = opts.healthServer;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.onSync = opts.onSync;
    this.changes = new ChangeSet(() => this.clock.now());
    this.serviceTracker = new ServiceChangeTracker({ changes: this.changes, log: this.log });
    this.endpointsTracker = new EndpointsChangeTracker({ nodeName: opts.node.name, changes: this.changes, log: this.log });
    this.node = {
      name: opts.node.name,
      ip: opts.node.ip ?? opts.node.ips?.find(isIPv4) ?? '',
      ips: (opts.node.ips ?? (opts.node.ip ? [opts.node.ip] : [])).filter(isIPv4),
      labels: { ...(opts.node.labels ?? {}) },
    };
    this.ruleOptions = this.computeRuleOptions();
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
    this.ruleOptions = this.computeRuleOptions();
    // Node labels and IPs affect every Service's rules (topology, nodePortAddresses, LB firewall).
    this.markFullSync();
    this.requestSync();
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  /**
   * Sets the sysctls the proxy needs, probes iptables features, starts the sync loop and the canary check.
   * Throws when a required sysctl cannot be set. Call once.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.sysctl) {
      if (this.cfg.setSysctls) {
        const reqs: SysctlRequirement[] = [
          { key: SYSCTL_IP_FORWARD, value: '1', required: false, why: 'forward Service traffic to pods' },
          {
            key: SYSCTL_BRIDGE_NF_CALL_IPTABLES,
            value: '1',
            required: false,
            optionalKey: true,
            why: 'bridged pod-to-Service traffic must traverse iptables',
          },
        ];
        if (this.cfg.localhostNodePorts) {
          reqs.push({ key: SYSCTL_ROUTE_LOCALNET, value: '1', required: true, why: 'NodePorts on 127.0.0.1 (localhostNodePorts)' });
        }
        await ensureSysctls(this.sysctl, reqs, this.log);
      }
      try {
        this.conntrackTCPLiberal = (await this.sysctl.get(SYSCTL_CONNTRACK_TCP_BE_LIBERAL)) !== '0';
      } catch {
        this.conntrackTCPLiberal = false;
      }
      if (this.conntrackTCPLiberal) this.log.info('nf_conntrack_tcp_be_liberal set, not dropping INVALID packets');
    }
    try {
      this.randomFully = supportsRandomFully(await this.executor.version());
    } catch (err: unknown) {
      this.log.warn({ err }, 'cannot read iptables version, not using --random-fully');
    }
    this.ruleOptions = this.computeRuleOptions();
    this.log.info(
      { backend: this.executor.backend, randomFully: this.randomFully, minSyncPeriodMs: this.cfg.minSyncPeriodMs, syncPeriodMs: this.cfg.syncPeriodMs },
      'service proxy starting',
    );
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
  syncNow(): Promise<SyncReport> {
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
    const r = this.lastReport;
    return {
      backend: this.executor.backend,
      syncProxyRulesDurationSeconds: this.hAll.snapshot(),
      syncFullProxyRulesDurationSeconds: this.hFull.snapshot(),
      syncPartialProxyRulesDurationSeconds: this.hPartial.snapshot(),
      syncProxyRulesLastTimestampMs: this.lastSuccessAt,
      syncProxyRulesLastQueuedTimestampMs: this.changes.oldestPendingAt() ?? 0,
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
      iptablesRulesTotal: { filter: this.appliedCounts.filter, nat: this.appliedCounts.nat },
      natChainsTotal: this.appliedCounts.natChains,
      services: this.applied.size,
      servicePorts: this.appliedCounts.servicePorts,
      endpoints: this.endpointsTracker.totalEndpoints,
      largeClusterMode: this.largeClusterMode,
      syncsTotal: { ...this.syncsTotal },
      iptablesRestoreFailuresTotal: this.restoreFailures,
      iptablesPartialRestoreFailuresTotal: this.partialFailures,
      syncProxyRulesNoLocalEndpointsTotal: { ...this.noLocal },
      conntrackEntriesDeletedTotal: this.conntrackDeleted,
      canaryFullSyncsTotal: this.canaryFullSyncs,
    };
  }

  // ---- sync ----------------------------------------------------------------------------------------------

  private requestSync(): void {
    if (this.started && !this.stopped) this.runner.trigger();
  }

  private markFullSync(): void {
    if (!this.needFullSync) this.needFullSince = this.clock.now();
    this.needFullSync = true;
  }

  private computeRuleOptions(): RuleOptions {
    const nodePortIPs: string[] = [];
    if (this.cfg.nodePortAddresses.length > 0) {
      for (const ip of [...this.node.ips, '127.0.0.1']) {
        if (this.cfg.nodePortAddresses.some((c) => cidrContains(c, ip)) && !nodePortIPs.includes(ip)) nodePortIPs.push(ip);
      }
    }
    return {
      masqueradeMark: 2 ** this.cfg.masqueradeBit,
      masqueradeAll: this.cfg.masqueradeAll,
      clusterCIDR: this.cfg.clusterCIDR,
      localhostNodePorts: this.cfg.localhostNodePorts,
      nodePortIPs,
      randomFully: this.randomFully,
      conntrackTCPLiberal: this.conntrackTCPLiberal,
    };
  }

  private buildContext(): BuildContext {
    this.largeClusterMode = this.endpointsTracker.totalEndpoints > this.cfg.largeClusterEndpointsThreshold;
    return { ...this.ruleOptions, namer: this.namer, nodeIP: this.node.ip, nodeLabels: this.node.labels, largeClusterMode: this.largeClusterMode };
  }

  private contextKey(ctx: BuildContext): string {
    const { namer: _n, ...rest } = ctx;
    return JSON.stringify(rest);
  }

  private buildService(name: string, ctx: BuildContext, ctxKey: string): ServicePortRules[] {
    const ports = this.serviceTracker.get(name);
    if (ports.length === 0) {
      this.built.delete(name);
      return [];
    }
    const eps = this.endpointsTracker.get(name);
    const b = this.built.get(name);
    if (b !== undefined && b.ports === ports && b.eps === eps && b.ctxKey === ctxKey) return b.rules;
    const rules = ports.map((p) => buildServicePortRules(p, eps.get(endpointsPortKey(p.portName, p.protocol)) ?? [], ctx));
    this.built.set(name, { ports, eps, ctxKey, rules });
    return rules;
  }

  private syncOnce(signal: AbortSignal): Promise<SyncReport> {
    const run = this.exclusive.catch(() => {}).then(() => this.doSync(signal));
    this.exclusive = run;
    return run;
  }

  private async doSync(signal: AbortSignal): Promise<SyncReport> {
    const t0 = performance.now();
    const report: SyncReport = {
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
    const ctxKey = this.contextKey(ctx);
    let full = this.needFullSync || ctxKey !== this.appliedContextKey || this.clock.now() - this.lastFullSyncAt >= this.cfg.fullSyncPeriodMs;
    let changes: ServiceChange[] = [];

    if (!full) {
      try {
        changes = await this.partialSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        if (signal.aborted) throw err;
        this.partialFailures++;
        this.restoreFailures++;
        this.log.warn({ err, ...restoreErrorFields(err) }, 'partial iptables restore failed, falling back to a full sync');
        report.fellBack = true;
        full = true;
        this.markFullSync();
      }
    }
    if (full) {
      try {
        changes = await this.fullSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        // Logged once by the caller (the sync runner); IptablesRestoreError carries the failing line and the
        // lines around it as fields, which the err serializer includes.
        if (!signal.aborted) {
          this.restoreFailures++;
          this.markFullSync();
        }
        throw err;
      }
      this.needFullSync = false;
      this.appliedContextKey = ctxKey;
      this.lastFullSyncAt = this.clock.now();
    }
    this.changes.commit(batch.generation);
    this.lastSuccessAt = this.clock.now();

    const seconds = (performance.now() - t0) / 1000;
    report.durationMs = seconds * 1000;
    this.hAll.observe(seconds);
    if (report.kind === 'full') {
      this.hFull.observe(seconds);
      this.syncsTotal.full++;
    } else if (report.kind === 'partial') {
      this.hPartial.observe(seconds);
      this.syncsTotal.partial++;
    } else this.syncsTotal.noop++;
    this.lastReport = report;
    if (report.kind !== 'noop') {
      // Partial syncs can run every second in a busy cluster: debug; full ones are rare and worth seeing.
      this.log[report.kind === 'full' ? 'info' : 'debug'](
        {
          kind: report.kind,
          durationMs: Math.round(report.durationMs),
          restoreMs: Math.round(report.restoreMs),
          services: this.applied.size,
          changed: report.changedServices,
          chainsWritten: report.stats?.chainsWritten,
          rulesWritten: report.stats?.rulesWritten,
          chainsDeleted: report.stats?.chainsDeleted,
        },
        'iptables synced',
      );
    }
    if (batch.services.size > 0 || report.kind === 'full') await this.afterSync(changes, report.kind === 'full', batch.services);
    this.onSync?.(report);
    return report;
  }

  private async partialSync(
    services: ReadonlySet<string>,
    ctx: BuildContext,
    ctxKey: string,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<ServiceChange[]> {
    const tb = performance.now();
    const changes: ServiceChange[] = [];
    const next = new Map<string, readonly ServicePortRules[]>();
    for (const name of services) {
      const n = this.buildService(name, ctx, ctxKey);
      next.set(name, n);
      changes.push({ prev: this.applied.get(name) ?? [], next: n });
    }
    const plan = computePartialSyncPlan(changes);
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    report.kind = plan.text ? 'partial' : 'noop';
    if (plan.text) {
      const tr = performance.now();
      report.restoreBytes = plan.text.length;
      await this.executor.restore(plan.text, signal);
      report.restoreMs = performance.now() - tr;
    }
    for (const c of changes) {
      this.adjustCounts(c.prev, -1);
      this.adjustCounts(c.next, +1);
    }
    for (const [name, n] of next) {
      if (n.length > 0) this.applied.set(name, n);
      else this.applied.delete(name);
    }
    return changes;
  }

  private async fullSync(
    dirty: ReadonlySet<string>,
    ctx: BuildContext,
    ctxKey: string,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<ServiceChange[]> {
    report.kind = 'full';
    const ts = performance.now();
    const observed = parseIptablesSave(await this.executor.save(undefined, signal));
    report.saveMs = performance.now() - ts;
    const tb = performance.now();
    // A full rebuild is the moment to drop memoised chain names of Services that are gone.
    if (this.namer.size > 4 * (this.serviceTracker.size + this.endpointsTracker.totalEndpoints) + 1024) this.namer.clear();
    const next = new Map<string, readonly ServicePortRules[]>();
    const prevBuilt = this.built;
    this.built = new Map();
    for (const [name] of this.serviceTracker.entries()) {
      const b = prevBuilt.get(name);
      if (b) this.built.set(name, b);
      const n = this.buildService(name, ctx, ctxKey);
      if (n.length > 0) next.set(name, n);
    }
    const global: GlobalRules = buildGlobalRules(ctx);
    const all = allPorts(next);
    const plan = computeFullSyncPlan(all, global, observed);
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    if (plan.stats.staleKept.length > 0) this.log.warn({ chains: plan.stats.staleKept }, 'stale chains still referenced by foreign rules, not deleted');
    if (plan.text) {
      const tr = performance.now();
      report.restoreBytes = plan.text.length;
      await this.executor.restore(plan.text, signal);
      report.restoreMs = performance.now() - tr;
    }
    const changes: ServiceChange[] = [];
    // The first sync after start knows nothing of the previous state: every UDP Service would look newly active
    // and cost one conntrack process each, although the rules in the kernel were most likely the same.
    if (this.lastFullSyncAt !== 0) for (const name of dirty) changes.push({ prev: this.applied.get(name) ?? [], next: next.get(name) ?? [] });
    this.applied = next;
    const counts = countRules(allPorts(next), global);
    let servicePorts = 0;
    for (const l of next.values()) servicePorts += l.length;
    this.appliedCounts = { ...counts, servicePorts };
    return changes;
  }

  private adjustCounts(ports: readonly ServicePortRules[], sign: 1 | -1): void {
    const c = countRules(ports, { fixed: [], shared: [], natServicesTail: [], jumps: [] });
    this.appliedCounts.filter += sign * c.filter;
    this.appliedCounts.nat += sign * c.nat;
    this.appliedCounts.natChains += sign * c.natChains;
    this.appliedCounts.servicePorts += sign * ports.length;
  }

  /**
   * Health check listeners and conntrack: after the rules are in, failures only logged. After a full sync the
   * per-Service summaries are recomputed over every Service; after a partial one only the changed Services' are
   * (a partial sync stays independent of the number of Services).
   */
  private async afterSync(changes: ServiceChange[], full: boolean, changed: ReadonlySet<string>): Promise<void> {
    const hc = this.hcPorts;
    const local = this.hcLocal;
    const summarize = (name: string, ports: readonly ServicePortRules[]): void => {
      for (const p of ports) {
        if (p.svc.healthCheckNodePort) {
          hc.set(name, p.svc.healthCheckNodePort);
          local.set(name, Math.max(local.get(name) ?? 0, p.localReady));
        }
      }
    };
    if (full) {
      let noLocalInternal = 0;
      let noLocalExternal = 0;
      hc.clear();
      local.clear();
      for (const [name, ports] of this.applied) {
        for (const p of ports) {
          if (p.noLocalInternal) noLocalInternal++;
          if (p.noLocalExternal) noLocalExternal++;
        }
        summarize(name, ports);
      }
      this.noLocal = { internal: noLocalInternal, external: noLocalExternal };
    } else {
      let dInternal = 0;
      let dExternal = 0;
      for (const c of changes) {
        for (const p of c.prev) {
          if (p.noLocalInternal) dInternal--;
          if (p.noLocalExternal) dExternal--;
        }
        for (const p of c.next) {
          if (p.noLocalInternal) dInternal++;
          if (p.noLocalExternal) dExternal++;
        }
      }
      this.noLocal = { internal: this.noLocal.internal + dInternal, external: this.noLocal.external + dExternal };
      for (const name of changed) {
        hc.delete(name);
        local.delete(name);
        summarize(name, this.applied.get(name) ?? []);
      }
    }
    if (this.healthServer) {
      this.healthServer.syncEndpoints(new Map(local));
      await this.healthServer.syncServices(new Map(hc));
    }
    if (this.conntrack && this.cfg.conntrackCleanup) {
      const deletions = computeConntrackCleanup(changes);
      for (const d of deletions) this.conntrackDeleted += await this.conntrack.delete(d);
      if (deletions.length > 0) this.log.debug({ deletions: deletions.length }, 'stale udp conntrack entries deleted');
    }
  }

  private async checkCanary(): Promise<void> {
    if (this.canaryChecking || this.stopped || this.lastFullSyncAt === 0 || this.needFullSync) return;
    this.canaryChecking = true;
    try {
      const exists = await this.executor.chainExists('mangle', KUBE_PROXY_CANARY, this.abort.signal);
      if (!exists && !this.needFullSync) {
        this.log.info({ chain: KUBE_PROXY_CANARY }, 'iptables canary chain missing: tables were flushed, forcing a full sync');
        this.canaryFullSyncs++;
        this.markFullSync();
        this.runner.trigger();
      }
    } catch (err: unknown) {
      if (!this.stopped) this.log.warn({ err: errorMessage(err) }, 'iptables canary check failed');
    } finally {
      this.canaryChecking = false;
    }
  }

  /** Test hook: runs the canary check once. */
  async checkCanaryNow(): Promise<void> {
    await this.checkCanary();
  }
}

function* allPorts(m: ReadonlyMap<string, readonly ServicePortRules[]>): IterableIterator<ServicePortRules> {
  for (const l of m.values()) yield* l;
}

function restoreErrorFields(err: unknown): Record<string, unknown> {
  if (err instanceof IptablesRestoreError) return { line: err.line, rules: err.context };
  return {};
}
