// The service proxy: informer events → change trackers → (rate-limited) sync → one iptables-restore.
//
// A sync reads the whole desired state from the trackers. The first sync, the periodic one (fullSyncPeriodMs),
// one after the canary chain vanished, after a failure or a change of node/config is *full*: it reconciles every
// berth chain against iptables-save. All others are *partial*: only the chains of Services marked in the
// ChangeSet, against what was last applied. A failed partial restore falls back to a full one at once. Marks are
// cleared only after the restore succeeded. The informer side, the loop and that choice live in frontend.ts (shared
// with the nftables mode); this file builds, plans and applies the iptables rules.
import { ServiceBuildCache } from './build-cache.ts';
import { ChainNamer, KUBE_PROXY_CANARY } from './chain-names.ts';
import { type IptablesExecutor, IptablesRestoreError, supportsRandomFully } from './executor.ts';
import { ProxyFrontend, type ProxyModeOptions } from './frontend.ts';
import { cidrContains } from './ip.ts';
import { parseIptablesSave } from './iptables-save.ts';
import type { AppliedFigures, ProxySyncReport } from './metrics.ts';
import { type PlanStats, type ServiceChange, computeFullSyncPlan, computePartialSyncPlan, countRules } from './plan.ts';
import { type BuildContext, type GlobalRules, type RuleOptions, type ServicePortRules, buildGlobalRules, buildServicePortRules } from './rules.ts';
import {
  SYSCTL_BRIDGE_NF_CALL_IPTABLES,
  SYSCTL_CONNTRACK_TCP_BE_LIBERAL,
  SYSCTL_IP_FORWARD,
  SYSCTL_ROUTE_LOCALNET,
  type SysctlRequirement,
  ensureSysctls,
} from './sysctl.ts';
import type { PortChange } from './types.ts';

export type { ProxyEventHandler } from './frontend.ts';

export type ServiceProxyOptions = ProxyModeOptions<IptablesExecutor, PlanStats>;
export type SyncReport = ProxySyncReport<PlanStats>;

export class ServiceProxy extends ProxyFrontend<IptablesExecutor, PlanStats, BuildContext> {
  private readonly namer = new ChainNamer();
  private readonly cache = new ServiceBuildCache({ services: this.serviceTracker, endpoints: this.endpointsTracker, buildPort: buildServicePortRules });
  private ruleOptions: RuleOptions;
  private randomFully = false;
  private conntrackTCPLiberal = false;
  /** Per Service, its rules as last applied to the kernel. */
  private applied = new Map<string, readonly ServicePortRules[]>();
  private appliedCounts = { filter: 0, nat: 0, natChains: 0, servicePorts: 0 };
  private largeClusterMode = false;

  constructor(opts: ServiceProxyOptions) {
    super(opts, {
      canary: {
        chain: KUBE_PROXY_CANARY,
        missing: 'iptables canary chain missing: tables were flushed, forcing a full sync',
        failed: 'iptables canary check failed',
      },
      partialFailed: 'partial iptables restore failed, falling back to a full sync',
    });
    this.ruleOptions = this.computeRuleOptions();
  }

  protected override onNodeChanged(): void {
    this.ruleOptions = this.computeRuleOptions();
  }

  protected override canaryPresent(signal: AbortSignal): Promise<boolean> {
    return this.executor.chainExists('mangle', KUBE_PROXY_CANARY, signal);
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
    this.startLoop();
  }

  protected override appliedFigures(): AppliedFigures {
    return {
      backend: this.executor.backend,
      iptablesRulesTotal: { filter: this.appliedCounts.filter, nat: this.appliedCounts.nat },
      natChainsTotal: this.appliedCounts.natChains,
      services: this.applied.size,
      servicePorts: this.appliedCounts.servicePorts,
      largeClusterMode: this.largeClusterMode,
    };
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

  protected override buildContext(): BuildContext {
    this.largeClusterMode = this.endpointsTracker.totalEndpoints > this.cfg.largeClusterEndpointsThreshold;
    return { ...this.ruleOptions, namer: this.namer, nodeIP: this.node.ip, nodeLabels: this.node.labels, largeClusterMode: this.largeClusterMode };
  }

  protected override async partialSync(
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
      const n = this.cache.service(name, ctx, ctxKey);
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

  protected override async fullSync(
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
    const next = this.cache.all(ctx, ctxKey);
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

  protected override logSynced(report: SyncReport): void {
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

  protected override errorFields(err: unknown): Record<string, unknown> {
    if (err instanceof IptablesRestoreError) return { line: err.line, rules: err.context };
    return {};
  }

  private adjustCounts(ports: readonly ServicePortRules[], sign: 1 | -1): void {
    const c = countRules(ports, { fixed: [], shared: [], natServicesTail: [], jumps: [] });
    this.appliedCounts.filter += sign * c.filter;
    this.appliedCounts.nat += sign * c.nat;
    this.appliedCounts.natChains += sign * c.natChains;
    this.appliedCounts.servicePorts += sign * ports.length;
  }

  /**
   * After a full sync the summaries are recomputed over every Service; after a partial one only the changed
   * Services' are (a partial sync stays independent of the number of Services).
   */
  protected override updateSummaries(changes: readonly PortChange[], full: boolean, changed: ReadonlySet<string>): void {
    if (full) this.summaries.recomputeAll(this.applied);
    else this.summaries.update(changes, changed, this.applied);
  }
}

function* allPorts(m: ReadonlyMap<string, readonly ServicePortRules[]>): IterableIterator<ServicePortRules> {
  for (const l of m.values()) yield* l;
}

