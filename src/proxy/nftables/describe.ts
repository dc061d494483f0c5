// `berth rules SERVICE` in nftables mode: the map elements and chains of one Service, found in
// `nft list table ip kube-proxy` (pure; runNftRules reads it). Per-service chains carry "ns/name/proto/port" in
// their names, and no-endpoint elements carry "ns/name:port" as their comment, so both are found by name.
import { NotFoundError } from '../../lib/index.ts';
import { CommandNftExecutor } from './executor.ts';
import { parseNftTable } from './listing.ts';
import { T } from './names.ts';

export interface NftServiceRules {
  service: string;
  elements: { set: string; element: string }[];
  chains: { chain: string; rules: string[] }[];
}

/** Throws NotFoundError when nothing in the table belongs to the Service ("ns/name" or "ns/name:port"). */
export function findNftServiceRules(listing: string, service: string): NftServiceRules {
  const t = parseNftTable(listing);
  const [nsName, port] = service.split(':') as [string, string | undefined];
  // "<prefix>HASH8-ns/name/proto/port[__ip/port]"
  const chainMatches = (chain: string): boolean => {
    const m = /^[a-z]+-[A-Z2-7]{8}-(.*)$/.exec(chain);
    if (!m) return false;
    const parts = m[1]!.split('__')[0]!.split('/');
    return `${parts[0]}/${parts[1]}` === nsName && (port === undefined || parts[3] === port);
  };
  const chains = [...t.chains].filter(([name]) => chainMatches(name)).map(([chain, c]) => ({ chain, rules: c.rules }));
  const names = new Set(chains.map((c) => c.chain));
  const elements: NftServiceRules['elements'] = [];
  for (const [set, s] of t.sets) {
    for (const raw of s.raw) {
      const target = /(?:goto|jump) (\S+)$/.exec(raw)?.[1];
      const comment = /comment "([^"]*)"/.exec(raw)?.[1];
      if ((target && names.has(target)) || (comment !== undefined && (comment === service || (!port && comment.startsWith(`${nsName}:`)) || comment === nsName))) {
        elements.push({ set, element: raw });
      }
    }
  }
  if (chains.length === 0 && elements.length === 0) throw new NotFoundError(`no nftables rules for service ${service}`);
  return { service, elements, chains };
}

export function describeNftServiceRules(listing: string, service: string): string {
  const r = findNftServiceRules(listing, service);
  const out = [`Service ${service}`, '', `table ${T}:`];
  for (const e of r.elements) out.push(`  element of ${e.set}: ${e.element}`);
  for (const c of r.chains) {
    out.push(`  chain ${c.chain}`);
    if (c.rules.length === 0) out.push('    (no rules: stale, deleted by the next sync)');
    for (const rule of c.rules) out.push(`    ${rule}`);
  }
  return out.join('\n') + '\n';
}

/** Reads the table (optionally in a network namespace) and describes one Service. */
export async function runNftRules(opts: { service: string; netns?: string }): Promise<string> {
  const listing = await new CommandNftExecutor({ netns: opts.netns }).listTable();
  if (listing === '') throw new NotFoundError(`no nftables table ${T}`);
  return describeNftServiceRules(listing, opts.service);
}
