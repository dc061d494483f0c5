// API objects → the proxy's normalised shapes (types.ts). Pure. Bad input never throws: invalid parts are dropped
// and described in `problems` (the tracker logs them naming the object), so one bad Service or slice cannot break
// the rules of others. Follows pkg/proxy/serviceport.go (newBaseServiceInfo) and endpointslicecache.go.
import type { Service, Endpoints } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import {
  type EndpointInfo,
  type EndpointSliceV1beta1,
  type Protocol,
  type ServicePortInfo,
  PROTOCOLS,
  endpointsPortKey,
  servicePortNameString,
} from './types.ts';
import { canonicalCIDR, formatIPv4, isIPv4, looksIPv6, parseIPv4 } from './ip.ts';

export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ANNOTATION_TOPOLOGY_AWARE_HINTS = 'service.kubernetes.io/topology-aware-hints';
const ANNOTATION_TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode';

export interface Normalized<T> {
  value: T;
  problems: string[];
}

function parseProtocol(p: string | undefined): Protocol | undefined {
  const v = p ?? 'TCP';
  return (PROTOCOLS as readonly string[]).includes(v) ? (v as Protocol) : undefined;
}

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Canonical dotted quad ("010.0.0.1" is rejected, not reinterpreted). */
function canonicalIPv4(s: string): string | undefined {
  const n = parseIPv4(s.trim());
  return n === undefined ? undefined : formatIPv4(n);
}

/** DNS-1123 label (namespaces, Service names, port names are all within it). */
const API_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function serviceKey(meta: { namespace?: string; name?: string } | undefined): string {
  return `${meta?.namespace ?? ''}/${meta?.name ?? ''}`;
}

/**
 * The IPv4 service ports of a Service. Headless, ExternalName and IPv6-only Services yield no ports (not a problem).
 */
