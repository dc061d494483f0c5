// Which endpoints a service port uses for Cluster and Local traffic policy. Port of pkg/proxy/topology.go
// (CategorizeEndpoints, canUseTopology): ready endpoints first, terminating-but-serving ones only when no ready
// one exists; zone hints only when every ready endpoint has them and one matches this node's zone.
import type { EndpointInfo, ServicePortInfo } from './types.ts';

export const LABEL_TOPOLOGY_ZONE = 'topology.kubernetes.io/zone';

export function externallyAccessible(svc: ServicePortInfo): boolean {
  return svc.nodePort !== 0 || svc.loadBalancerVIPs.length > 0 || svc.externalIPs.length > 0;
}

/** eTP=Local only means something for externally reachable ports. */
export function externalPolicyLocal(svc: ServicePortInfo): boolean {
  return svc.externalPolicyLocal && externallyAccessible(svc);
}

/** Cluster endpoints are needed for iTP=Cluster and, for short-circuiting, whenever the port is external. */
export function usesClusterEndpoints(svc: ServicePortInfo): boolean {
  return !svc.internalPolicyLocal || externallyAccessible(svc);
}

export function usesLocalEndpoints(svc: ServicePortInfo): boolean {
  return svc.internalPolicyLocal || externalPolicyLocal(svc);
}

export interface CategorizedEndpoints {
  cluster: readonly EndpointInfo[];
  local: readonly EndpointInfo[];
  /** Every endpoint some rule of this port jumps to (the SEP chains to write). */
  allReachable: readonly EndpointInfo[];
  /** The port has usable endpoints somewhere in the cluster. */
  hasAny: boolean;
}

function canUseTopology(endpoints: readonly EndpointInfo[], svc: ServicePortInfo, nodeLabels: Readonly<Record<string, string>>): boolean {
  if (!svc.topologyAware) return false;
  const zone = nodeLabels[LABEL_TOPOLOGY_ZONE];
  if (!zone) return false;
  let hasForZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (!ep.zoneHints || ep.zoneHints.length === 0) return false;
    if (ep.zoneHints.includes(zone)) hasForZone = true;
  }
  return hasForZone;
}

export function categorizeEndpoints(
  endpoints: readonly EndpointInfo[],
  svc: ServicePortInfo,
  nodeLabels: Readonly<Record<string, string>>,
): CategorizedEndpoints {
  let cluster: EndpointInfo[] = [];
  let local: EndpointInfo[] = [];
  let hasAny = false;
  let useTopology = false;
  let useServingTerminating = false;

  if (usesClusterEndpoints(svc)) {
    useTopology = canUseTopology(endpoints, svc, nodeLabels);
    const zone = nodeLabels[LABEL_TOPOLOGY_ZONE] ?? '';
    cluster = endpoints.filter((ep) => ep.ready && (!useTopology || (ep.zoneHints?.includes(zone) ?? false)));
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (cluster.length > 0) hasAny = true;
  }

  if (!usesLocalEndpoints(svc)) return { cluster, local, allReachable: cluster, hasAny };

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAny = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAny = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) local = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    local = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);
  }

  if (!usesClusterEndpoints(svc)) return { cluster, local, allReachable: local, hasAny };
  if (!useTopology && !useServingTerminating) return { cluster, local, allReachable: cluster, hasAny };

  // cluster may hold remote endpoints local lacks, local may hold terminating or out-of-zone ones cluster lacks.
  const merged = new Map<string, EndpointInfo>();
  for (const ep of cluster) merged.set(ep.endpoint, ep);
  for (const ep of local) merged.set(ep.endpoint, ep);
  return { cluster, local, allReachable: [...merged.values()], hasAny };
}
