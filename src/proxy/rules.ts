// The rule builder: (service port, its endpoints, node, config) → kube-proxy's iptables rules. Pure and per
// service port, so a partial sync rebuilds only what changed. Port of syncProxyRules in
// pkg/proxy/iptables/proxier.go (v1.28+: KUBE-SVC / KUBE-SVL / KUBE-EXT / KUBE-FW / KUBE-SEP, REJECT/DROP in
// filter, KUBE-PROXY-FIREWALL), with one deliberate difference: every rule is written in the canonical form
// iptables-save prints (address/32, -p before matches, --set-xmark, 11-digit probabilities, quoted comments), so
// the text berth wrote and the text the kernel reports compare equal and a full sync can skip unchanged chains.
import type { BuiltServicePort, EndpointInfo, ServicePortInfo } from './types.ts';
import { type ChainNamer, KUBE_EXTERNAL_SERVICES, KUBE_FIREWALL, KUBE_FORWARD, KUBE_MARK_MASQ, KUBE_NODEPORTS,
  KUBE_POSTROUTING, KUBE_PROXY_FIREWALL, KUBE_SERVICES } from './chain-names.ts';
import { categorizeEndpoints, externallyAccessible, externalPolicyLocal, usesClusterEndpoints, usesLocalEndpoints } from './topology.ts';
import { cidrContains } from './ip.ts';

/** Above this many endpoints, SEP chains and SVC→SEP rules carry no comments (upstream largeClusterMode). */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;

export interface RuleOptions {
  /** 1 << masqueradeBit, e.g. 0x4000. */
  masqueradeMark: number;
  masqueradeAll: boolean;
  /** Canonical CIDR of pod addresses; enables masquerade of off-cluster traffic to ClusterIPs. */
  clusterCIDR: string | undefined;
  /** Allow NodePorts on 127.0.0.0/8 (needs route_localnet=1; protected by KUBE-FIREWALL). */
  localhostNodePorts: boolean;
  /** NodePorts only on these node IPs; empty = every local address (`-m addrtype --dst-type LOCAL`). */
  nodePortIPs: readonly string[];
  randomFully: boolean;
  /** nf_conntrack_tcp_be_liberal is set: no DROP of INVALID packets in KUBE-FORWARD. */
  conntrackTCPLiberal: boolean;
}

export interface BuildContext extends RuleOptions {
  namer: ChainNamer;
  nodeIP: string;
  nodeLabels: Readonly<Record<string, string>>;
  largeClusterMode: boolean;
}

/** Everything one service port contributes. Lines are complete ("-A CHAIN …"). */
export interface ServicePortRules extends BuiltServicePort {
  /** nat chains owned by this port, in write order. */
  readonly chains: ReadonlyArray<readonly [chain: string, lines: readonly string[]]>;
  /** Rules in shared nat chains (KUBE-SERVICES, KUBE-NODEPORTS). */
  readonly natTop: readonly string[];
  /** Rules in shared filter chains. */
  readonly filterTop: readonly string[];
}

export function servicePortKey(svc: ServicePortInfo): string {
  return `${svc.nameString}/${svc.protocol}`;
}

const SCALE = 0x80000000n;
const DEC = 100_000_000_000n;
const probabilityCache: string[] = [];

/**
 * 1/n as iptables-save prints it: the kernel keeps lround(2^31·p) and prints it back with %.11f (glibc rounds
 * half to even), so we compute exactly that.
 */
export function probability(n: number): string {
  let s = probabilityCache[n];
  if (s === undefined) {
    const u = BigInt(Math.round(Number(SCALE) / n));
    const num = u * DEC;
    let q = num / SCALE;
    const r = num % SCALE;
    if (r * 2n > SCALE || (r * 2n === SCALE && q % 2n === 1n)) q += 1n;
    const str = q.toString().padStart(12, '0');
    s = `${str.slice(0, -11)}.${str.slice(-11)}`;
    probabilityCache[n] = s;
  }
  return s;
}

export function markHex(mark: number): string {
  return `0x${mark.toString(16)}`;
}

