// Network counters of a network namespace from /proc/<pid>/net/dev (the sandbox's pid for a pod, our own for
// the node), as cAdvisor's container/libcontainer/handler.go scanInterfaceStats: two header lines, then
// "iface: rx bytes packets errs drop fifo frame compressed multicast | tx bytes packets errs drop fifo colls carrier compressed".
import type { InterfaceSample } from './types.ts';

/** Interfaces cAdvisor leaves out of container network stats (lo, and host-side ends of pod links on the node). */
const IGNORED = /^(lo|veth.*|docker\d*|br-.*|cni\d*|flannel.*|cali.*|tunl\d*|virbr.*)$/;

export function parseNetDev(text: string | undefined, opts: { keepAll?: boolean } = {}): InterfaceSample[] {
  const out: InterfaceSample[] = [];
  for (const line of (text ?? '').split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!opts.keepAll && IGNORED.test(name)) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16) continue;
    out.push({
      name,
      rxBytes: f[0]!,
      rxPackets: f[1]!,
      rxErrors: f[2]!,
      rxDropped: f[3]!,
      txBytes: f[8]!,
      txPackets: f[9]!,
      txErrors: f[10]!,
      txDropped: f[11]!,
    });
  }
  return out;
}

/** Name of the default-route interface from /proc/net/route (destination 00000000). */
export function parseDefaultRoute(text: string | undefined): string | undefined {
  for (const line of (text ?? '').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === '00000000' && f[0]) return f[0];
  }
  return undefined;
}
