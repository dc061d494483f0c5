// Chain names as upstream computes them (pkg/proxy/iptables/proxier.go portProtoHash /
// servicePortEndpointChainName): prefix + first 16 chars of base32(sha256(servicePortName + protocol [+ endpoint])),
// protocol lowercase. Same names as kube-proxy, so operators' tools and habits carry over.
import { hash } from 'node:crypto';
import type { EndpointInfo, ServicePortInfo } from './types.ts';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';
/** kubelet's chain with the localnet protection rule; berth writes it when localhost NodePorts are on. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

export const SVC_PREFIX = 'KUBE-SVC-';
export const SVL_PREFIX = 'KUBE-SVL-';
export const EXT_PREFIX = 'KUBE-EXT-';
export const FW_PREFIX = 'KUBE-FW-';
export const SEP_PREFIX = 'KUBE-SEP-';
const SERVICE_CHAIN_PREFIXES = [SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX];

/** A per-service or per-endpoint chain (the ones a sync may delete when stale). */
export function isServiceChainName(chain: string): boolean {
  for (const p of SERVICE_CHAIN_PREFIXES) if (chain.startsWith(p)) return true;
  return false;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B32_CODES = Array.from(B32, (c) => c.charCodeAt(0));
const out16 = new Array<number>(16);
const B64_VALUES = new Uint8Array(128);
for (const [i, c] of Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/').entries()) B64_VALUES[c.charCodeAt(0)] = i;
const digest12 = new Uint8Array(12);

/** First 16 characters of RFC 4648 base32 of sha256(input) (= the first 10 bytes of the digest). */
export function hash16(input: string): string {
  // The digest as base64 and decoded here: a string result is several times cheaper than a Buffer per call, and
  // 30k names are hashed for 10k Services.
  const b64 = hash('sha256', input, 'base64');
  const d = digest12;
  for (let i = 0, j = 0; i < 16; i += 4, j += 3) {
    // 4 characters → 3 bytes; the first 16 characters hold the first 12 bytes.
    const v =
      (B64_VALUES[b64.charCodeAt(i)]! << 18) |
      (B64_VALUES[b64.charCodeAt(i + 1)]! << 12) |
      (B64_VALUES[b64.charCodeAt(i + 2)]! << 6) |
      B64_VALUES[b64.charCodeAt(i + 3)]!;
    d[j] = v >> 16;
    d[j + 1] = (v >> 8) & 255;
    d[j + 2] = v & 255;
  }
  for (let i = 0, o = 0; i < 10; i += 5, o += 8) {
    // 5 bytes → 8 characters.
    const b0 = d[i]!, b1 = d[i + 1]!, b2 = d[i + 2]!, b3 = d[i + 3]!, b4 = d[i + 4]!;
    out16[o] = B32_CODES[b0 >> 3]!;
    out16[o + 1] = B32_CODES[((b0 & 7) << 2) | (b1 >> 6)]!;
    out16[o + 2] = B32_CODES[(b1 >> 1) & 31]!;
    out16[o + 3] = B32_CODES[((b1 & 1) << 4) | (b2 >> 4)]!;
    out16[o + 4] = B32_CODES[((b2 & 15) << 1) | (b3 >> 7)]!;
    out16[o + 5] = B32_CODES[(b3 >> 2) & 31]!;
    out16[o + 6] = B32_CODES[((b3 & 3) << 3) | (b4 >> 5)]!;
    out16[o + 7] = B32_CODES[b4 & 31]!;
  }
  return String.fromCharCode(...out16);
}

function lower(protocol: string): string {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : protocol === 'SCTP' ? 'sctp' : protocol.toLowerCase();
}

export interface ServicePortChains {
  svc: string;
  svl: string;
  ext: string;
  fw: string;
}

/**
 * Memoises names: hashing is the most expensive part of building 10k Services' rules. The cache only grows with
 * names in use; `retain` drops the rest after a full sync.
 */
export class ChainNamer {
  private portCache = new Map<string, ServicePortChains>();
  private sepCache = new Map<string, string>();
  // Per immutable tracker object (a ServicePortInfo / EndpointInfo lives as long as its Service / slice is
  // unchanged): an identity lookup instead of building and hashing a string key on every sync. Weak, so they
  // never hold on to objects the trackers dropped.
  private portByInfo = new WeakMap<ServicePortInfo, ServicePortChains>();
  private sepByInfo = new WeakMap<EndpointInfo, { nameString: string; protocol: string; name: string }>();

  /** The chains of one service port (same names as servicePort(svc.nameString, svc.protocol)). */
  forPort(svc: ServicePortInfo): ServicePortChains {
    let c = this.portByInfo.get(svc);
    if (!c) {
      const h = hash16(svc.nameString + lower(svc.protocol));
      c = { svc: SVC_PREFIX + h, svl: SVL_PREFIX + h, ext: EXT_PREFIX + h, fw: FW_PREFIX + h };
      this.portByInfo.set(svc, c);
    }
    return c;
  }

  /** The SEP chain of `ep` in service port `nameString`/`protocol` (same name as endpoint()). */
  forEndpoint(nameString: string, protocol: string, ep: EndpointInfo): string {
    const c = this.sepByInfo.get(ep);
    if (c && c.nameString === nameString && c.protocol === protocol) return c.name;
    // Not via the string-keyed cache: hashing is cheaper than building and looking up the key, and a Service
    // whose slice changed gets new EndpointInfo objects for a few endpoints only.
    const name = SEP_PREFIX + hash16(nameString + lower(protocol) + ep.endpoint);
    this.sepByInfo.set(ep, { nameString, protocol, name });
    return name;
  }

  /** `nameString` is "ns/name[:port]"; protocol as in the API or lower-case (upstream hashes it lower-case). */
  servicePort(nameString: string, protocol: string): ServicePortChains {
    const key = nameString + lower(protocol);
    let c = this.portCache.get(key);
    if (!c) {
      const h = hash16(key);
      c = { svc: SVC_PREFIX + h, svl: SVL_PREFIX + h, ext: EXT_PREFIX + h, fw: FW_PREFIX + h };
      this.portCache.set(key, c);
    }
    return c;
  }

  /** `endpoint` is "ip:port". */
  endpoint(nameString: string, protocol: string, endpoint: string): string {
    const key = nameString + lower(protocol) + endpoint;
    let c = this.sepCache.get(key);
    if (!c) {
      c = SEP_PREFIX + hash16(key);
      this.sepCache.set(key, c);
    }
    return c;
  }

  /** Bounds memory: forget everything, e.g. before a periodic full rebuild. */
  clear(): void {
    this.portCache.clear();
    this.sepCache.clear();
    this.portByInfo = new WeakMap();
    this.sepByInfo = new WeakMap();
  }

  get size(): number {
    return this.portCache.size + this.sepCache.size;
  }
}