export function normalizeService(svc: Service): Normalized<ServicePortInfo[]> {
  const problems: string[] = [];
  const spec = svc.spec;
  const namespace = svc.metadata?.namespace ?? '';
  const name = svc.metadata?.name ?? '';
  const service = `${namespace}/${name}`;
  if (!spec || !namespace || !name) return { value: [], problems: spec ? ['missing namespace or name'] : [] };
  // Names end up in rule comments and chain-name hashes: anything the API server would not accept (a quote, a
  // newline) could break or inject into the iptables-restore input, so such a Service is ignored whole.
  if (!API_NAME.test(namespace) || !API_NAME.test(name)) return { value: [], problems: ['invalid namespace or name'] };
  if (spec.type === 'ExternalName') return { value: [], problems };

  // GetClusterIPByFamily: the IPv4 entry of clusterIPs, else clusterIP when it is IPv4.
  const candidates = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  if (candidates.length === 0 || candidates[0] === 'None' || candidates[0] === '') return { value: [], problems };
  let clusterIP: string | undefined;
  for (const c of candidates) {
    if (looksIPv6(c)) continue;
    clusterIP = canonicalIPv4(c);
    if (!clusterIP) problems.push(`invalid clusterIP ${JSON.stringify(c)}`);
    break;
  }
  if (!clusterIP) return { value: [], problems };

  const externalIPs: string[] = [];
  for (const e of spec.externalIPs ?? []) {
    if (looksIPv6(e)) continue;
    const ip = canonicalIPv4(e);
    if (ip) externalIPs.push(ip);
    else problems.push(`invalid externalIP ${JSON.stringify(e)}`);
  }

  const loadBalancerVIPs: string[] = [];
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    if (!ing.ip) continue;
    // Proxy-mode load balancers deliver to the node themselves; kube-proxy does not capture their IPs.
    if (ing.ipMode === 'Proxy') continue;
    if (looksIPv6(ing.ip)) continue;
    const ip = canonicalIPv4(ing.ip);
    if (ip) loadBalancerVIPs.push(ip);
    else problems.push(`invalid load balancer ingress IP ${JSON.stringify(ing.ip)}`);
  }

  const ranges: string[] = [];
  let invalidRanges = 0;
  for (const r of spec.loadBalancerSourceRanges ?? []) {
    if (looksIPv6(r)) continue;
    const c = canonicalCIDR(r);
    if (c) ranges.push(c);
    else {
      invalidRanges++;
      problems.push(`invalid loadBalancerSourceRange ${JSON.stringify(r)}`);
    }
  }
  // Upstream ignores ranges of the other family (no firewall then). A list whose every IPv4-looking entry is
  // invalid is different: the user asked for a firewall we cannot express, so nothing is let through.
  const denyAll = ranges.length === 0 && invalidRanges > 0;

  let affinityTimeoutSeconds = 0;
  if (spec.sessionAffinity === 'ClientIP') {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (t === undefined) affinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT_SECONDS;
    else if (Number.isInteger(t) && t >= 1 && t <= MAX_AFFINITY_TIMEOUT_SECONDS) affinityTimeoutSeconds = t;
    else {
      problems.push(`invalid sessionAffinityConfig.clientIP.timeoutSeconds ${t}, using ${DEFAULT_AFFINITY_TIMEOUT_SECONDS}`);
      affinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT_SECONDS;
    }
  } else if (spec.sessionAffinity && spec.sessionAffinity !== 'None') {
    problems.push(`unsupported sessionAffinity ${JSON.stringify(spec.sessionAffinity)}, using None`);
  }

  // apiservice.ExternallyAccessible / ExternalPolicyLocal / NeedsHealthCheck.
  const type = spec.type ?? 'ClusterIP';
  const externallyAccessibleType =
    type === 'LoadBalancer' || type === 'NodePort' || (type === 'ClusterIP' && (spec.externalIPs?.length ?? 0) > 0);
  const externalPolicyLocal = externallyAccessibleType && spec.externalTrafficPolicy === 'Local';
  const internalPolicyLocal = spec.internalTrafficPolicy === 'Local';
  let healthCheckNodePort = 0;
  if (type === 'LoadBalancer' && externalPolicyLocal) {
    if (isPort(spec.healthCheckNodePort)) healthCheckNodePort = spec.healthCheckNodePort;
    else problems.push('service has no valid healthCheckNodePort');
  }

  const annotations = svc.metadata?.annotations ?? {};
  const hints = annotations[ANNOTATION_TOPOLOGY_AWARE_HINTS] ?? annotations[ANNOTATION_TOPOLOGY_MODE] ?? '';
  const topologyAware = hints === 'Auto' || hints === 'auto' || spec.trafficDistribution === 'PreferClose';

  const ports: ServicePortInfo[] = [];
  const seen = new Set<string>();
  for (const p of spec.ports ?? []) {
    const portName = p.name ?? '';
    if (typeof portName !== 'string' || (portName !== '' && !API_NAME.test(portName))) {
      problems.push(`port ${JSON.stringify(portName)}: invalid name`);
      continue;
    }
    const protocol = parseProtocol(p.protocol);
    if (!protocol) {
      problems.push(`port ${JSON.stringify(portName)}: unsupported protocol ${JSON.stringify(p.protocol)}`);
      continue;
    }
    if (!isPort(p.port)) {
      problems.push(`port ${JSON.stringify(portName)}: port ${String(p.port)} out of range`);
      continue;
    }
    let nodePort = 0;
    if (p.nodePort !== undefined && p.nodePort !== 0) {
      if (!isPort(p.nodePort)) {
        problems.push(`port ${JSON.stringify(portName)}: nodePort ${String(p.nodePort)} out of range`);
        continue;
      }
      nodePort = p.nodePort;
    }
    const key = endpointsPortKey(portName, protocol);
    if (seen.has(key)) {
      problems.push(`port ${JSON.stringify(portName)}/${protocol}: duplicate`);
      continue;
    }
    seen.add(key);
    ports.push({
      service,
      namespace,
      name,
      portName,
      nameString: servicePortNameString(service, portName),
      protocol,
      clusterIP,
      port: p.port,
      nodePort,
      externalIPs,
      loadBalancerVIPs,
      loadBalancerSourceRanges: ranges,
      loadBalancerSourceRangesDenyAll: denyAll,
      affinityTimeoutSeconds,
      externalPolicyLocal,
      internalPolicyLocal,
      healthCheckNodePort,
      topologyAware,
    });
  }
  return { value: ports, problems };
}

/** The endpoints one EndpointSlice contributes, keyed by endpointsPortKey. */
export interface SliceContribution {
  /** "ns/name" of the owning Service ("" when the slice names none). */
  service: string;
  ports: Map<string, EndpointInfo[]>;
}

function isV1beta1(s: EndpointSlice | EndpointSliceV1beta1): s is EndpointSliceV1beta1 {
  return s.apiVersion === 'discovery.k8s.io/v1beta1' || s.endpoints?.some((e) => 'topology' in e) === true;
}

/**
 * One EndpointSlice (v1 or v1beta1) → endpoints per service port. v1beta1 has `topology` instead of nodeName/zone
 * and, before 1.20, no serving/terminating conditions: serving then follows ready and terminating is false.
 */
