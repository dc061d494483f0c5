// The pod's DNS resolver configuration, as upstream's pkg/kubelet/network/dns/dns.go GetPodDNS builds it
// (getPodDNSType, the host resolv.conf as the base, cluster DNS with <ns>.svc/svc/<domain> searches and ndots:5,
// the pod's dnsConfig appended, the search/nameserver limits of ExpandedDNSConfig, GA since 1.28), and the file
// the runtime writes from it: cri-dockerd's rewriteResolvFile (nameserver lines, then one search line, then one
// options line). Docker's own file for the same settings differs (search first, and it fills missing parts from
// the host), so berth writes <podDir>/resolv.conf itself and bind-mounts it at /etc/resolv.conf, as etc-hosts.ts
// does for /etc/hosts.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import type { DNSConfig } from '../../cri/index.ts';

export const RESOLV_CONF_PATH = '/etc/resolv.conf';
/** The kubelet's --resolv-conf default. */
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
/** systemd-resolved's file with the real upstream servers (its /etc/resolv.conf only names the 127.0.0.53 stub). */
export const SYSTEMD_RESOLVED_CONF = '/run/systemd/resolve/resolv.conf';
/** pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPathsExpanded, MaxDNSSearchListCharsExpanded. */
export const MAX_DNS_NAMESERVERS = 3;
export const MAX_DNS_SEARCH_PATHS = 32;
export const MAX_DNS_SEARCH_LIST_CHARS = 2048;
/** utilvalidation.DNS1123SubdomainMaxLength: longer search paths make some resolvers (glibc 2.28) abort(). */
const MAX_SEARCH_PATH_LENGTH = 253;
const DEFAULT_DNS_OPTIONS = ['ndots:5'];

export interface DNSWarning {
  reason: 'DNSConfigForming' | 'MissingClusterDNS';
  message: string;
}

export interface DNSFacts {
  clusterDNS: string[];
  clusterDomain: string;
  /** The parsed host resolv.conf (--resolv-conf); undefined = --resolv-conf="" (no host resolver file). */
  host: DNSConfig | undefined;
}

/** parseResolvConf: nameservers accumulate, the last search and the last options line win, '#' lines are comments. */
export function parseResolvConf(text: string): DNSConfig & { errors: string[] } {
  const out: DNSConfig & { errors: string[] } = { servers: [], searches: [], options: [], errors: [] };
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) continue;
    const fields = trimmed.split(/\s+/).filter(Boolean);
    if (fields.length === 0) continue;
    if (fields[0] === 'nameserver') {
      if (fields.length >= 2) out.servers.push(fields[1]!);
      else out.errors.push('nameserver list is empty ');
    }
    // The same domain with and without its trailing dot counts once.
    if (fields[0] === 'search') out.searches = fields.slice(1).map((s) => s.replace(/\.$/, ''));
    if (fields[0] === 'options') out.options = fields.slice(1);
  }
  return out;
}

/** Reads and parses the host's resolver file; '' → undefined. Throws on a read error or a bad line (as upstream). */
export async function readHostDNS(file: string): Promise<DNSConfig | undefined> {
  if (file === '') return undefined;
  const { errors, ...cfg } = parseResolvConf(await readFile(file, 'utf8'));
  if (errors.length) throw new Error(errors.length === 1 ? errors[0]! : `[${errors.join(', ')}]`);
  return cfg;
}

/**
 * The host resolver file when none is configured: /etc/resolv.conf, unless it only names systemd-resolved's stub
 * (127.0.0.53, unreachable from a pod's network namespace) and the resolved file exists: then that one, as kubeadm
 * configures the kubelet on such hosts. A configured path (also '') is used as it is.
 */
export async function hostResolvConfPath(configured: string | undefined, files = { etc: DEFAULT_RESOLV_CONF, resolved: SYSTEMD_RESOLVED_CONF }): Promise<string> {
  if (configured !== undefined) return configured;
  const etc = await readFile(files.etc, 'utf8').catch(() => undefined);
  if (etc === undefined) return files.etc;
  const { servers } = parseResolvConf(etc);
  if (servers.length === 0 || !servers.every((s) => s === '127.0.0.53')) return files.etc;
  return (await readFile(files.resolved, 'utf8').then(() => true).catch(() => false)) ? files.resolved : files.etc;
}

type PodDNSType = 'cluster' | 'host' | 'none';

/** getPodDNSType: ClusterFirst on the host network falls back to Default; an unknown policy is ClusterFirst. */
export function podDNSType(pod: Pod): PodDNSType {
  switch (pod.spec?.dnsPolicy ?? 'ClusterFirst') {
    case 'None':
      return 'none';
    case 'ClusterFirstWithHostNet':
      return 'cluster';
    case 'ClusterFirst':
      return pod.spec?.hostNetwork ? 'host' : 'cluster';
    case 'Default':
      return 'host';
    default:
      return 'cluster';
  }
}

const omitDuplicates = (xs: string[]): string[] => [...new Set(xs)];

/**
 * mergeDNSOptions: the pod's options replace same-named ones. Upstream rebuilds the list from a Go map, so its order
 * is random; berth keeps the existing options first, then the new ones, each in the order given.
 */
export function mergeDNSOptions(existing: string[], opts: { name?: string; value?: string }[]): string[] {
  const m = new Map<string, string>();
  for (const op of existing) {
    const i = op.indexOf(':');
    if (i >= 0) m.set(op.slice(0, i), op.slice(i + 1));
    else m.set(op, '');
  }
  for (const op of opts) m.set(op.name ?? '', op.value ?? '');
  return [...m].map(([k, v]) => (v !== '' ? `${k}:${v}` : k));
}

