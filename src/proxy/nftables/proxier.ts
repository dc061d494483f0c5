// The service proxy in nftables mode (`--proxy-mode nftables`): informer events → the same change trackers as the
// iptables mode → (rate-limited) sync → one `nft -f -` transaction into berth's own `ip kube-proxy` table.
//
// The committed state is kept in memory (NftState), so a partial sync writes only the changed Services' chains
// and map elements and never lists the table. A full sync (the first, the periodic one every fullSyncPeriodMs,
// after the canary (the table itself) vanished, after a failure or a change of node/config) lists the table once and
// fixes what differs. Pending changes are cleared only after the transaction succeeded; a failed partial sync
// falls back to a full one at once. Behaviour follows upstream pkg/proxy/nftables/proxier.go, which does not
// serve NodePorts on 127.0.0.0/8 (no route_localnet): neither does berth in this mode.
import type { Endpoints, Node, Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import type { Clock, Logger } from '../../lib/index.ts';
import { SyncRunner, errorMessage, systemClock } from '../../lib/index.ts';
import { ChangeSet, EndpointsChangeTracker, ServiceChangeTracker } from '../change-tracker.ts';
import type { ProxyConfig } from '../config.ts';
import { type Conntrack, computeConntrackCleanup } from '../conntrack.ts';
import type { ServiceHealthServer } from '../healthcheck.ts';
import { cidrContains, isIPv4 } from '../ip.ts';
import { Histogram, type ProxyMetricsSnapshot } from '../metrics.ts';
import type { ServiceChange } from '../plan.ts';
import type { ProxyEventHandler } from '../proxier.ts';
import { SYSCTL_BRIDGE_NF_CALL_IPTABLES, SYSCTL_IP_FORWARD, type Sysctl, ensureSysctls } from '../sysctl.ts';
import { SyncThrottle } from '../throttle.ts';
import { type EndpointSliceV1beta1, type NodeInfo, endpointsPortKey } from '../types.ts';
import { type NftExecutor, NftError } from './executor.ts';
import { parseNftTable } from './listing.ts';
import { CANARY, NftNamer } from './names.ts';
import { type NftStats, NftState, planFull, planPartial } from './plan.ts';
import { type NftContext, type NftServicePort, buildNftServicePort } from './ruleset.ts';

export interface NftProxyOptions {
  config: ProxyConfig;
  node: { name: string; ip?: string; ips?: readonly string[]; labels?: Readonly<Record<string, string>> };
  executor: NftExecutor;
  sysctl?: Sysctl;
  conntrack?: Conntrack;
  healthServer?: ServiceHealthServer;
  log: Logger;
  clock?: Clock;
  onSync?: (report: NftSyncReport) => void;
}

export interface NftSyncReport {
  kind: 'full' | 'partial' | 'noop' | 'skipped';
  fellBack: boolean;
  durationMs: number;
  /** Building objects and planning the transaction (pure part). */
  buildMs: number;
  /** `nft list table` + parsing it (full syncs only). */
  saveMs: number;
  /** `nft -f -`: process start, parse, kernel commit. */
  restoreMs: number;
  restoreBytes: number;
  stats: NftStats | undefined;
  changedServices: number;
}

export class NftablesProxy implements ProxyEventHandler {
  readonly serviceTracker: ServiceChangeTracker;
  readonly endpointsTracker: EndpointsChangeTracker;
  private readonly changes: ChangeSet;
  private readonly cfg: ProxyConfig;
  private readonly executor: NftExecutor;
  private readonly sysctl: Sysctl | undefined;
  private readonly conntrack: Conntrack | undefined;
  private readonly healthServer: ServiceHealthServer | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly onSync: ((r: NftSyncReport) => void) | undefined;
  private readonly namer = new NftNamer();
  private readonly throttle: SyncThrottle;
  private readonly runner: SyncRunner;
  private node: NodeInfo;
  private readonly state = new NftState();
  /** Per Service, its objects as last built and the inputs they came from (identity): unchanged inputs are not rebuilt. */
  private built = new Map<string, { ports: readonly unknown[]; eps: unknown; ctxKey: string; objs: NftServicePort[] }>();
  private needFullSync = true;
  private needFullSince: number;
  private lastFullSyncAt = 0;
  private recreatedBaseChains = false;
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
  private lastReport: NftSyncReport | undefined;
  private syncsTotal = { full: 0, partial: 0, noop: 0 };
  private failures = 0;
  private partialFailures = 0;
  private conntrackDeleted = 0;
  private canaryFullSyncs = 0;
  private noLocal = { internal: 0, external: 0 };

  constructor(opts: NftProxyOptions) {
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

  // ---- informer side (as ServiceProxy) ---------------------------------------------------------------------

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
    this.markFullSync();
    this.requestSync();
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  /** Sets ip_forward / bridge-nf-call-iptables (not route_localnet: no localhost NodePorts), starts the loop and canary. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.sysctl && this.cfg.setSysctls) {
      await ensureSysctls(
        this.sysctl,
        [
          { key: SYSCTL_IP_FORWARD, value: '1', required: false, why: 'forward Service traffic to pods' },
          { key: SYSCTL_BRIDGE_NF_CALL_IPTABLES, value: '1', required: false, optionalKey: true, why: 'bridged pod-to-Service traffic must traverse netfilter' },
        ],
        this.log,
      );
    }
    let version = '';
    try {
      version = await this.executor.version();
    } catch (err: unknown) {
      this.log.warn({ err: errorMessage(err) }, 'cannot read nft version');
    }
    this.log.info(
      { mode: 'nftables', nft: version, minSyncPeriodMs: this.cfg.minSyncPeriodMs, syncPeriodMs: this.cfg.syncPeriodMs, localhostNodePorts: false },
      'service proxy starting',
    );
    this.runner.start();
    this.canaryTimer = setInterval(() => void this.checkCanary(), this.cfg.syncPeriodMs);
    this.canaryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.runner.stop();
    this.abort.abort(new Error('proxy stopped'));
    if (this.canaryTimer) clearInterval(this.canaryTimer);
    await this.exclusive.catch(() => {});
    await this.healthServer?.close();
  }

  /** Runs one sync now (not rate limited), after any sync in progress. Tests and benchmarks use it. */
  syncNow(): Promise<NftSyncReport> {
    return this.syncOnce(this.abort.signal);
  }

  /** Forces the next sync to be full (tests, benchmarks). */
  requestFullSync(): void {
    this.markFullSync();
  }

  healthy(): boolean {
    const pending = this.changes.oldestPendingAt();
    const since = this.needFullSync ? Math.min(this.needFullSince, pending ?? Infinity) : pending;
    if (since === undefined) return true;
    return this.clock.now() - since <= this.cfg.healthTimeoutMs;
  }

  metrics(): ProxyMetricsSnapshot {
    const r = this.lastReport;
    let servicePorts = 0;
    let rules = 0;
    for (const ports of this.state.services.values()) {
      servicePorts += ports.length;
      for (const p of ports) for (const c of p.chains) rules += c.rules.length;
    }
    return {
      backend: 'nftables',
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
        rulesDeleted: 0,
        rulesInserted: 0,
      },
      iptablesRulesTotal: { filter: 0, nat: rules },
      natChainsTotal: this.state.chains.size,
      services: this.state.services.size,
      servicePorts,
      endpoints: this.endpointsTracker.totalEndpoints,
      largeClusterMode: false,
      syncsTotal: { ...this.syncsTotal },
      iptablesRestoreFailuresTotal: this.failures,
      iptablesPartialRestoreFailuresTotal: this.partialFailures,
      syncProxyRulesNoLocalEndpointsTotal: { ...this.noLocal },
      conntrackEntriesDeletedTotal: this.conntrackDeleted,
      canaryFullSyncsTotal: this.canaryFullSyncs,
    };
  }

  // ---- sync ------------------------------------------------------------------------------------------------

  private requestSync(): void {
    if (this.started && !this.stopped) this.runner.trigger();
  }

  private markFullSync(): void {
    if (!this.needFullSync) this.needFullSince = this.clock.now();
    this.needFullSync = true;
  }

  private context(): NftContext {
    const nodePortIPs: string[] = [];
    if (this.cfg.nodePortAddresses.length > 0) {
      for (const ip of this.node.ips) if (this.cfg.nodePortAddresses.some((c) => cidrContains(c, ip)) && !nodePortIPs.includes(ip)) nodePortIPs.push(ip);
      // An empty set would mean "all" to buildSetup: keep the filter closed with an address no packet carries.
      if (nodePortIPs.length === 0) nodePortIPs.push('0.0.0.0');
    }
    return {
      namer: this.namer,
      masqueradeMark: 2 ** this.cfg.masqueradeBit,
      masqueradeAll: this.cfg.masqueradeAll,
      clusterCIDR: this.cfg.clusterCIDR,
      nodePortIPs,
      nodeIP: this.node.ip,
      nodeLabels: this.node.labels,
    };
  }

  private contextKey(ctx: NftContext): string {
    const { namer: _n, ...rest } = ctx;
    return JSON.stringify(rest);
  }

  private buildService(name: string, ctx: NftContext, ctxKey: string): NftServicePort[] {
    const ports = this.serviceTracker.get(name);
    if (ports.length === 0) {
      this.built.delete(name);
      return [];
    }
    const eps = this.endpointsTracker.get(name);
    const b = this.built.get(name);
    if (b !== undefined && b.ports === ports && b.eps === eps && b.ctxKey === ctxKey) return b.objs;
    const objs = ports.map((p) => buildNftServicePort(p, eps.get(endpointsPortKey(p.portName, p.protocol)) ?? [], ctx));
    this.built.set(name, { ports, eps, ctxKey, objs });
    return objs;
  }

  private syncOnce(signal: AbortSignal): Promise<NftSyncReport> {
    const run = this.exclusive.catch(() => {}).then(() => this.doSync(signal));
    this.exclusive = run;
    return run;
  }

  private async doSync(signal: AbortSignal): Promise<NftSyncReport> {
    const t0 = performance.now();
    const report: NftSyncReport = { kind: 'skipped', fellBack: false, durationMs: 0, buildMs: 0, saveMs: 0, restoreMs: 0, restoreBytes: 0, stats: undefined, changedServices: 0 };
    if (!this.servicesSynced || !this.endpointsSynced) return report;
    const batch = this.changes.peek();
    report.changedServices = batch.services.size;
    const ctx = this.context();
    const ctxKey = this.contextKey(ctx);
    let full = this.needFullSync || ctxKey !== this.appliedContextKey || this.clock.now() - this.lastFullSyncAt >= this.cfg.fullSyncPeriodMs;
    let changes: ServiceChange[] = [];
    if (!full) {
      try {
        changes = await this.partialSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        if (signal.aborted) throw err;
        this.partialFailures++;
        this.failures++;
        this.log.warn({ err, ...nftErrorFields(err) }, 'partial nft transaction failed, falling back to a full sync');
        report.fellBack = true;
        full = true;
        this.markFullSync();
      }
    }
    if (full) {
      try {
        changes = await this.fullSync(batch.services, ctx, ctxKey, report, signal);
      } catch (err: unknown) {
        if (!signal.aborted) {
          this.failures++;
          this.markFullSync();
          if (err instanceof NftError) this.log.warn(nftErrorFields(err), 'nft transaction failed');
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
      this.log[report.kind === 'full' ? 'info' : 'debug'](
        {
          kind: report.kind,
          durationMs: Math.round(report.durationMs),
          listMs: Math.round(report.saveMs),
          nftMs: Math.round(report.restoreMs),
          bytes: report.restoreBytes,
          services: this.state.services.size,
          changed: report.changedServices,
          chainsWritten: report.stats?.chainsWritten,
          elementsAdded: report.stats?.elementsAdded,
          chainsDeleted: report.stats?.chainsDeleted,
        },
        'nftables synced',
      );
    }
    if (batch.services.size > 0 || report.kind === 'full') await this.afterSync(changes);
    this.onSync?.(report);
    return report;
  }

  private async partialSync(services: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<ServiceChange[]> {
    const tb = performance.now();
    const next = new Map<string, readonly NftServicePort[]>();
    const changes: ServiceChange[] = [];
    for (const name of services) {
      const n = this.buildService(name, ctx, ctxKey);
      next.set(name, n);
      changes.push(asServiceChange(this.state.services.get(name) ?? [], n));
    }
    const plan = planPartial(this.state, next, this.clock.now());
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    report.kind = plan.text ? 'partial' : 'noop';
    if (plan.text) {
      const tr = performance.now();
      report.restoreBytes = plan.text.length;
      await this.executor.apply(plan.text, signal);
      report.restoreMs = performance.now() - tr;
    }
    plan.commit();
    return changes;
  }

  private async fullSync(dirty: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<ServiceChange[]> {
    report.kind = 'full';
    const ts = performance.now();
    const observed = parseNftTable(await this.executor.listTable(signal));
    report.saveMs = performance.now() - ts;
    const tb = performance.now();
    if (this.namer.size > 4 * (this.serviceTracker.size + this.endpointsTracker.totalEndpoints) + 1024) this.namer.clear();
    const all = new Map<string, readonly NftServicePort[]>();
    const prevBuilt = this.built;
    this.built = new Map();
    for (const [name] of this.serviceTracker.entries()) {
      const b = prevBuilt.get(name);
      if (b) this.built.set(name, b);
      const n = this.buildService(name, ctx, ctxKey);
      if (n.length > 0) all.set(name, n);
    }
    const plan = planFull({ state: this.state, all, observed, ctx, now: this.clock.now(), recreateBaseChains: !this.recreatedBaseChains });
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    const tr = performance.now();
    report.restoreBytes = plan.text.length;
    for (const text of plan.texts) await this.executor.apply(text, signal);
    report.restoreMs = performance.now() - tr;
    const changes: ServiceChange[] = [];
    if (this.lastFullSyncAt !== 0) for (const name of dirty) changes.push(asServiceChange(this.state.services.get(name) ?? [], all.get(name) ?? []));
    plan.commit();
    this.recreatedBaseChains = true;
    return changes;
  }

  /**
   * Health check listeners and UDP conntrack cleanup, as in the iptables mode. The per-Service summaries are
   * recomputed over all Services (one pass over service ports, well under a millisecond at 10k).
   */
  private async afterSync(changes: ServiceChange[]): Promise<void> {
    const hc = new Map<string, number>();
    const local = new Map<string, number>();
    let noLocalInternal = 0;
    let noLocalExternal = 0;
    // Summaries are cheap next to a sync (one pass over service ports, no allocation per endpoint).
    for (const [name, ports] of this.state.services) {
      for (const p of ports) {
        if (p.noLocalInternal) noLocalInternal++;
        if (p.noLocalExternal) noLocalExternal++;
        if (p.svc.healthCheckNodePort) {
          hc.set(name, p.svc.healthCheckNodePort);
          local.set(name, Math.max(local.get(name) ?? 0, p.localReady));
        }
      }
    }
    this.noLocal = { internal: noLocalInternal, external: noLocalExternal };
    if (this.healthServer) {
      this.healthServer.syncEndpoints(local);
      await this.healthServer.syncServices(hc);
    }
    if (this.conntrack && this.cfg.conntrackCleanup) {
      const deletions = computeConntrackCleanup(changes);
      for (const d of deletions) this.conntrackDeleted += await this.conntrack.delete(d);
    }
  }

  private async checkCanary(): Promise<void> {
    if (this.canaryChecking || this.stopped || this.lastFullSyncAt === 0 || this.needFullSync) return;
    this.canaryChecking = true;
    try {
      const present = await this.executor.canaryPresent(this.abort.signal);
      if (!present && !this.needFullSync) {
        this.log.info({ canary: CANARY }, 'nftables table missing: ruleset was flushed, forcing a full sync');
        this.canaryFullSyncs++;
        this.markFullSync();
        this.runner.trigger();
      }
    } catch (err: unknown) {
      if (!this.stopped) this.log.warn({ err: errorMessage(err) }, 'nftables canary check failed');
    } finally {
      this.canaryChecking = false;
    }
  }

  /** Test hook: runs the canary check once. */
  async checkCanaryNow(): Promise<void> {
    await this.checkCanary();
  }
}

/**
 * computeConntrackCleanup reads only key, svc and reachable of each port, which NftServicePort has with the same
 * meaning as the iptables mode's ServicePortRules.
 */
function asServiceChange(prev: readonly NftServicePort[], next: readonly NftServicePort[]): ServiceChange {
  return { prev, next } as unknown as ServiceChange;
}

function nftErrorFields(err: unknown): Record<string, unknown> {
  if (err instanceof NftError) return { line: err.line, rules: err.context, stderr: err.stderr.slice(0, 2000) };
  return {};
}