export function normalizeEndpointSlice(
  slice: EndpointSlice | EndpointSliceV1beta1,
  nodeName: string,
): Normalized<SliceContribution> {
  const problems: string[] = [];
  const namespace = slice.metadata?.namespace ?? '';
  const svcName = slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? '';
  const out: SliceContribution = { service: svcName ? `${namespace}/${svcName}` : '', ports: new Map() };
  if (!svcName) {
    problems.push(`missing label ${SERVICE_NAME_LABEL}`);
    return { value: out, problems };
  }
  // Only IPv4 slices are ours; IPv6 and FQDN slices are skipped without noise.
  if (slice.addressType !== 'IPv4') return { value: out, problems };
  const beta = isV1beta1(slice);

  const ports: { key: string; port: number }[] = [];
  for (const p of slice.ports ?? []) {
    const protocol = parseProtocol(p.protocol ?? undefined);
    const portName = p.name ?? '';
    if (!protocol) {
      problems.push(`port ${JSON.stringify(portName)}: unsupported protocol ${JSON.stringify(p.protocol)}`);
      continue;
    }
    if (!isPort(p.port)) {
      problems.push(`port ${JSON.stringify(portName)}: port ${String(p.port)} invalid`);
      continue;
    }
    ports.push({ key: endpointsPortKey(portName, protocol), port: p.port });
  }

  const eps: { ip: string; isLocal: boolean; ready: boolean; serving: boolean; terminating: boolean; zoneHints: string[] | undefined }[] = [];
  for (const e of slice.endpoints ?? []) {
    const first = e.addresses?.[0];
    if (first === undefined) continue;
    const ip = canonicalIPv4(first);
    if (!ip) {
      problems.push(`invalid endpoint address ${JSON.stringify(first)}`);
      continue;
    }
    const c = e.conditions ?? {};
    const ready = c.ready ?? true;
    const serving = c.serving ?? (beta ? ready : true);
    const terminating = c.terminating ?? false;
    const topo = beta ? (e as EndpointSliceV1beta1['endpoints'][number]).topology : undefined;
    const epNode = e.nodeName ?? topo?.['kubernetes.io/hostname'];
    const zones = e.hints?.forZones?.map((z) => z.name).filter((z) => typeof z === 'string' && z !== '');
    eps.push({
      ip,
      isLocal: epNode !== undefined && epNode === nodeName,
      ready,
      serving,
      terminating,
      zoneHints: zones && zones.length > 0 ? zones : undefined,
    });
  }
  for (const p of ports) {
    const list = out.ports.get(p.key) ?? [];
    for (const e of eps) list.push({ ...e, port: p.port, endpoint: `${e.ip}:${p.port}` });
    out.ports.set(p.key, list);
  }
  return { value: out, problems };
}

/** Core v1 Endpoints (the last fallback): `addresses` are ready, `notReadyAddresses` are neither ready nor serving. */
export function normalizeEndpoints(ep: Endpoints, nodeName: string): Normalized<SliceContribution> {
  const problems: string[] = [];
  const out: SliceContribution = { service: serviceKey(ep.metadata), ports: new Map() };
  for (const subset of ep.subsets ?? []) {
    const ports: { key: string; port: number }[] = [];
    for (const p of subset.ports ?? []) {
      const protocol = parseProtocol(p.protocol);
      if (!protocol) {
        problems.push(`port ${JSON.stringify(p.name ?? '')}: unsupported protocol ${JSON.stringify(p.protocol)}`);
        continue;
      }
      if (!isPort(p.port)) {
        problems.push(`port ${JSON.stringify(p.name ?? '')}: port ${String(p.port)} invalid`);
        continue;
      }
      ports.push({ key: endpointsPortKey(p.name ?? '', protocol), port: p.port });
    }
    const addrs: { ip: string; isLocal: boolean; ready: boolean }[] = [];
    for (const [list, ready] of [[subset.addresses, true], [subset.notReadyAddresses, false]] as const) {
      for (const a of list ?? []) {
        if (looksIPv6(a.ip)) continue;
        const ip = canonicalIPv4(a.ip);
        if (!ip) {
          problems.push(`invalid endpoint address ${JSON.stringify(a.ip)}`);
          continue;
        }
        addrs.push({ ip, isLocal: a.nodeName !== undefined && a.nodeName === nodeName, ready });
      }
    }
    for (const p of ports) {
      const list = out.ports.get(p.key) ?? [];
      for (const a of addrs) {
        list.push({
          ip: a.ip,
          port: p.port,
          endpoint: `${a.ip}:${p.port}`,
          isLocal: a.isLocal,
          ready: a.ready,
          serving: a.ready,
          terminating: false,
          zoneHints: undefined,
        });
      }
      out.ports.set(p.key, list);
    }
  }
  return { value: out, problems };
}

/**
 * Merges the contributions of all slices of one Service: duplicates (same ip:port in two slices) collapse, a local
 * copy wins (endpointslicecache.go addEndpoints); the result is sorted by IP then port so rule order is stable.
 */
export function mergeContributions(parts: Iterable<SliceContribution>): Map<string, EndpointInfo[]> {
  const byPort = new Map<string, Map<string, EndpointInfo>>();
  for (const part of parts) {
    for (const [key, list] of part.ports) {
      let m = byPort.get(key);
      if (!m) byPort.set(key, (m = new Map()));
      for (const e of list) {
        const prev = m.get(e.endpoint);
        if (!prev || (e.isLocal && !prev.isLocal) || (e.ready && !prev.ready && e.isLocal === prev.isLocal)) m.set(e.endpoint, e);
      }
    }
  }
  const out = new Map<string, EndpointInfo[]>();
  for (const [key, m] of byPort) {
    const list = [...m.values()];
    if (list.length > 1) {
      const k = new Map(list.map((e) => [e, (parseIPv4(e.ip) ?? 0) * 65536 + e.port]));
      list.sort((a, b) => k.get(a)! - k.get(b)!);
    }
    if (list.length > 0) out.set(key, list);
  }
  return out;
}

export { isIPv4 };
