// The service proxy in nftables mode (`--proxy-mode nftables`): informer events → the same change trackers as the
// iptables mode → (rate-limited) sync → one nf_tables transaction into berth's own `ip kube-proxy` table, sent as
// netlink messages (netlink/: encoded here, moved by a small python3 helper) or, without python3, as `nft -f -`.
// The fixed setup is always written with nft.
//
// The committed state is kept in memory (NftState), so a partial sync writes only the changed Services' chains
// and map elements and never lists the table. A full sync (the first, the periodic one every fullSyncPeriodMs,
// after the canary chain vanished, after a failure or a change of node/config) first asks the kernel for the
// ruleset generation: when it is the one berth's own last commit produced, and every commit since berth last
// listed the table was berth's own (each netlink commit echoes its generation; an nft write is bracketed by two
// reads), nothing else has touched nf_tables in this namespace, so the table is what NftState says and the full
// sync only writes what differs from it — no listing, no nft. Otherwise it lists the table once and fixes what
// differs. Pending changes are cleared only after the transaction succeeded; a failed partial sync falls back to
// a full one at once. Behaviour follows upstream pkg/proxy/nftables/proxier.go, which does not serve NodePorts on
// 127.0.0.0/8 (no route_localnet): neither does berth in this mode.
import { errorMessage } from '../../lib/index.ts';
import { ServiceBuildCache } from '../build-cache.ts';
import { ProxyFrontend, type ProxyModeOptions } from '../frontend.ts';
import { cidrContains } from '../ip.ts';
import type { AppliedFigures, ProxySyncReport } from '../metrics.ts';
import { SYSCTL_BRIDGE_NF_CALL_IPTABLES, SYSCTL_IP_FORWARD, ensureSysctls } from '../sysctl.ts';
import { type NftExecutor, NftError } from './executor.ts';
import { parseNftTable } from './listing.ts';
import { CANARY_CHAIN, NftNamer } from './names.ts';
import { AnonSetNameClashError } from './errors.ts';
import type { CommitResult, NftNetlink } from './netlink/client.ts';
import type { EncodedBatch } from './netlink/encode.ts';
import { encodeOps } from './netlink/ops.ts';
import { NetlinkUnavailableError } from './netlink/transport.ts';
import { type NftOp, type NftPlan, type NftStats, NftState, opsText, planFull, planPartial } from './plan.ts';
import type { PortChange } from '../types.ts';
import { type NftContext, type NftServicePort, buildNftServicePort } from './ruleset.ts';

/**
 * Rules per netlink transaction of a large full sync (plan.ts splits it; the nft path keeps plan.ts's 5000). The
 * kernel walks the whole pending transaction for each anonymous set a rule binds (__nft_set_trans_bind), so batches
 * of a few hundred Services spare most of it: 10k Services, concrete set names, 1667 Services per batch 8.4 s,
 * 500 per batch 6.6 s (standalone, load average 6).
 */
const NETLINK_CHUNK_RULES = 1500;

/** The generation after `g` (the kernel skips 0 when the u32 wraps). */
function nextGeneration(g: number): number {
  return g >= 0xffffffff ? 1 : g + 1;
}

export type NftProxyOptions = ProxyModeOptions<NftExecutor, NftStats>;
export type NftSyncReport = ProxySyncReport<NftStats>;

