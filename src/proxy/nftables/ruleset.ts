// The nftables rule builder: (service port, its endpoints, node, config) → the chains, map/set elements and
// affinity sets upstream's nftables mode writes for it (pkg/proxy/nftables/proxier.go syncProxyRules and
// setupNFTables), plus the fixed part of the `ip kube-proxy` table. Pure. Per-service rules are written in the form
// `nft list table` prints them back, so a full sync can compare what it wants with what the kernel holds.
import { categorizeEndpoints, externallyAccessible, externalPolicyLocal, usesClusterEndpoints, usesLocalEndpoints } from '../topology.ts';
import { cidrContains, parseIPv4 } from '../ip.ts';
import type { BuiltServicePort, EndpointInfo, ServicePortInfo } from '../types.ts';
import {
  AFFINITY_PREFIX,
  CLUSTER_IPS_CHECK_CHAIN,
  CLUSTER_IPS_SET,
  ENDPOINT_PREFIX,
  EXTERNAL_PREFIX,
  FIREWALL_CHECK_CHAIN,
  FIREWALL_IPS_MAP,
  FIREWALL_PREFIX,
  LOCAL_PREFIX,
  MARK_MASQ_CHAIN,
  MASQUERADING_CHAIN,
  NO_ENDPOINT_NODEPORTS_MAP,
  NO_ENDPOINT_SERVICES_MAP,
  NODEPORT_ENDPOINTS_CHECK_CHAIN,
  NODEPORT_IPS_SET,
  type NftNamer,
  REJECT_CHAIN,
  SERVICE_ENDPOINTS_CHECK_CHAIN,
  SERVICE_IPS_MAP,
  SERVICE_NODEPORTS_MAP,
  SERVICE_PREFIX,
  SERVICES_CHAIN,
  T,
} from './names.ts';

export interface NftContext {
  namer: NftNamer;
  /** 1 << masqueradeBit, e.g. 0x4000. */
  masqueradeMark: number;
  masqueradeAll: boolean;
  /** Pod CIDR: traffic to a ClusterIP from outside it is masqueraded; pod traffic short-circuits eTP=Local. */
  clusterCIDR: string | undefined;
  /** NodePorts only on these IPs (the nodeport-ips set); empty = every local address but 127.0.0.0/8. */
  nodePortIPs: readonly string[];
  nodeIP: string;
  nodeLabels: Readonly<Record<string, string>>;
}

/** One element of a set (value '') or verdict map. `key` as nft prints it ("10.96.0.1 . tcp . 80"). */
export interface NftElement {
  readonly set: string;
  readonly key: string;
  readonly value: string;
  readonly comment?: string;
}

export interface NftChain {
  readonly name: string;
  readonly rules: readonly string[];
}

export interface NftAffinitySet {
  readonly name: string;
  readonly timeoutSeconds: number;
}

/** Everything one service port contributes to the table. */
export interface NftServicePort extends BuiltServicePort {
  readonly chains: readonly NftChain[];
  readonly elements: readonly NftElement[];
  readonly affinitySets: readonly NftAffinitySet[];
}

export function hexMark(mark: number): string {
  return `0x${mark.toString(16).padStart(8, '0')}`;
}

/** nft prints a /32 prefix as the bare address. */
function nftAddr(cidr: string): string {
  return cidr.endsWith('/32') ? cidr.slice(0, -3) : cidr;
}

