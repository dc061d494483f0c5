// Names in berth's `ip kube-proxy` table, as upstream's nftables mode (pkg/proxy/nftables/proxier.go): fixed chains,
// sets and maps, and per-service / per-endpoint chain names "<prefix><HASH8>-ns/name/proto/port[__ip/port]" where
// HASH8 is the first 8 characters of base32(sha256(rest)). Every per-service object has a "/" in its name; no fixed
// one does, which is how stale objects are recognised.
import { createHash } from 'node:crypto';
import type { EndpointInfo, ServicePortInfo } from '../types.ts';

export const TABLE = 'kube-proxy';
export const FAMILY = 'ip';
/** `ip kube-proxy`, as written after add/flush/delete. */
export const T = `${FAMILY} ${TABLE}`;

export const SERVICES_CHAIN = 'services';
export const SERVICE_IPS_MAP = 'service-ips';
export const SERVICE_NODEPORTS_MAP = 'service-nodeports';
export const NODEPORT_IPS_SET = 'nodeport-ips';
export const SERVICE_ENDPOINTS_CHECK_CHAIN = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK_CHAIN = 'nodeport-endpoints-check';
export const NO_ENDPOINT_SERVICES_MAP = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS_MAP = 'no-endpoint-nodeports';
export const REJECT_CHAIN = 'reject-chain';
export const FIREWALL_IPS_MAP = 'firewall-ips';
export const FIREWALL_CHECK_CHAIN = 'firewall-check';
export const CLUSTER_IPS_SET = 'cluster-ips';
export const CLUSTER_IPS_CHECK_CHAIN = 'cluster-ips-check';
export const MARK_MASQ_CHAIN = 'mark-for-masquerade';
export const MASQUERADING_CHAIN = 'masquerading';

/**
 * The canary: a chain of berth's that exists while the table does (its absence means the ruleset was flushed or
 * the table deleted behind berth's back; a full sync follows). Checked by listing chain names only.
 */
export const CANARY_CHAIN = SERVICES_CHAIN;

const NAME_LENGTH_MAX = 256;
const BASE_LENGTH_MAX = NAME_LENGTH_MAX - 16;
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** First 8 characters of RFC 4648 base32 of sha256(name) (= the first 5 bytes of the digest). */
function hash8(name: string): string {
  const d = createHash('sha256').update(name).digest();
  // 5 bytes = 40 bits = 8 base32 digits.
  let bits = 0n;
  for (let i = 0; i < 5; i++) bits = (bits << 8n) | BigInt(d[i]!);
  let out = '';
  for (let i = 7; i >= 0; i--) out += B32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/** upstream hashAndTruncate */
export function hashAndTruncate(name: string): string {
  let s = `${hash8(name)}-${name}`;
  if (s.length > BASE_LENGTH_MAX) s = `${s.slice(0, BASE_LENGTH_MAX - 3)}...`;
  return s;
}

/** Memoised names of one service port's chains (10k Services: one hash per name, computed once). */
export class NftNamer {
  private readonly bases = new Map<string, string>();

  private base(key: string): string {
    let b = this.bases.get(key);
    if (b === undefined) {
      b = hashAndTruncate(key);
      this.bases.set(key, b);
    }
    return b;
  }

  /** "ns/name/proto/port" base (upstream servicePortChainNameBase). */
  serviceBase(svc: ServicePortInfo): string {
    return this.base(`${svc.namespace}/${svc.name}/${svc.protocol.toLowerCase()}/${svc.portName}`);
  }

  /** "ns/name/proto/port__ip/port" base (upstream servicePortEndpointChainNameBase). */
  endpointBase(svc: ServicePortInfo, ep: EndpointInfo): string {
    return this.base(`${svc.namespace}/${svc.name}/${svc.protocol.toLowerCase()}/${svc.portName}__${ep.ip}/${ep.port}`);
  }

  get size(): number {
    return this.bases.size;
  }

  clear(): void {
    this.bases.clear();
  }
}

export const SERVICE_PREFIX = 'service-';
export const LOCAL_PREFIX = 'local-';
export const EXTERNAL_PREFIX = 'external-';
export const ENDPOINT_PREFIX = 'endpoint-';
export const AFFINITY_PREFIX = 'affinity-';
export const FIREWALL_PREFIX = 'firewall-';

/** Per-service and per-endpoint chains (and affinity sets) have a "/" in their names; fixed objects do not. */
export function isServiceObjectName(name: string): boolean {
  return name.includes('/');
}