export class NftablesProxy extends ProxyFrontend<NftExecutor, NftStats, NftContext> {
  private readonly namer = new NftNamer();
  private readonly state = new NftState();
  private readonly cache = new ServiceBuildCache({ services: this.serviceTracker, endpoints: this.endpointsTracker, buildPort: buildNftServicePort });
  private recreatedBaseChains = false;
  private nl: NftNetlink | undefined;
  /**
   * The ruleset generation berth's last commit produced, while every generation since the table was last listed
   * was berth's own commit; undefined when that chain is broken (someone else committed, a write failed, no netlink).
   */
  private trustedGeneration: number | undefined;
  private lastTransport: 'netlink' | 'nft' | 'none' = 'none';
  private netlinkFallbackLogged = false;
  private readonly writes = { netlink: 0, nft: 0, setup: 0 };
  private basis: 'generation' | 'listing' | 'none' = 'none';

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
    this.nl = await this.executor.netlink?.();
    if (!this.nl && this.executor.netlink) this.log.warn({ reason: this.executor.netlinkUnavailable }, 'nftables netlink path unavailable, writing rules with nft');
    this.log.info(
      { mode: 'nftables', nft: version, transport: this.nl ? 'netlink' : 'nft', minSyncPeriodMs: this.cfg.minSyncPeriodMs, syncPeriodMs: this.cfg.syncPeriodMs, localhostNodePorts: false },
      'service proxy starting',
    );
    this.startLoop();
  }

  /** Forces the next sync to be full (tests, benchmarks). */
  requestFullSync(): void {
    this.markFullSync();
  }

  /** Which transport the last sync wrote with ('none': it wrote nothing). */
  get transport(): 'netlink' | 'nft' | 'none' {
    return this.lastTransport;
  }

  /**
   * What the last full sync compared against: 'generation' (the kernel's generation proved the table is what berth
   * committed; nothing was listed) or 'listing' (`nft list table`).
   */
  get fullSyncBasis(): 'generation' | 'listing' | 'none' {
    return this.basis;
  }

  /** Transactions written so far: per-service ones through netlink or nft, and fixed setups (always nft). */
  get transactionCounts(): { netlink: number; nft: number; setup: number } {
    return { ...this.writes };
  }

  /** Stops the loop, then the netlink helper. */
  override async stop(): Promise<void> {
    await super.stop();
    this.executor.close?.();
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
    report.kind = plan.transactions.length > 0 ? 'partial' : 'noop';
    this.lastTransport = 'none';
    await this.applyPlan(plan, report, signal);
    return changes;
  }

  /** Applies a plan's transactions (timed into the report), then makes them the committed state. */
  private async applyPlan(plan: NftPlan, report: NftSyncReport, signal: AbortSignal): Promise<void> {
    if (plan.transactions.length > 0) {
      const tr = performance.now();
      report.restoreBytes = await this.applyTransactions(plan.transactions, signal);
      report.restoreMs = performance.now() - tr;
    }
    plan.commit();
  }

  /**
   * Writes transactions in order: netlink when it is up and the steps are in the encoder's vocabulary, nft
   * otherwise (and always for the fixed setup, as a transaction of its own ahead of the rest). Keeps the generation
   * chain (trustedGeneration) intact only while each commit is the one right after the last. Returns the bytes sent.
   */
  private async applyTransactions(txs: readonly NftOp[][], signal: AbortSignal): Promise<number> {
    let bytes = 0;
    try {
      for (const ops of txs) {
        let rest = ops;
        if (this.nl && ops[0]?.op === 'setup') {
          const text = opsText([ops[0]]);
          bytes += text.length;
          await this.applyText(text, signal);
          this.writes.setup++;
          rest = ops.slice(1);
        }
        if (rest.length === 0) continue;
        if (this.nl) {
          const r = encodeOps(rest, this.nl.newBatch());
          if ('batch' in r) {
            if (!r.batch) continue;
            bytes += r.batch.bytes.length;
            const { generation } = await this.commitNetlink(this.nl, rest, r.batch, signal);
            this.chainGeneration(generation);
            this.lastTransport = 'netlink';
            this.writes.netlink++;
            continue;
          }
          if (!this.netlinkFallbackLogged) {
            this.netlinkFallbackLogged = true;
            this.log.warn({ unsupported: r.unsupported }, 'nftables netlink encoder cannot write a rule, writing that transaction with nft');
          }
        }
        const text = opsText(rest);
        bytes += text.length;
        await this.applyText(text, signal);
        this.writes.nft++;
      }
    } catch (err: unknown) {
      this.trustedGeneration = undefined;
      this.dropNetlinkIfGone(err);
      throw err;
    }
    return bytes;
  }

  /**
   * Commits an encoded batch; when the kernel refused one of its anonymous-set names (a set of that name is already
   * in the table: another writer, or a clock set back), encodes the same steps once more under the fresh names the
   * client moved on to and commits that.
   */
  private async commitNetlink(nl: NftNetlink, ops: readonly NftOp[], batch: EncodedBatch, signal: AbortSignal): Promise<CommitResult> {
    try {
      return await nl.commit(batch, signal);
    } catch (err: unknown) {
      if (!(err instanceof AnonSetNameClashError)) throw err;
      this.log.warn({ err: errorMessage(err) }, 'nftables anonymous set name taken, retrying with fresh names');
      const again = encodeOps(ops, nl.newBatch());
      if (!('batch' in again) || !again.batch) throw err;
      return nl.commit(again.batch, signal);
    }
  }

  /** The helper can no longer be started (python3 removed under a running berth): later syncs write with nft. */
  private dropNetlinkIfGone(err: unknown): void {
    if (!(err instanceof NetlinkUnavailableError) || !this.nl) return;
    this.nl = undefined;
    this.log.warn({ err: errorMessage(err) }, 'nftables netlink path unavailable, writing rules with nft');
  }

  /** One `nft -f` transaction, bracketed by two generation reads when netlink is up (see trustedGeneration). */
  private async applyText(text: string, signal: AbortSignal): Promise<void> {
    const before = this.nl ? await this.nl.generation(signal) : undefined;
    await this.executor.apply(text, signal);
    if (this.lastTransport !== 'netlink') this.lastTransport = 'nft';
    if (!this.nl || before === undefined || before !== this.trustedGeneration) {
      this.trustedGeneration = undefined;
      return;
    }
    const after = await this.nl.generation(signal);
    this.chainGeneration(after);
  }

  private chainGeneration(generation: number | undefined): void {
    const prev = this.trustedGeneration;
    this.trustedGeneration = prev !== undefined && generation !== undefined && generation === nextGeneration(prev) ? generation : undefined;
  }

  protected override async fullSync(dirty: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<PortChange<NftServicePort>[]> {
    report.kind = 'full';
    this.lastTransport = 'none';
    const ts = performance.now();
    let generation: number | undefined;
    try {
      generation = this.nl ? await this.nl.generation(signal) : undefined;
    } catch (err: unknown) {
      this.dropNetlinkIfGone(err);
      throw err;
    }
    if (generation !== undefined && generation === this.trustedGeneration && ctxKey === this.appliedContextKey && this.lastFullSyncAt !== 0) {
      report.saveMs = performance.now() - ts;
      this.basis = 'generation';
      return this.verifiedFullSync(dirty, ctx, ctxKey, report, signal);
    }
    this.basis = 'listing';
    const observed = parseNftTable(await this.executor.listTable(signal));
    // The listing reflects generation `generation` only if nobody committed while nft read it.
    this.trustedGeneration = this.nl && generation !== undefined && (await this.nl.generation(signal)) === generation ? generation : undefined;
    report.saveMs = performance.now() - ts;
    const tb = performance.now();
    if (this.namer.size > 4 * (this.serviceTracker.size + this.endpointsTracker.totalEndpoints) + 1024) this.namer.clear();
    const all = this.cache.all(ctx, ctxKey);
    const plan = planFull({ state: this.state, all, observed, ctx, now: this.clock.now(), recreateBaseChains: !this.recreatedBaseChains, chunkRules: this.nl ? NETLINK_CHUNK_RULES : undefined });
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    const tr = performance.now();
    report.restoreBytes = await this.applyTransactions(plan.transactions, signal);
    report.restoreMs = performance.now() - tr;
    const changes: PortChange<NftServicePort>[] = [];
    if (this.lastFullSyncAt !== 0) for (const name of dirty) changes.push({ prev: this.state.services.get(name) ?? [], next: all.get(name) ?? [] });
    plan.commit();
    this.recreatedBaseChains = true;
    return changes;
  }

  /**
   * A full sync when the generation proves the table is what NftState holds: every Service is rebuilt (from the
   * build cache) and compared with the committed state; only what differs is written, as a partial sync would.
   */
  private async verifiedFullSync(dirty: ReadonlySet<string>, ctx: NftContext, ctxKey: string, report: NftSyncReport, signal: AbortSignal): Promise<PortChange<NftServicePort>[]> {
    const tb = performance.now();
    const all = this.cache.all(ctx, ctxKey);
    const next = new Map<string, readonly NftServicePort[]>();
    for (const [name, ports] of all) if (this.state.services.get(name) !== ports) next.set(name, ports);
    for (const name of this.state.services.keys()) if (!all.has(name)) next.set(name, []);
    const changes: PortChange<NftServicePort>[] = [];
    for (const name of dirty) changes.push({ prev: this.state.services.get(name) ?? [], next: all.get(name) ?? [] });
    const plan = planPartial(this.state, next, this.clock.now());
    report.buildMs = performance.now() - tb;
    report.stats = plan.stats;
    await this.applyPlan(plan, report, signal);
    return changes;
  }

  protected override logSynced(report: NftSyncReport): void {
    this.log[report.kind === 'full' ? 'info' : 'debug'](
      {
        kind: report.kind,
        transport: this.lastTransport,
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
