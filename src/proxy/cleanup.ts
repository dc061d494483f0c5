// `berth cleanup`: remove every rule and chain the proxy creates, and nothing else (upstream CleanupLeftovers).
// Jumps from built-in chains into berth's chains are deleted by their exact saved text; berth's chains are
// flushed and deleted in one restore per backend. A berth chain that a foreign (non built-in) chain still jumps
// to is left in place and reported, since deleting it would fail the whole restore.
import type { Logger } from '../lib/index.ts';
import { errorMessage } from '../lib/index.ts';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  isServiceChainName,
} from './chain-names.ts';
import { type BackendChoice, type IptablesBackend, type IptablesExecutor, createIptablesExecutor, resolveBinaries } from './executor.ts';
import { type SavedState, parseIptablesSave, ruleTarget } from './iptables-save.ts';
import { deleteTable, nftInstalled } from './nftables/executor.ts';
import { T as NFT_TABLE } from './nftables/names.ts';

const MANAGED: Record<string, readonly string[]> = {
  nat: [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_PROXY_CANARY],
  filter: [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL, KUBE_FIREWALL, KUBE_PROXY_CANARY],
  mangle: [KUBE_PROXY_CANARY],
};
const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** True for a chain name the proxy manages in `table`. */
export function isProxyChain(table: string, chain: string): boolean {
  return (MANAGED[table]?.includes(chain) ?? false) || (table === 'nat' && isServiceChainName(chain));
}

export interface CleanupPlan {
  /** Restore input; "" when nothing of berth's is present. */
  text: string;
  /** "table/chain" removed. */
  chains: string[];
  /** Jump rules removed from built-in chains ("table: -A …"). */
  rules: string[];
  /** "table/chain" left because a foreign chain still jumps to it. */
  kept: string[];
}

/** Pure: what to remove, given iptables-save output. */
export function computeCleanupPlan(observed: SavedState): CleanupPlan {
  const plan: CleanupPlan = { text: '', chains: [], rules: [], kept: [] };
  const out: string[] = [];
  for (const [table, t] of observed) {
    const ours = new Set([...t.chains.keys()].filter((c) => isProxyChain(table, c)));
    if (ours.size === 0) continue;
    const deletes: string[] = [];
    const keep = new Set<string>();
    for (const [chain, lines] of t.chains) {
      if (ours.has(chain)) continue;
      for (const l of lines) {
        const target = ruleTarget(l);
        if (target === undefined || !ours.has(target)) continue;
        if (BUILTIN.has(chain)) {
          deletes.push(`-D${l.slice(2)}`);
          plan.rules.push(`${table}: ${l}`);
        } else keep.add(target);
      }
    }
    // Whatever a kept chain jumps to must stay too.
    for (let changed = keep.size > 0; changed; ) {
      changed = false;
      for (const k of [...keep]) {
        for (const l of t.chains.get(k) ?? []) {
          const target = ruleTarget(l);
          if (target !== undefined && ours.has(target) && !keep.has(target)) {
            keep.add(target);
            changed = true;
          }
        }
      }
    }
    const remove = [...ours].filter((c) => !keep.has(c)).sort();
    for (const k of keep) plan.kept.push(`${table}/${k}`);
    if (remove.length === 0 && deletes.length === 0) continue;
    out.push(`*${table}`);
    // Flush kept chains' neighbours only: a kept chain is not declared, so it keeps its rules.
    for (const c of remove) out.push(`:${c} - [0:0]`);
    out.push(...deletes);
    for (const c of remove) {
      out.push(`-X ${c}`);
      plan.chains.push(`${table}/${c}`);
    }
    out.push('COMMIT');
  }
  plan.text = out.length ? out.join('\n') + '\n' : '';
  return plan;
}

export interface CleanupResult {
  /** `nftables`: the nftables mode's `ip kube-proxy` table (chains lists it when it was deleted). */
  backend: IptablesBackend | 'nftables';
  chains: string[];
  rules: string[];
  kept: string[];
}

/** Removes berth's rules with one executor. Throws RestoreFailedError when iptables fails. */
export async function cleanupWith(executor: IptablesExecutor, signal?: AbortSignal): Promise<CleanupResult> {
  const plan = computeCleanupPlan(parseIptablesSave(await executor.save(undefined, signal)));
  if (plan.text) await executor.restore(plan.text, signal);
  return { backend: executor.backend, chains: plan.chains, rules: plan.rules, kept: plan.kept };
}

export interface RunCleanupOptions {
  /** `all` cleans every installed variant (after switching backends, rules may be left in the other). */
  backend: BackendChoice | 'all';
  netns?: string;
  log: Logger;
  signal?: AbortSignal;
  /** Which proxy modes' rules to remove (default both: switching modes leaves the other mode's rules). */
  modes?: readonly ('iptables' | 'nftables')[];
}

/**
 * Deletes the nftables mode's table (upstream nftables CleanupLeftovers). Returns a result only when there was a
 * table to delete (nothing when nft is not installed or the table is absent).
 */
export async function cleanupNftables(opts: { netns?: string; log: Logger; signal?: AbortSignal }): Promise<CleanupResult | undefined> {
  if (!(await nftInstalled())) return undefined;
  const existed = await deleteTable({ netns: opts.netns, signal: opts.signal });
  opts.log.info({ table: NFT_TABLE, deleted: existed }, 'nftables cleanup done');
  return existed ? { backend: 'nftables', chains: [NFT_TABLE], rules: [], kept: [] } : undefined;
}

/** `berth cleanup`. Logs what it removed per backend; throws the first failure after trying every backend. */
export async function runCleanup(opts: RunCleanupOptions): Promise<CleanupResult[]> {
  const modes = opts.modes ?? ['iptables', 'nftables'];
  const backends: BackendChoice[] = [];
  if (!modes.includes('iptables')) {
    // nftables only
  } else if (opts.backend === 'all') {
    for (const b of ['legacy', 'nft'] as const) if (await resolveBinaries(b)) backends.push(b);
  } else backends.push(opts.backend);
  const results: CleanupResult[] = [];
  let firstError: unknown;
  for (const b of backends) {
    try {
      const ex = await createIptablesExecutor({ backend: b, netns: opts.netns, log: opts.log });
      const r = await cleanupWith(ex, opts.signal);
      results.push(r);
      opts.log.info({ backend: r.backend, chains: r.chains.length, jumpRules: r.rules.length, kept: r.kept }, 'iptables cleanup done');
    } catch (err: unknown) {
      opts.log.error({ err: errorMessage(err), backend: b }, 'iptables cleanup failed');
      firstError ??= err;
    }
  }
  if (modes.includes('nftables')) {
    try {
      const r = await cleanupNftables(opts);
      if (r) results.push(r);
    } catch (err: unknown) {
      opts.log.error({ err: errorMessage(err) }, 'nftables cleanup failed');
      firstError ??= err;
    }
  }
  if (firstError) throw firstError;
  return results;
}
