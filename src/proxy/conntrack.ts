// Stale UDP conntrack entries. UDP has no connection teardown: a client that kept sending to a removed endpoint, or
// to a Service while it had no endpoints (REJECT), keeps its conntrack entry and stays blackholed until the entry
// is deleted. Port of pkg/proxy/conntrack/cleanup.go: compute the deletions (pure), then run `conntrack -D`.
import type { Logger } from '../lib/index.ts';
import { inNetns, runCommand } from './exec.ts';
import type { PortChange, ServicePortInfo } from './types.ts';

/** One `conntrack -D -p udp …` call. */
export interface ConntrackDeletion {
  /** --orig-dst */
  origDst?: string;
  /** --dport (original destination port) */
  dport?: number;
  /** --dst-nat: only entries DNATed to this endpoint IP. */
  dstNat?: string;
}

function serviceIPDeletions(svc: ServicePortInfo, out: ConntrackDeletion[]): void {
  for (const ip of [svc.clusterIP, ...svc.externalIPs, ...svc.loadBalancerVIPs]) out.push({ origDst: ip, dport: svc.port });
  if (svc.nodePort) out.push({ dport: svc.nodePort });
}

/**
 * Deletions for a set of Service changes: entries of deleted UDP service ports and of UDP ports that went from
 * no endpoints to some, and entries DNATed to UDP endpoints that are no longer used. Pure, deduplicated.
 */
export function computeConntrackCleanup(changes: Iterable<PortChange>): ConntrackDeletion[] {
  const out: ConntrackDeletion[] = [];
  for (const c of changes) {
    const next = new Map(c.next.map((p) => [p.key, p]));
    const prev = new Map(c.prev.map((p) => [p.key, p]));
    for (const p of c.prev) {
      if (p.svc.protocol !== 'UDP') continue;
      const n = next.get(p.key);
      if (!n) {
        serviceIPDeletions(p.svc, out);
        continue;
      }
      const still = new Set(n.reachable.map((e) => e.endpoint));
      for (const e of p.reachable) {
        if (still.has(e.endpoint)) continue;
        for (const ip of [n.svc.clusterIP, ...n.svc.externalIPs, ...n.svc.loadBalancerVIPs]) out.push({ origDst: ip, dstNat: e.ip });
        if (n.svc.nodePort) out.push({ dport: n.svc.nodePort, dstNat: e.ip });
      }
    }
    for (const n of c.next) {
      if (n.svc.protocol !== 'UDP' || n.reachable.length === 0) continue;
      const p = prev.get(n.key);
      if (!p || p.reachable.length === 0) serviceIPDeletions(n.svc, out);
    }
  }
  const seen = new Set<string>();
  return out.filter((d) => {
    const k = `${d.origDst ?? ''}|${d.dport ?? ''}|${d.dstNat ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function conntrackArgs(d: ConntrackDeletion): string[] {
  const a = ['conntrack', '-D', '-p', 'udp'];
  if (d.origDst) a.push('--orig-dst', d.origDst);
  if (d.dport) a.push('--dport', String(d.dport));
  if (d.dstNat) a.push('--dst-nat', d.dstNat);
  return a;
}

/** Consumer-side contract: delete matching entries, resolve with how many were deleted. Never rejects. */
export interface Conntrack {
  delete(d: ConntrackDeletion): Promise<number>;
}

export function createConntrack(opts: { netns?: string; log: Logger }): Conntrack {
  return {
    async delete(d) {
      try {
        const r = await runCommand(inNetns(opts.netns, conntrackArgs(d)), { timeoutMs: 10_000 });
        const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
        // Exit code 1 with "0 flow entries" just means nothing matched.
        if (m) return Number(m[1]);
        if (r.code !== 0) opts.log.warn({ args: conntrackArgs(d).join(' '), stderr: r.stderr.trim() }, 'conntrack delete failed');
        return 0;
      } catch (err: unknown) {
        opts.log.warn({ err, args: conntrackArgs(d).join(' ') }, 'conntrack delete failed');
        return 0;
      }
    },
  };
}