/** Builds one service port's objects. Pure. */
export function buildNftServicePort(svc: ServicePortInfo, endpoints: readonly EndpointInfo[], ctx: NftContext): NftServicePort {
  const proto = svc.protocol.toLowerCase();
  const base = ctx.namer.serviceBase(svc);
  const clusterChain = SERVICE_PREFIX + base;
  const localChain = LOCAL_PREFIX + base;
  const externalChain = EXTERNAL_PREFIX + base;
  const fwChain = FIREWALL_PREFIX + base;
  const { cluster, local, allReachable, hasAny } = categorizeEndpoints(endpoints, svc, ctx.nodeLabels);
  const affinity = svc.affinityTimeoutSeconds > 0;

  const chains = new Map<string, string[]>();
  const ensure = (name: string): string[] => {
    let c = chains.get(name);
    if (!c) chains.set(name, (c = []));
    return c;
  };
  const epName = (ep: EndpointInfo): string => ENDPOINT_PREFIX + ctx.namer.endpointBase(svc, ep);
  const afName = (ep: EndpointInfo): string => AFFINITY_PREFIX + ctx.namer.endpointBase(svc, ep);

  for (const ep of allReachable) ensure(epName(ep));
  const usesCluster = cluster.length > 0 && usesClusterEndpoints(svc);
  if (usesCluster) ensure(clusterChain);
  const usesLocal = local.length > 0 && usesLocalEndpoints(svc);
  if (usesLocal) ensure(localChain);

  let internalChain = clusterChain;
  let hasInternal = hasAny;
  if (svc.internalPolicyLocal) {
    internalChain = localChain;
    if (local.length === 0) hasInternal = false;
  }
  let externalPolicyChain = clusterChain;
  let hasExternal = hasAny;
  const eLocal = externalPolicyLocal(svc);
  if (eLocal) {
    externalPolicyChain = localChain;
    if (local.length === 0) hasExternal = false;
  }
  const usesExternal = hasAny && externallyAccessible(svc);
  if (usesExternal) ensure(externalChain);

  let internalVerdict = '';
  let externalVerdict = '';
  if (!hasAny) {
    internalVerdict = `goto ${REJECT_CHAIN}`;
    externalVerdict = `goto ${REJECT_CHAIN}`;
  } else {
    if (!hasInternal) internalVerdict = 'drop';
    if (!hasExternal) externalVerdict = 'drop';
  }

  const elements: NftElement[] = [];
  const comment = svc.nameString;
  const k3 = (ip: string): string => `${ip} . ${proto} . ${svc.port}`;
  elements.push({ set: CLUSTER_IPS_SET, key: svc.clusterIP, value: '' });
  if (hasInternal) elements.push({ set: SERVICE_IPS_MAP, key: k3(svc.clusterIP), value: `goto ${internalChain}` });
  else elements.push({ set: NO_ENDPOINT_SERVICES_MAP, key: k3(svc.clusterIP), value: internalVerdict, comment });

  for (const ip of svc.externalIPs) {
    if (hasAny) elements.push({ set: SERVICE_IPS_MAP, key: k3(ip), value: `goto ${externalChain}` });
    if (!hasExternal) elements.push({ set: NO_ENDPOINT_SERVICES_MAP, key: k3(ip), value: externalVerdict, comment });
  }
  const usesFW = svc.loadBalancerVIPs.length > 0 && (svc.loadBalancerSourceRanges.length > 0 || svc.loadBalancerSourceRangesDenyAll);
  if (usesFW) ensure(fwChain);
  for (const ip of svc.loadBalancerVIPs) {
    if (hasAny) elements.push({ set: SERVICE_IPS_MAP, key: k3(ip), value: `goto ${externalChain}` });
    if (usesFW) elements.push({ set: FIREWALL_IPS_MAP, key: k3(ip), value: `goto ${fwChain}` });
  }
  if (!hasExternal) for (const ip of svc.loadBalancerVIPs) elements.push({ set: NO_ENDPOINT_SERVICES_MAP, key: k3(ip), value: externalVerdict, comment });
  if (svc.nodePort !== 0) {
    const k2 = `${proto} . ${svc.nodePort}`;
    if (hasAny) elements.push({ set: SERVICE_NODEPORTS_MAP, key: k2, value: `goto ${externalChain}` });
    if (!hasExternal) elements.push({ set: NO_ENDPOINT_NODEPORTS_MAP, key: k2, value: externalVerdict, comment });
  }

  // Internal traffic: masquerade off-cluster sources (or everything with masqueradeAll).
  if (hasInternal) {
    if (ctx.masqueradeAll) ensure(internalChain).push(`ip daddr ${svc.clusterIP} ${proto} dport ${svc.port} jump ${MARK_MASQ_CHAIN}`);
    else if (ctx.clusterCIDR) {
      ensure(internalChain).push(`ip daddr ${svc.clusterIP} ${proto} dport ${svc.port} ip saddr != ${nftAddr(ctx.clusterCIDR)} jump ${MARK_MASQ_CHAIN}`);
    }
  }
  if (usesExternal) {
    const ext = ensure(externalChain);
    if (!eLocal) ext.push(`jump ${MARK_MASQ_CHAIN}`);
    else {
      if (ctx.clusterCIDR) ext.push(`ip saddr ${nftAddr(ctx.clusterCIDR)} goto ${clusterChain} comment "short-circuit pod traffic"`);
      ext.push(`fib saddr type local jump ${MARK_MASQ_CHAIN} comment "masquerade local traffic"`);
      ext.push(`fib saddr type local goto ${clusterChain} comment "short-circuit local traffic"`);
    }
    if (hasExternal) ext.push(`goto ${externalPolicyChain}`);
  }
  if (usesFW) {
    const sources = svc.loadBalancerSourceRanges.map(nftAddr);
    if (ctx.nodeIP && svc.loadBalancerSourceRanges.some((c) => cidrContains(c, ctx.nodeIP))) sources.push(...svc.loadBalancerVIPs);
    // nft prints an anonymous interval set sorted by address.
    const at = (s: string): number => parseIPv4(s.split('/')[0]!) ?? 0;
    sources.sort((a, b) => at(a) - at(b));
    ensure(fwChain).push(sources.length > 0 ? `ip saddr != { ${sources.join(', ')} } drop` : 'drop');
  }

  const affinitySets: NftAffinitySet[] = affinity ? allReachable.map((ep) => ({ name: afName(ep), timeoutSeconds: svc.affinityTimeoutSeconds })) : [];
  const toEndpoints = (chain: string, eps: readonly EndpointInfo[]): void => {
    const c = ensure(chain);
    if (affinity) for (const ep of eps) c.push(`ip saddr @${afName(ep)} goto ${epName(ep)}`);
    c.push(`numgen random mod ${eps.length} vmap { ${eps.map((ep, i) => `${i} : goto ${epName(ep)}`).join(', ')} }`);
  };
  if (usesCluster) toEndpoints(clusterChain, cluster);
  if (usesLocal) toEndpoints(localChain, local);
  for (const ep of allReachable) {
    const c = ensure(epName(ep));
    c.push(`ip saddr ${ep.ip} jump ${MARK_MASQ_CHAIN}`);
    if (affinity) c.push(`update @${afName(ep)} { ip saddr }`);
    c.push(`meta l4proto ${proto} dnat to ${ep.ip}:${ep.port}`);
  }

  let localReady = 0;
  for (const ep of endpoints) if (ep.isLocal && ep.ready) localReady++;
  return {
    key: `${svc.nameString}/${svc.protocol}`,
    svc,
    chains: [...chains].map(([name, rules]) => ({ name, rules })),
    elements,
    affinitySets,
    reachable: allReachable,
    localReady,
    noLocalInternal: hasAny && !hasInternal,
    noLocalExternal: hasAny && !hasExternal,
  };
}