/** formDNSSearchFitsLimits: at most 32 paths, none over 253 characters, the line at most 2048 characters. */
export function fitSearches(searches: string[]): { searches: string[]; warning?: DNSWarning } {
  let exceeded = false;
  let s = searches;
  if (s.length > MAX_DNS_SEARCH_PATHS) {
    s = s.slice(0, MAX_DNS_SEARCH_PATHS);
    exceeded = true;
  }
  const kept = s.filter((x) => x.length <= MAX_SEARCH_PATH_LENGTH);
  if (kept.length !== s.length) exceeded = true;
  s = kept;
  const lineLen = s.join(' ').length;
  if (lineLen > MAX_DNS_SEARCH_LIST_CHARS) {
    let cutNum = 0;
    let cutLen = 0;
    for (let i = s.length - 1; i >= 0; i--) {
      cutLen += s[i]!.length + 1;
      cutNum++;
      if (lineLen - cutLen <= MAX_DNS_SEARCH_LIST_CHARS) break;
    }
    s = s.slice(0, s.length - cutNum);
    exceeded = true;
  }
  if (!exceeded) return { searches: s };
  return {
    searches: s,
    warning: { reason: 'DNSConfigForming', message: `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${s.join(' ')}` },
  };
}

/** formDNSNameserversFitsLimits: at most 3 nameservers. */
export function fitNameservers(servers: string[]): { servers: string[]; warning?: DNSWarning } {
  if (servers.length <= MAX_DNS_NAMESERVERS) return { servers };
  const s = servers.slice(0, MAX_DNS_NAMESERVERS);
  return {
    servers: s,
    warning: { reason: 'DNSConfigForming', message: `Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: ${s.join(' ')}` },
  };
}

/** GetPodDNS: the pod's resolver settings and the Events upstream records on the pod while forming them. Pure. */
export function podDNSConfig(pod: Pod, f: DNSFacts): { config: DNSConfig; warnings: DNSWarning[] } {
  const warnings: DNSWarning[] = [];
  const host = f.host ?? { servers: [], searches: [], options: [] };
  let cfg: DNSConfig = { servers: [...host.servers], searches: [...host.searches], options: [...host.options] };
  let type = podDNSType(pod);
  if (type === 'none') cfg = { servers: [], searches: [], options: [] };
  if (type === 'cluster') {
    if (f.clusterDNS.length > 0) {
      // The cluster DNS server is the only nameserver: it forwards what it cannot answer itself.
      cfg.servers = [...f.clusterDNS];
      if (f.clusterDomain !== '') {
        const d = f.clusterDomain;
        cfg.searches = omitDuplicates([`${pod.metadata?.namespace ?? ''}.svc.${d}`, `svc.${d}`, d, ...cfg.searches]);
      }
      cfg.options = [...DEFAULT_DNS_OPTIONS];
    } else {
      const m = pod.metadata ?? {};
      warnings.push({
        reason: 'MissingClusterDNS',
        message: `pod: "${m.name ?? ''}_${m.namespace ?? ''}(${m.uid ?? ''})". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
      });
      type = 'host';
    }
  }
  if (type === 'host' && f.host === undefined) {
    // --resolv-conf="": "use the nameserver on the local machine", no search.
    cfg.servers = [...cfg.servers, '127.0.0.1'];
    cfg.searches = ['.'];
  }
  const extra = pod.spec?.dnsConfig;
  if (extra) {
    cfg.servers = omitDuplicates([...cfg.servers, ...(extra.nameservers ?? [])]);
    cfg.searches = omitDuplicates([...cfg.searches, ...(extra.searches ?? [])]);
    cfg.options = mergeDNSOptions(cfg.options, extra.options ?? []);
  }
  const ns = fitNameservers(cfg.servers);
  const se = fitSearches(cfg.searches);
  if (ns.warning) warnings.push(ns.warning);
  if (se.warning) warnings.push(se.warning);
  return { config: { servers: ns.servers, searches: se.searches, options: cfg.options }, warnings };
}

/** cri-dockerd rewriteResolvFile's text; '' when there is nothing to write (the runtime's file then stays). Pure. */
export function buildResolvConf(cfg: DNSConfig): string {
  const lines = cfg.servers.map((s) => `nameserver ${s}`);
  if (cfg.searches.length) lines.push(`search ${cfg.searches.join(' ')}`);
  if (cfg.options.length) lines.push(`options ${cfg.options.join(' ')}`);
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The container gets the pod's file unless it mounts something of its own at /etc/resolv.conf. */
export function shouldMountResolvConf(container: Container, content: string): boolean {
  if (content === '') return false;
  return !(container.volumeMounts ?? []).some((m) => m.mountPath === RESOLV_CONF_PATH);
}

/**
 * Writes <podDir>/resolv.conf (0644, chmod'ed whatever the umask) in place: running containers have the file's inode
 * bind-mounted. Skips the write when nothing changed. Returns the file's path.
 */
export async function writeResolvConfFile(podDir: string, content: string): Promise<string> {
  const file = path.join(podDir, 'resolv.conf');
  const old = await readFile(file, 'utf8').catch(() => undefined);
  if (old === content) return file;
  await mkdir(podDir, { recursive: true, mode: 0o750 });
  await writeFile(file, content, { mode: 0o644 });
  await chmod(file, 0o644);
  return file;
}
