// The proxy's normalised view of the API objects it consumes. API objects (Service, EndpointSlice v1/v1beta1,
// Endpoints) are turned into these shapes once, by the change trackers, so the rule builder never sees raw input.
// Only IPv4 is proxied (one family, as one upstream single-stack proxier).

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** One port of one Service, as kube-proxy's ServicePort (pkg/proxy/serviceport.go). Immutable once built. */
export interface ServicePortInfo {
  /** "ns/name" */
  readonly service: string;
  readonly namespace: string;
  readonly name: string;
  /** Port name ("" when the Service has one unnamed port). */
  readonly portName: string;
  /** Upstream's ServicePortName.String(): "ns/name:port" or "ns/name" for an unnamed port. */
  readonly nameString: string;
  readonly protocol: Protocol;
  readonly clusterIP: string;
  readonly port: number;
  /** 0 = none. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  /** Load-balancer ingress IPs in VIP mode. */
  readonly loadBalancerVIPs: readonly string[];
  /** Canonical IPv4 CIDRs (network address, prefix). */
  readonly loadBalancerSourceRanges: readonly string[];
  /** Source ranges were given but none was usable: firewall everything (fail closed). */
  readonly loadBalancerSourceRangesDenyAll: boolean;
  /** ClientIP affinity timeout in seconds; 0 = no affinity. */
  readonly affinityTimeoutSeconds: number;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** 0 = none. */
  readonly healthCheckNodePort: number;
  /** Topology-aware routing requested (annotation Auto or trafficDistribution PreferClose). */
  readonly topologyAware: boolean;
}

/** One endpoint of one service port (pkg/proxy/endpoint.go BaseEndpointInfo). */
export interface EndpointInfo {
  readonly ip: string;
  readonly port: number;
  /** "ip:port" */
  readonly endpoint: string;
  readonly isLocal: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Zones from hints.forZones; undefined when the endpoint carries no hints. */
  readonly zoneHints: readonly string[] | undefined;
}

/** Endpoints of one Service, keyed by `endpointsPortKey(portName, protocol)`. */
export type ServiceEndpoints = ReadonlyMap<string, readonly EndpointInfo[]>;

export function endpointsPortKey(portName: string, protocol: Protocol): string {
  return `${portName}/${protocol}`;
}

export function servicePortNameString(service: string, portName: string): string {
  return portName ? `${service}:${portName}` : service;
}

/** What the proxy knows about its own node. */
export interface NodeInfo {
  readonly name: string;
  /** Primary IPv4 (used for loadBalancerSourceRanges "allow from node"); may be empty. */
  readonly ip: string;
  /** All node IPv4 addresses (used with nodePortAddresses). */
  readonly ips: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** EndpointSlice discovery.k8s.io/v1beta1 (not in kubernetes-types 1.30): `topology` instead of nodeName/zone. */
export interface EndpointSliceV1beta1 {
  apiVersion?: 'discovery.k8s.io/v1beta1';
  kind?: 'EndpointSlice';
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  addressType: string;
  endpoints: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
    topology?: Record<string, string>;
    hints?: { forZones?: Array<{ name: string }> };
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string; appProtocol?: string }>;
}

/**
 * What every mode's built service port carries besides its rules (iptables ServicePortRules, nftables
 * NftServicePort): read by conntrack cleanup, the health check server and the metrics.
 */
export interface BuiltServicePort {
  /** "ns/name[:port]/PROTO", unique per service port. */
  readonly key: string;
  readonly svc: ServicePortInfo;
  /** Endpoints some rule DNATs to (conntrack cleanup compares these). */
  readonly reachable: readonly EndpointInfo[];
  /** Local ready endpoints (healthCheckNodePort answers with these). */
  readonly localReady: number;
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

/** One Service's ports as last applied and as now built (either empty when it appeared or went). */
export interface PortChange<P extends BuiltServicePort = BuiltServicePort> {
  prev: readonly P[];
  next: readonly P[];
}
