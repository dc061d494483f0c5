// The pod's managed /etc/hosts, as upstream's pkg/kubelet/kubelet_pods.go writes it (makeHostsMount,
// managedHostsFileContent, hostsEntriesFromHostAliases, GeneratePodHostNameAndDomain): a file <podDir>/etc-hosts
// bind-mounted at /etc/hosts into every container, with the "# Kubernetes-managed hosts file." header, the
// loopback and IPv6 lines, the pod IP with its hostname (and FQDN when the pod has a subdomain) and the pod's
// hostAliases. Not for hostNetwork pods: upstream mounts it only when the runtime reports pod IPs, and CRI runtimes
// (dockershim, containerd) report none for a host-network sandbox, so such pods keep the node's hosts file.
// Docker's own hosts file of the sandbox (shared by the containers) has no header, no FQDN and no aliases.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Container, HostAlias, Pod } from 'kubernetes-types/core/v1';

export const ETC_HOSTS_PATH = '/etc/hosts';
export const MANAGED_HOSTS_HEADER = '# Kubernetes-managed hosts file.\n';

export interface HostsFileInput {
  podIPs: string[];
  hostname: string;
  /** `<subdomain>.<namespace>.svc.<clusterDomain>`, or '' without a subdomain. */
  hostDomain: string;
  hostAliases?: HostAlias[] | undefined;
}

/** upstream truncatePodHostnameIfNeeded: at most 63 characters, without trailing '-' or '.'. */
export function truncatePodHostname(hostname: string): string {
  if (hostname.length <= 63) return hostname;
  return hostname.slice(0, 63).replace(/[-.]+$/, '');
}

/** upstream GeneratePodHostNameAndDomain: spec.hostname or the pod name; the subdomain's service domain. */
export function podHostnameAndDomain(pod: Pod, clusterDomain: string): { hostname: string; hostDomain: string } {
  const hostname = truncatePodHostname(pod.spec?.hostname || (pod.metadata?.name ?? ''));
  const sub = pod.spec?.subdomain;
  const hostDomain = sub ? `${sub}.${pod.metadata?.namespace ?? ''}.svc.${clusterDomain}` : '';
  return { hostname, hostDomain };
}

/** upstream hostsEntriesFromHostAliases: one line per IP, its hostnames tab-separated. */
export function buildHostAliasEntries(aliases: HostAlias[] | undefined): string {
  if (!aliases?.length) return '';
  let out = '\n# Entries added by HostAliases.\n';
  for (const a of aliases) out += `${a.ip ?? ''}\t${(a.hostnames ?? []).join('\t')}\n`;
  return out;
}

/** upstream managedHostsFileContent, byte for byte. Pure. */
export function buildManagedHostsFile(input: HostsFileInput): string {
  let out = MANAGED_HOSTS_HEADER;
  out += '127.0.0.1\tlocalhost\n';
  out += '::1\tlocalhost ip6-localhost ip6-loopback\n';
  out += 'fe00::0\tip6-localnet\n';
  out += 'fe00::0\tip6-mcastprefix\n';
  out += 'fe00::1\tip6-allnodes\n';
  out += 'fe00::2\tip6-allrouters\n';
  for (const ip of input.podIPs) {
    out += input.hostDomain ? `${ip}\t${input.hostname}.${input.hostDomain}\t${input.hostname}\n` : `${ip}\t${input.hostname}\n`;
  }
  return out + buildHostAliasEntries(input.hostAliases);
}

/**
 * upstream makeMounts: the managed file is mounted when the pod IPs are known, the pod is not on the host network
 * (no pod IPs from the runtime there) and the container does not mount something else at /etc/hosts.
 */
export function shouldMountEtcHosts(pod: Pod, container: Container, podIPs: string[]): boolean {
  if (pod.spec?.hostNetwork) return false;
  if (!podIPs.some((ip) => ip !== '')) return false;
  return !(container.volumeMounts ?? []).some((m) => m.mountPath === ETC_HOSTS_PATH);
}

/**
 * Writes <podDir>/etc-hosts (0644) in place, as upstream's ensureHostsFile: running containers of the pod have the
 * file's inode bind-mounted, so it is rewritten rather than replaced. Skips the write when nothing changed. Returns
 * the file's path.
 */
export async function writeEtcHostsFile(podDir: string, content: string): Promise<string> {
  const file = path.join(podDir, 'etc-hosts');
  const old = await readFile(file, 'utf8').catch(() => undefined);
  if (old === content) return file;
  await mkdir(podDir, { recursive: true, mode: 0o750 });
  await writeFile(file, content, { mode: 0o644 });
  await chmod(file, 0o644); // a create's mode is cut by the umask; containers of any user must read it
  return file;
}