// ---- the fixed part of the table -------------------------------------------------------------------------

export interface BaseChain {
  name: string;
  type: 'filter' | 'nat';
  hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  /** Numeric (dstnat = -100, srcnat = 100): nft 1.0.6 accepts "dstnat" only on the prerouting hook. */
  priority: number;
}

/** upstream nftablesBaseChains */
export const BASE_CHAINS: readonly BaseChain[] = [
  { name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 },
  { name: 'filter-input', type: 'filter', hook: 'input', priority: -110 },
  { name: 'filter-forward', type: 'filter', hook: 'forward', priority: -110 },
  { name: 'filter-output', type: 'filter', hook: 'output', priority: -110 },
  { name: 'filter-output-post-dnat', type: 'filter', hook: 'output', priority: -90 },
  { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: -100 },
  { name: 'nat-output', type: 'nat', hook: 'output', priority: -100 },
  { name: 'nat-postrouting', type: 'nat', hook: 'postrouting', priority: 100 },
];

/** upstream nftablesJumpChains: [destination, source, extra match]. */
const JUMP_CHAINS: readonly (readonly [string, string, string])[] = [
  [NODEPORT_ENDPOINTS_CHECK_CHAIN, 'filter-input', 'ct state new '],
  [SERVICE_ENDPOINTS_CHECK_CHAIN, 'filter-input', 'ct state new '],
  [SERVICE_ENDPOINTS_CHECK_CHAIN, 'filter-forward', 'ct state new '],
  [SERVICE_ENDPOINTS_CHECK_CHAIN, 'filter-output', 'ct state new '],
  [FIREWALL_CHECK_CHAIN, 'filter-prerouting', 'ct state new '],
  [FIREWALL_CHECK_CHAIN, 'filter-output', 'ct state new '],
  [SERVICES_CHAIN, 'nat-output', ''],
  [SERVICES_CHAIN, 'nat-prerouting', ''],
  [MASQUERADING_CHAIN, 'nat-postrouting', ''],
  [CLUSTER_IPS_CHECK_CHAIN, 'filter-forward', 'ct state new '],
  [CLUSTER_IPS_CHECK_CHAIN, 'filter-output-post-dnat', 'ct state new '],
];

