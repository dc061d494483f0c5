// Service environment variables (pkg/kubelet/envvars): for every Service with a cluster IP in the pod's
// namespace, plus the master services in `default`, Docker-links-style variables FOO_SERVICE_HOST etc.
import type { Service } from 'kubernetes-types/core/v1';

const envName = (s: string): string => s.toUpperCase().replace(/-/g, '_');

export function serviceEnv(services: Service[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const svc of services) {
    const ip = svc.spec?.clusterIP;
    if (!ip || ip === 'None') continue;
    const ports = svc.spec?.ports ?? [];
    if (ports.length === 0) continue;
    const name = envName(svc.metadata?.name ?? '');
    const first = ports[0]!;
    out[`${name}_SERVICE_HOST`] = ip;
    out[`${name}_SERVICE_PORT`] = String(first.port);
    for (const p of ports) if (p.name) out[`${name}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
    const proto = (first.protocol ?? 'TCP').toLowerCase();
    const host = ip.includes(':') ? `[${ip}]` : ip;
    out[`${name}_PORT`] = `${proto}://${host}:${first.port}`;
    for (const p of ports) {
      const pr = p.protocol ?? 'TCP';
      const prefix = `${name}_PORT_${p.port}_${pr}`;
      out[prefix] = `${pr.toLowerCase()}://${host}:${p.port}`;
      out[`${prefix}_PROTO`] = pr.toLowerCase();
      out[`${prefix}_PORT`] = String(p.port);
      out[`${prefix}_ADDR`] = ip;
    }
  }
  return out;
}

/** The services whose variables a pod in `namespace` gets: its namespace's, and `default/kubernetes`. */
export function servicesForPod(all: Service[], namespace: string, enableServiceLinks: boolean): Service[] {
  const master = all.filter((s) => s.metadata?.namespace === 'default' && s.metadata?.name === 'kubernetes');
  if (!enableServiceLinks) return master;
  const mine = all.filter((s) => s.metadata?.namespace === namespace && !(namespace === 'default' && s.metadata?.name === 'kubernetes'));
  return [...mine, ...master];
}
