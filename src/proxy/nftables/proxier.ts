// The service proxy in nftables mode (`--proxy-mode nftables`): informer events → the same change trackers as the
// iptables mode → (rate-limited) sync → one `nft -f -` transaction into berth's own `ip kube-proxy` table.
//
// The committed state is kept in memory (NftState), so a partial sync writes only the changed Services' chains
// and map elements and never lists the table. A full sync (the first, the periodic one every fullSyncPeriodMs,
// after the canary chain vanished, after a failure or a change of node/config) lists the table once and
// fixes what differs. Pending changes are cleared only after the transaction succeeded; a failed partial sync
// falls back to a full one at once. Behaviour follows upstream pkg/proxy/nftables/proxier.go, which does not
// serve NodePorts on 127.0.0.0/8 (no route_localnet): neither does berth in this mode.
import { errorMessage } from '../../lib/index.ts';
import { ServiceBuildCache } from '../build-cache.ts';
import { ProxyFrontend, type ProxyModeOptions } from '../frontend.ts';
import { cidrContains } from '../ip.ts';
import type { AppliedFigures, ProxySyncReport } from '../metrics.ts';
import { SYSCTL_BRIDGE_NF_CALL_IPTABLES, SYSCTL_IP_FORWARD, ensureSysctls } from '../sysctl.ts';
import { type NftExecutor, NftError } from './executor.ts';
import { parseNftTable } from './listing.ts';
import { CANARY_CHAIN, NftNamer } from './names.ts';
import { type NftStats, NftState, planFull, planPartial } from './plan.ts';
import type { PortChange } from '../types.ts';
import { type NftContext, type NftServicePort, buildNftServicePort } from './ruleset.ts';

export type NftProxyOptions = ProxyModeOptions<NftExecutor, NftStats>;
export type NftSyncReport = ProxySyncReport<NftStats>;

export class NftablesProxy extends ProxyFrontend<NftExecutor, NftStats, NftContext> {
  private readonly namer = new NftNamer();
  private readonly state = new NftState();
  private readonly cache = new ServiceBuildCache({ services: this.serviceTracker, endpoints: this.endpointsTracker, buildPort: buildNftServicePort });
  private recreatedBaseChains = false;

  constructor(opts: NftProxyOptions) {
    super(opts, {
      canary: {
        chain: CANARY_CHAIN,
        missing: 'nftables canary chain missing: ruleset was flushed, forcing a full sync',
        failed: 'nftables canary check failed',
      },
      partialFailed: 'partial nft transaction failed, falling back to a full sync',
    });
  }

  protected override canaryPresent(signal: AbortSignal): Promise<boolean> {
    return this.executor.canaryPresent(signal);
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
    this.startLoop();
  }

  /** Forces the next sync to be full (tests, benchmarks). */
  requestFullSync(): void {
    this.markFullSync();
  }

  protected override appliedFigures(): AppliedFigures {
    let servicePorts = 0;
    let rules = 0;
    for (const ports of this.state.services.values()) {
      servicePorts += ports.length;
      for (const p of ports) for (const c of p.chains) rules += c.rules.length;
    }
    return {
      backend: 'nftables',
      iptablesRulesTotal: { filter: 0, nat: rules },
      natChainsTotal: this.state.chains.size,
      services: this.state.services.size,
      servicePorts,
      largeClusterMode: false,
    };
  }

  // ---- sync ------------------------------------------------------------------------------------------------

  protected override buildContext(): NftContext {
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

  protected override async partialSync(services: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<PortChange<NftServicePort>[]> {
    const tb = performance.now();
    const next = new Map<string, readonly NftServicePort[]>();
    const changes: PortChange<NftServicePort>[] = [];
    for (const name of services) {
      const n = this.cache.service(name, ctx, ctxKey);
      next.set(name, n);
      changes.push({ prev: this.state.services.get(name) ?? [], next: n });
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

  protected override async fullSync(dirty: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<PortChange<NftServicePort>[]> {
    report.kind = 'full';
    const ts = performance.now();
    const observed = parseNftTable(await this.executor.listTable(signal));
    report.saveMs = performance.now() - ts;
    const tb = performance.now();
    if (this.namer.size > 4 * (this.serviceTracker.size + this.endpointsTracker.totalEndpoints) + 1024) this.namer.clear();
    const all = this.cache.all(ctx, ctxKey);
    const plan = planFull({ state: this.state, all, observed, ctx, now: this.clock.now(), recreateBaseChains: !this.recreatedBaseChains });
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    const tr = performance.now();
    report.restoreBytes = plan.text.length;
    for (const text of plan.texts) await this.executor.apply(text, signal);
    report.restoreMs = performance.now() - tr;
    const changes: PortChange<NftServicePort>[] = [];
    if (this.lastFullSyncAt !== 0) for (const name of dirty) changes.push({ prev: this.state.services.get(name) ?? [], next: all.get(name) ?? [] });
    plan.commit();
    this.recreatedBaseChains = true;
    return changes;
  }

  protected override logSynced(report: NftSyncReport): void {
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

  protected override errorFields(err: unknown): Record<string, unknown> {
    if (err instanceof NftError) return { line: err.line, rules: err.context, stderr: err.stderr.slice(0, 2000) };
    return {};
  }

  protected override onFullSyncFailed(err: unknown): void {
    if (err instanceof NftError) this.log.warn(this.errorFields(err), 'nft transaction failed');
  }

  /** Recomputed over all Services after every sync (one pass over service ports, well under a millisecond at 10k). */
  protected override updateSummaries(): void {
    this.summaries.recomputeAll(this.state.services);
  }
}