export const VERDICT_MAPS: readonly { name: string; type: string; comment: string }[] = [
  { name: NO_ENDPOINT_SERVICES_MAP, type: 'ipv4_addr . inet_proto . inet_service : verdict', comment: 'vmap to drop or reject packets to services with no endpoints' },
  { name: NO_ENDPOINT_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict', comment: 'vmap to drop or reject packets to service nodeports with no endpoints' },
  { name: FIREWALL_IPS_MAP, type: 'ipv4_addr . inet_proto . inet_service : verdict', comment: 'destinations that are subject to LoadBalancerSourceRanges' },
  { name: SERVICE_IPS_MAP, type: 'ipv4_addr . inet_proto . inet_service : verdict', comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' },
  { name: SERVICE_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' },
];
/** Every set/map whose elements berth keeps in memory. */
export const ELEMENT_CONTAINERS: readonly string[] = [CLUSTER_IPS_SET, ...VERDICT_MAPS.map((m) => m.name)];

/**
 * The fixed objects (upstream setupNFTables), written on every full sync: base chains (recreated first when
 * `recreateBaseChains`), the dispatch / check / masquerade chains with their rules, and the sets and maps
 * (declared only: their elements are reconciled separately). Pure.
 */
export function buildSetup(ctx: NftContext, opts: { recreateBaseChains: readonly string[] }): string[] {
  const out: string[] = [`add table ${T} { comment "rules for kube-proxy" ; }`];
  for (const name of opts.recreateBaseChains) out.push(`add chain ${T} ${name}`, `flush chain ${T} ${name}`, `delete chain ${T} ${name}`);
  for (const b of BASE_CHAINS) {
    out.push(`add chain ${T} ${b.name} { type ${b.type} hook ${b.hook} priority ${b.priority} ; }`, `flush chain ${T} ${b.name}`);
  }
  const created = new Set<string>();
  const ensure = (c: string): void => {
    if (created.has(c)) return;
    created.add(c);
    out.push(`add chain ${T} ${c}`, `flush chain ${T} ${c}`);
  };
  for (const [dst, src, extra] of JUMP_CHAINS) {
    ensure(dst);
    out.push(`add rule ${T} ${src} ${extra}jump ${dst}`);
  }
  for (const c of [SERVICES_CHAIN, CLUSTER_IPS_CHECK_CHAIN, MASQUERADING_CHAIN, MARK_MASQ_CHAIN]) ensure(c);
  const mark = `0x${ctx.masqueradeMark.toString(16)}`;
  out.push(
    `add rule ${T} ${MARK_MASQ_CHAIN} mark set mark or ${mark}`,
    `add rule ${T} ${MASQUERADING_CHAIN} mark and ${mark} == 0 return`,
    `add rule ${T} ${MASQUERADING_CHAIN} mark set mark xor ${mark}`,
    `add rule ${T} ${MASQUERADING_CHAIN} masquerade fully-random`,
    `add set ${T} ${CLUSTER_IPS_SET} { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add rule ${T} ${CLUSTER_IPS_CHECK_CHAIN} ip daddr @${CLUSTER_IPS_SET} reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add set ${T} ${NODEPORT_IPS_SET} { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
  );
  const nodePortIPs = ctx.nodePortIPs.filter((ip) => !ip.startsWith('127.'));
  const matchAll = ctx.nodePortIPs.length === 0;
  if (matchAll) out.push(`delete set ${T} ${NODEPORT_IPS_SET}`);
  else {
    out.push(`flush set ${T} ${NODEPORT_IPS_SET}`);
    if (nodePortIPs.length > 0) out.push(`add element ${T} ${NODEPORT_IPS_SET} { ${nodePortIPs.join(', ')} }`);
  }
  for (const m of VERDICT_MAPS) out.push(`add map ${T} ${m.name} { type ${m.type} ; comment "${m.comment}" ; }`);
  out.push(
    `add chain ${T} ${REJECT_CHAIN} { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `flush chain ${T} ${REJECT_CHAIN}`,
    `add rule ${T} ${REJECT_CHAIN} reject`,
    `add rule ${T} ${SERVICE_ENDPOINTS_CHECK_CHAIN} ip daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES_MAP}`,
    matchAll
      ? `add rule ${T} ${NODEPORT_ENDPOINTS_CHECK_CHAIN} ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`
      : `add rule ${T} ${NODEPORT_ENDPOINTS_CHECK_CHAIN} ip daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`,
    `add rule ${T} ${FIREWALL_CHECK_CHAIN} ip daddr . meta l4proto . th dport vmap @${FIREWALL_IPS_MAP}`,
    `add rule ${T} ${SERVICES_CHAIN} ip daddr . meta l4proto . th dport vmap @${SERVICE_IPS_MAP}`,
    matchAll
      ? `add rule ${T} ${SERVICES_CHAIN} fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`
      : `add rule ${T} ${SERVICES_CHAIN} ip daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`,
  );
  return out;
}

// ---- statement text --------------------------------------------------------------------------------------

export function elementText(e: NftElement): string {
  return `${e.key}${e.comment ? ` comment "${e.comment}"` : ''}${e.value ? ` : ${e.value}` : ''}`;
}

/** `add element` / `delete element` statements, batched per container (one statement per up to `batch`). */
export function elementStatements(op: 'add' | 'delete', elements: readonly NftElement[], out: string[], batch = 2000): void {
  const bySet = new Map<string, string[]>();
  for (const e of elements) {
    let l = bySet.get(e.set);
    if (!l) bySet.set(e.set, (l = []));
    l.push(op === 'add' ? elementText(e) : e.key);
  }
  for (const [set, items] of bySet) {
    for (let i = 0; i < items.length; i += batch) out.push(`${op} element ${T} ${set} { ${items.slice(i, i + batch).join(', ')} }`);
  }
}

export function affinitySetStatement(s: NftAffinitySet): string {
  return `add set ${T} ${s.name} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.timeoutSeconds}s ; }`;
}