const REJECT = 'REJECT --reject-with icmp-port-unreachable';

/** Builds the rules of one service port. Pure. */
export function buildServicePortRules(svc: ServicePortInfo, endpoints: readonly EndpointInfo[], ctx: BuildContext): ServicePortRules {
  const p = svc.protocol === 'TCP' ? 'tcp' : svc.protocol === 'UDP' ? 'udp' : svc.protocol.toLowerCase();
  const S = svc.nameString;
  const names = ctx.namer.forPort(svc);
  const large = ctx.largeClusterMode;
  const dport = `-m ${p} --dport ${svc.port}`;

  const { cluster, local, allReachable, hasAny } = categorizeEndpoints(endpoints, svc, ctx.nodeLabels);
  const clusterChain = names.svc;
  const usesClusterChain = cluster.length > 0 && usesClusterEndpoints(svc);
  const localChain = names.svl;
  const usesLocalChain = local.length > 0 && usesLocalEndpoints(svc);

  let internalChain = clusterChain;
  let hasInternal = hasAny;
  if (svc.internalPolicyLocal) {
    internalChain = localChain;
    if (local.length === 0) hasInternal = false;
  }
  const eLocal = externalPolicyLocal(svc);
  let externalPolicyChain = clusterChain;
  let hasExternal = hasAny;
  if (eLocal) {
    externalPolicyChain = localChain;
    if (local.length === 0) hasExternal = false;
  }
  const extChain = names.ext;
  const usesExtChain = hasAny && externallyAccessible(svc);
  const fwChain = names.fw;
  const hasRanges = svc.loadBalancerSourceRanges.length > 0 || svc.loadBalancerSourceRangesDenyAll;
  const usesFwChain = hasAny && svc.loadBalancerVIPs.length > 0 && hasRanges;
  const lbChain = usesFwChain ? fwChain : extChain;

  let internalFilter = '';
  let internalComment = '';
  let externalFilter = '';
  let externalComment = '';
  if (!hasAny) {
    internalFilter = externalFilter = REJECT;
    internalComment = externalComment = `${S} has no endpoints`;
  } else {
    if (!hasInternal) {
      internalFilter = 'DROP';
      internalComment = `${S} has no local endpoints`;
    }
    if (!hasExternal) {
      externalFilter = 'DROP';
      externalComment = `${S} has no local endpoints`;
    }
  }

  const natTop: string[] = [];
  const filterTop: string[] = [];

  // ClusterIP.
  if (hasInternal) {
    natTop.push(`-A ${KUBE_SERVICES} -d ${svc.clusterIP}/32 -p ${p} -m comment --comment "${S} cluster IP" ${dport} -j ${internalChain}`);
  } else {
    filterTop.push(`-A ${KUBE_SERVICES} -d ${svc.clusterIP}/32 -p ${p} -m comment --comment "${internalComment}" ${dport} -j ${internalFilter}`);
  }
  // externalIPs.
  for (const ip of svc.externalIPs) {
    if (hasAny) natTop.push(`-A ${KUBE_SERVICES} -d ${ip}/32 -p ${p} -m comment --comment "${S} external IP" ${dport} -j ${extChain}`);
    if (!hasExternal) {
      filterTop.push(`-A ${KUBE_EXTERNAL_SERVICES} -d ${ip}/32 -p ${p} -m comment --comment "${externalComment}" ${dport} -j ${externalFilter}`);
    }
  }
  // Load-balancer ingress IPs.
  for (const ip of svc.loadBalancerVIPs) {
    if (hasAny) natTop.push(`-A ${KUBE_SERVICES} -d ${ip}/32 -p ${p} -m comment --comment "${S} loadbalancer IP" ${dport} -j ${lbChain}`);
    if (usesFwChain) {
      filterTop.push(`-A ${KUBE_PROXY_FIREWALL} -d ${ip}/32 -p ${p} -m comment --comment "${S} traffic not accepted by ${fwChain}" ${dport} -j DROP`);
    }
  }
  if (!hasExternal) {
    for (const ip of svc.loadBalancerVIPs) {
      filterTop.push(`-A ${KUBE_EXTERNAL_SERVICES} -d ${ip}/32 -p ${p} -m comment --comment "${externalComment}" ${dport} -j ${externalFilter}`);
    }
  }
  // NodePort (not subject to loadBalancerSourceRanges, as upstream).
  if (svc.nodePort !== 0) {
    if (hasAny) natTop.push(`-A ${KUBE_NODEPORTS} -p ${p} -m comment --comment "${S}" -m ${p} --dport ${svc.nodePort} -j ${extChain}`);
    if (!hasExternal) {
      filterTop.push(
        `-A ${KUBE_EXTERNAL_SERVICES} -p ${p} -m comment --comment "${externalComment}" -m addrtype --dst-type LOCAL -m ${p} --dport ${svc.nodePort} -j ${externalFilter}`,
      );
    }
  }
  if (svc.healthCheckNodePort !== 0) {
    filterTop.push(`-A ${KUBE_NODEPORTS} -p tcp -m comment --comment "${S} health check node port" -m tcp --dport ${svc.healthCheckNodePort} -j ACCEPT`);
  }

  const chains: [string, string[]][] = [];
  const clusterLines: string[] = [];
  const localLines: string[] = [];

  // Masquerade off-cluster traffic to the ClusterIP (it may leave the node again).
  if (hasInternal) {
    const internalLines = svc.internalPolicyLocal ? localLines : clusterLines;
    const match = `-d ${svc.clusterIP}/32 -p ${p} -m comment --comment "${S} cluster IP" ${dport} -j ${KUBE_MARK_MASQ}`;
    if (ctx.masqueradeAll) internalLines.push(`-A ${internalChain} ${match}`);
    else if (ctx.clusterCIDR) internalLines.push(`-A ${internalChain} ! -s ${ctx.clusterCIDR} ${match}`);
  }

  if (usesExtChain) {
    const lines: string[] = [];
    if (!eLocal) {
      lines.push(`-A ${extChain} -m comment --comment "masquerade traffic for ${S} external destinations" -j ${KUBE_MARK_MASQ}`);
    } else {
      // Pod → external IP of a Local service behaves as if it went out to the LB and came back: Cluster policy.
      if (ctx.clusterCIDR) {
        lines.push(`-A ${extChain} -s ${ctx.clusterCIDR} -m comment --comment "pod traffic for ${S} external destinations" -j ${clusterChain}`);
      }
      lines.push(
        `-A ${extChain} -m comment --comment "masquerade LOCAL traffic for ${S} external destinations" -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`,
      );
      lines.push(
        `-A ${extChain} -m comment --comment "route LOCAL traffic for ${S} external destinations" -m addrtype --src-type LOCAL -j ${clusterChain}`,
      );
    }
    if (hasExternal) lines.push(`-A ${extChain} -j ${externalPolicyChain}`);
    chains.push([extChain, lines]);
  }

  if (usesFwChain) {
    const lines: string[] = [];
    const c = `-m comment --comment "${S} loadbalancer IP" -j ${extChain}`;
    let allowFromNode = false;
    for (const cidr of svc.loadBalancerSourceRanges) {
      lines.push(`-A ${fwChain} -s ${cidr} ${c}`);
      if (ctx.nodeIP && cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
    }
    // A VIP bound locally loops back with the VIP as source: let the node reach its own LB.
    if (allowFromNode) for (const ip of svc.loadBalancerVIPs) lines.push(`-A ${fwChain} -s ${ip}/32 ${c}`);
    lines.push(`-A ${fwChain} -m comment --comment "other traffic to ${S} will be dropped by ${KUBE_PROXY_FIREWALL}"`);
    chains.push([fwChain, lines]);
  }

  const namer = ctx.namer;
  const sepName = (ep: EndpointInfo): string => namer.forEndpoint(S, p, ep);
  if (usesClusterChain) {
    writeEndpointRules(clusterLines, clusterChain, S, svc, cluster, sepName, large);
    chains.push([clusterChain, clusterLines]);
  }
  if (usesLocalChain) {
    writeEndpointRules(localLines, localChain, S, svc, local, sepName, large);
    chains.push([localChain, localLines]);
  }

  const comment = large ? '' : ` -m comment --comment "${S}"`;
  for (const ep of allReachable) {
    const sep = sepName(ep);
    const affinity = svc.affinityTimeoutSeconds > 0 ? ` -m recent --set --name ${sep} --mask 255.255.255.255 --rsource` : '';
    chains.push([
      sep,
      [
        // Hairpin: a pod reaching itself through the Service must be masqueraded or the reply bypasses DNAT.
        `-A ${sep} -s ${ep.ip}/32${comment} -j ${KUBE_MARK_MASQ}`,
        `-A ${sep} -p ${p}${comment}${affinity} -m ${p} -j DNAT --to-destination ${ep.endpoint}`,
      ],
    ]);
  }

  let localReady = 0;
  for (const ep of endpoints) if (ep.isLocal && ep.ready) localReady++;

  return {
    key: servicePortKey(svc),
    svc,
    chains,
    natTop,
    filterTop,
    reachable: allReachable,
    localReady,
    noLocalInternal: hasAny && !hasInternal,
    noLocalExternal: hasAny && !hasExternal,
  };
}

function writeEndpointRules(
  out: string[],
  chain: string,
  S: string,
  svc: ServicePortInfo,
  endpoints: readonly EndpointInfo[],
  sepName: (ep: EndpointInfo) => string,
  large: boolean,
): void {
  if (svc.affinityTimeoutSeconds > 0) {
    for (const ep of endpoints) {
      const sep = sepName(ep);
      const c = large ? '' : ` -m comment --comment "${S} -> ${ep.endpoint}"`;
      out.push(`-A ${chain}${c} -m recent --rcheck --seconds ${svc.affinityTimeoutSeconds} --reap --name ${sep} --mask 255.255.255.255 --rsource -j ${sep}`);
    }
  }
  const n = endpoints.length;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[i]!;
    const c = large ? '' : ` -m comment --comment "${S} -> ${ep.endpoint}"`;
    // 1/n, 1/(n-1), …, the last one unconditional: each endpoint is picked with probability 1/n overall.
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    out.push(`-A ${chain}${c}${stat} -j ${sepName(ep)}`);
  }
}

