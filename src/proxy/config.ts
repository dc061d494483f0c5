// The proxy's slice of berth's configuration. loadConfig (the composition root) fills it from flags / env / file;
// `resolveProxyConfig` applies defaults and reports every problem at once.
import { InvalidConfigError } from '../lib/index.ts';
import type { BackendChoice } from './executor.ts';
import { canonicalCIDR } from './ip.ts';

export type ProxyMode = 'iptables' | 'nftables' | 'none';

export interface ProxyConfig {
  /** --proxy-mode: iptables (kube-proxy's iptables layout), nftables (its nftables mode), `none` turns the proxy off. */
  mode: ProxyMode;
  /** --iptables-backend: follow the host (auto), or force legacy / nft. */
  backend: BackendChoice;
  /** Periodic sync (also the canary check interval), upstream iptables.syncPeriod. */
  syncPeriodMs: number;
  /** Token-bucket rate limit on syncs: one token per minSyncPeriodMs, at most burstSyncs banked. */
  minSyncPeriodMs: number;
  burstSyncs: number;
  /** A full (reconciling) sync at least this often; the others are partial. */
  fullSyncPeriodMs: number;
  /** Bit of the fwmark that asks for masquerade (14 → 0x4000). */
  masqueradeBit: number;
  masqueradeAll: boolean;
  /** Pod CIDR(s) of the cluster (--cluster-cidr): traffic to a ClusterIP from outside it is masqueraded. */
  clusterCIDR: string | undefined;
  /** CIDRs of node addresses NodePorts answer on; empty = every local address. */
  nodePortAddresses: string[];
  /** NodePorts on 127.0.0.1 (sets route_localnet=1, protected by KUBE-FIREWALL). */
  localhostNodePorts: boolean;
  /** Where healthCheckNodePort listeners bind. */
  healthCheckBindAddress: string;
  /** healthy() turns false when a change has waited longer than this (default 2 × syncPeriodMs). */
  healthTimeoutMs: number;
  /** Delete stale UDP conntrack entries after endpoint changes. */
  conntrackCleanup: boolean;
  /** Set ip_forward / route_localnet / bridge-nf-call-iptables at start. */
  setSysctls: boolean;
  /** Endpoints above which comments are left out of per-endpoint rules (upstream: 1000). */
  largeClusterEndpointsThreshold: number;
  /** --proxy-kubeconfig: a separate identity for the proxy's informers (used by the composition root). */
  kubeconfig: string | undefined;
  restoreTimeoutMs: number;
}

export const DEFAULT_PROXY_CONFIG: Readonly<ProxyConfig> = Object.freeze({
  mode: 'iptables',
  backend: 'auto',
  syncPeriodMs: 30_000,
  minSyncPeriodMs: 1_000,
  burstSyncs: 2,
  fullSyncPeriodMs: 3_600_000,
  masqueradeBit: 14,
  masqueradeAll: false,
  clusterCIDR: undefined,
  nodePortAddresses: [],
  localhostNodePorts: true,
  healthCheckBindAddress: '0.0.0.0',
  healthTimeoutMs: 60_000,
  conntrackCleanup: true,
  setSysctls: true,
  largeClusterEndpointsThreshold: 1000,
  kubeconfig: undefined,
  restoreTimeoutMs: 300_000,
} satisfies ProxyConfig);

/** Problems of a (partial) proxy config, all at once; empty when valid. Pure. */
export function validateProxyConfig(c: Partial<ProxyConfig>): string[] {
  const problems: string[] = [];
  if (c.mode !== undefined && !['iptables', 'nftables', 'none'].includes(c.mode)) problems.push(`proxy mode must be iptables, nftables or none, got ${String(c.mode)}`);
  if (c.backend !== undefined && !['auto', 'legacy', 'nft'].includes(c.backend)) problems.push(`iptables backend must be auto, legacy or nft, got ${String(c.backend)}`);
  const posInt = (k: keyof ProxyConfig, min = 0): void => {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) problems.push(`${k} must be an integer >= ${min}`);
  };
  posInt('syncPeriodMs', 1);
  posInt('minSyncPeriodMs', 0);
  posInt('burstSyncs', 1);
  posInt('fullSyncPeriodMs', 1);
  posInt('healthTimeoutMs', 1);
  posInt('largeClusterEndpointsThreshold', 0);
  posInt('restoreTimeoutMs', 1);
  if (c.masqueradeBit !== undefined && (!Number.isInteger(c.masqueradeBit) || c.masqueradeBit < 0 || c.masqueradeBit > 31)) {
    problems.push('masqueradeBit must be in 0..31');
  }
  if (c.clusterCIDR !== undefined && canonicalCIDR(c.clusterCIDR) === undefined) problems.push(`clusterCIDR ${JSON.stringify(c.clusterCIDR)} is not an IPv4 CIDR`);
  for (const a of c.nodePortAddresses ?? []) if (canonicalCIDR(a) === undefined) problems.push(`nodePortAddresses entry ${JSON.stringify(a)} is not an IPv4 CIDR`);
  return problems;
}

/** Defaults + validation; throws InvalidConfigError listing every problem. */
export function resolveProxyConfig(partial: Partial<ProxyConfig> = {}): ProxyConfig {
  const problems = validateProxyConfig(partial);
  if (problems.length > 0) throw new InvalidConfigError(problems);
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<ProxyConfig>;
  const cfg: ProxyConfig = { ...DEFAULT_PROXY_CONFIG, ...defined };
  if (partial.healthTimeoutMs === undefined) cfg.healthTimeoutMs = 2 * cfg.syncPeriodMs;
  if (cfg.clusterCIDR !== undefined) cfg.clusterCIDR = canonicalCIDR(cfg.clusterCIDR);
  cfg.nodePortAddresses = cfg.nodePortAddresses.map((a) => canonicalCIDR(a)!);
  return Object.freeze(cfg);
}
