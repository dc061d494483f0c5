// `berth rules SERVICE`: the rules of one Service, found in iptables-save output (pure; runRules reads it). Rules in the shared
// chains are found by their comment ("ns/name:port cluster IP", "ns/name has no endpoints", …; kept even in
// large-cluster mode), then the jumps are followed through its KUBE-SVC/SVL/EXT/FW/SEP chains.
import type { Logger } from '../lib/index.ts';
import { NotFoundError } from '../lib/index.ts';
import { type BackendChoice, createIptablesExecutor } from './executor.ts';
import { EXT_PREFIX, FW_PREFIX, KUBE_EXTERNAL_SERVICES, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL, KUBE_SERVICES, SEP_PREFIX, SVC_PREFIX,
  SVL_PREFIX, isServiceChainName } from './chain-names.ts';
import { parseIptablesSave, ruleComment, ruleTarget } from './iptables-save.ts';

export interface ServiceRules {
  service: string;
  tables: { table: string; chains: { chain: string; kind: string; rules: string[] }[] }[];
}

const SEED_CHAINS = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_EXTERNAL_SERVICES, KUBE_PROXY_FIREWALL];

function matchesService(comment: string | undefined, service: string): boolean {
  if (comment === undefined) return false;
  if (comment === service || comment.startsWith(`${service} `)) return true;
  // "ns/name" also selects every named port; "ns/name:port" selects one.
  return !service.includes(':') && comment.startsWith(`${service}:`);
}

function chainKind(chain: string, rules: string[]): string {
  if (chain.startsWith(SVC_PREFIX)) return 'service, Cluster policy';
  if (chain.startsWith(SVL_PREFIX)) return 'service, Local policy';
  if (chain.startsWith(EXT_PREFIX)) return 'external destinations';
  if (chain.startsWith(FW_PREFIX)) return 'load balancer source ranges';
  if (chain.startsWith(SEP_PREFIX)) {
    const dnat = rules.map((r) => /--to-destination (\S+)/.exec(r)?.[1]).find(Boolean);
    return dnat ? `endpoint ${dnat}` : 'endpoint';
  }
  return 'shared';
}

/**
 * The chains and rules of one Service ("ns/name", or "ns/name:port" for one port).
 * Throws NotFoundError when no rule mentions it.
 */
export function findServiceRules(saveText: string, service: string): ServiceRules {
  const state = parseIptablesSave(saveText);
  const result: ServiceRules = { service, tables: [] };
  for (const table of ['filter', 'nat']) {
    const t = state.get(table);
    if (!t) continue;
    const chains: ServiceRules['tables'][number]['chains'] = [];
    const queue: string[] = [];
    const seen = new Set<string>();
    for (const chain of SEED_CHAINS) {
      const rules = (t.chains.get(chain) ?? []).filter((l) => matchesService(ruleComment(l), service));
      if (rules.length === 0) continue;
      chains.push({ chain, kind: 'shared', rules });
      for (const r of rules) {
        const target = ruleTarget(r);
        if (target && isServiceChainName(target) && !seen.has(target)) {
          seen.add(target);
          queue.push(target);
        }
      }
    }
    while (queue.length > 0) {
      const chain = queue.shift()!;
      const rules = t.chains.get(chain) ?? [];
      chains.push({ chain, kind: chainKind(chain, rules), rules });
      for (const r of rules) {
        const target = ruleTarget(r);
        if (target && isServiceChainName(target) && !seen.has(target)) {
          seen.add(target);
          queue.push(target);
        }
      }
    }
    if (chains.length > 0) result.tables.push({ table, chains });
  }
  if (result.tables.length === 0) throw new NotFoundError(`no iptables rules for service ${service}`);
  return result;
}

/** Human-readable form of findServiceRules. Throws NotFoundError like it. */
export function describeServiceRules(saveText: string, service: string): string {
  const r = findServiceRules(saveText, service);
  const out: string[] = [`Service ${service}`];
  for (const t of r.tables) {
    out.push('', `table ${t.table}:`);
    for (const c of t.chains) {
      out.push(`  ${c.chain}  (${c.kind})`);
      if (c.rules.length === 0) out.push('    (no rules)');
      for (const rule of c.rules) out.push(`    ${rule}`);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * `berth rules SERVICE`: reads iptables-save of the chosen backend (auto = the one berth would use) and describes
 * one Service. Throws NotFoundError when nothing mentions it, RestoreFailedError when iptables-save fails.
 */
export async function runRules(opts: { service: string; backend: BackendChoice; netns?: string; log: Logger }): Promise<string> {
  const executor = await createIptablesExecutor({ backend: opts.backend, netns: opts.netns, log: opts.log });
  return describeServiceRules(await executor.save(), opts.service);
}