export type Table = 'filter' | 'nat' | 'mangle';

/** A rule berth adds to a built-in chain (the only rules outside its own chains). */
export interface JumpRule {
  table: Table;
  /** Built-in chain, e.g. PREROUTING. */
  chain: string;
  /** Complete line, "-A PREROUTING …". */
  line: string;
  /** The chain it jumps to. */
  target: string;
}

/** The rules that do not depend on any Service. */
export interface GlobalRules {
  /** Chains in filter / nat whose whole content berth writes, with their fixed rules (ordered). */
  fixed: { table: Table; chain: string; lines: string[] }[];
  /** Chains filled from service contributions (order of rules inside is irrelevant). */
  shared: { table: Table; chain: string }[];
  /** Rules that must stay last in nat KUBE-SERVICES. */
  natServicesTail: string[];
  jumps: JumpRule[];
}

const NODEPORTS_COMMENT = 'kubernetes service nodeports; NOTE: this must be the last rule in this chain';

export function buildGlobalRules(o: RuleOptions): GlobalRules {
  const m = markHex(o.masqueradeMark);
  const fixed: GlobalRules['fixed'] = [
    {
      table: 'nat',
      chain: KUBE_POSTROUTING,
      lines: [
        `-A ${KUBE_POSTROUTING} -m mark ! --mark ${m}/${m} -j RETURN`,
        // Clear the mark so a packet that re-traverses the stack is not masqueraded twice.
        `-A ${KUBE_POSTROUTING} -j MARK --set-xmark ${m}/0x0`,
        `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${o.randomFully ? ' --random-fully' : ''}`,
      ],
    },
    { table: 'nat', chain: KUBE_MARK_MASQ, lines: [`-A ${KUBE_MARK_MASQ} -j MARK --set-xmark ${m}/${m}`] },
    {
      table: 'filter',
      chain: KUBE_FORWARD,
      lines: [
        ...(o.conntrackTCPLiberal ? [] : [`-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP`]),
        `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${m}/${m} -j ACCEPT`,
        `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      ],
    },
  ];
  if (o.localhostNodePorts) {
    // route_localnet opens 127.0.0.0/8 to the network (https://issues.k8s.io/90259); only DNATed traffic may pass.
    fixed.push({
      table: 'filter',
      chain: KUBE_FIREWALL,
      lines: [
        `-A ${KUBE_FIREWALL} ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      ],
    });
  }
  const shared: GlobalRules['shared'] = [
    { table: 'filter', chain: KUBE_SERVICES },
    { table: 'filter', chain: KUBE_EXTERNAL_SERVICES },
    { table: 'filter', chain: KUBE_NODEPORTS },
    { table: 'filter', chain: KUBE_PROXY_FIREWALL },
    { table: 'nat', chain: KUBE_SERVICES },
    { table: 'nat', chain: KUBE_NODEPORTS },
  ];
  const natServicesTail: string[] = [];
  if (o.nodePortIPs.length === 0) {
    const notLo = o.localhostNodePorts ? '' : ' ! -d 127.0.0.0/8';
    natServicesTail.push(`-A ${KUBE_SERVICES}${notLo} -m comment --comment "${NODEPORTS_COMMENT}" -m addrtype --dst-type LOCAL -j ${KUBE_NODEPORTS}`);
  } else {
    for (const ip of o.nodePortIPs) {
      if (ip.startsWith('127.') && !o.localhostNodePorts) continue;
      natServicesTail.push(`-A ${KUBE_SERVICES} -d ${ip}/32 -m comment --comment "${NODEPORTS_COMMENT}" -j ${KUBE_NODEPORTS}`);
    }
  }
  const jump = (table: Table, chain: string, target: string, match: string): JumpRule => ({
    table,
    chain,
    target,
    line: `-A ${chain}${match} -j ${target}`,
  });
  const NEW = ' -m conntrack --ctstate NEW';
  const cm = (c: string): string => ` -m comment --comment "${c}"`;
  const jumps: JumpRule[] = [
    jump('filter', 'INPUT', KUBE_EXTERNAL_SERVICES, NEW + cm('kubernetes externally-visible service portals')),
    jump('filter', 'FORWARD', KUBE_EXTERNAL_SERVICES, NEW + cm('kubernetes externally-visible service portals')),
    jump('filter', 'INPUT', KUBE_NODEPORTS, cm('kubernetes health check service ports')),
    jump('filter', 'FORWARD', KUBE_SERVICES, NEW + cm('kubernetes service portals')),
    jump('filter', 'OUTPUT', KUBE_SERVICES, NEW + cm('kubernetes service portals')),
    jump('filter', 'FORWARD', KUBE_FORWARD, cm('kubernetes forwarding rules')),
    jump('filter', 'INPUT', KUBE_PROXY_FIREWALL, NEW + cm('kubernetes load balancer firewall')),
    jump('filter', 'OUTPUT', KUBE_PROXY_FIREWALL, NEW + cm('kubernetes load balancer firewall')),
    jump('filter', 'FORWARD', KUBE_PROXY_FIREWALL, NEW + cm('kubernetes load balancer firewall')),
    jump('nat', 'OUTPUT', KUBE_SERVICES, cm('kubernetes service portals')),
    jump('nat', 'PREROUTING', KUBE_SERVICES, cm('kubernetes service portals')),
    jump('nat', 'POSTROUTING', KUBE_POSTROUTING, cm('kubernetes postrouting rules')),
  ];
  if (o.localhostNodePorts) {
    jumps.push(jump('filter', 'INPUT', KUBE_FIREWALL, ''), jump('filter', 'OUTPUT', KUBE_FIREWALL, ''));
  }
  return { fixed, shared, natServicesTail, jumps };
}
