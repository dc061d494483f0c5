// Kernel settings the proxy needs, read and written through /proc/sys (or `sysctl` inside a test namespace).
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../lib/index.ts';
import { errorMessage } from '../lib/index.ts';
import { inNetns, runCommand } from './exec.ts';

export const SYSCTL_ROUTE_LOCALNET = 'net/ipv4/conf/all/route_localnet';
export const SYSCTL_IP_FORWARD = 'net/ipv4/ip_forward';
export const SYSCTL_BRIDGE_NF_CALL_IPTABLES = 'net/bridge/bridge-nf-call-iptables';
export const SYSCTL_CONNTRACK_TCP_BE_LIBERAL = 'net/netfilter/nf_conntrack_tcp_be_liberal';

/** Keys use upstream's slash form ("net/ipv4/ip_forward"). */
export interface Sysctl {
  /** Current value, trimmed. Throws when the key does not exist. */
  get(key: string): Promise<string>;
  /** Writes the value. Throws when the key does not exist or cannot be written. */
  set(key: string, value: string): Promise<void>;
}

export function createSysctl(opts: { netns?: string } = {}): Sysctl {
  const netns = opts.netns;
  if (!netns) {
    return {
      get: async (key) => (await readFile(`/proc/sys/${key}`, 'utf8')).trim(),
      set: async (key, value) => writeFile(`/proc/sys/${key}`, `${value}\n`),
    };
  }
  const dotted = (key: string): string => key.replaceAll('/', '.');
  return {
    async get(key) {
      const r = await runCommand(inNetns(netns, ['sysctl', '-n', dotted(key)]), { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`sysctl ${key}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    },
    async set(key, value) {
      const r = await runCommand(inNetns(netns, ['sysctl', '-q', '-w', `${dotted(key)}=${value}`]), { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`sysctl ${key}=${value}: ${r.stderr.trim()}`);
    },
  };
}

export interface SysctlRequirement {
  key: string;
  value: string;
  /** Failure is fatal (route_localnet with localhost NodePorts) or only logged. */
  required: boolean;
  /** Skip quietly when the key does not exist (bridge-nf-call without br_netfilter). */
  optionalKey?: boolean;
  why: string;
}

/** Ensures each setting, logging what it changed. Throws the first failure of a required one. */
export async function ensureSysctls(sysctl: Sysctl, reqs: readonly SysctlRequirement[], log: Logger): Promise<void> {
  for (const r of reqs) {
    let current: string;
    try {
      current = await sysctl.get(r.key);
    } catch (err: unknown) {
      if (r.optionalKey) {
        log.info({ sysctl: r.key, why: r.why }, 'sysctl not present, skipped');
        continue;
      }
      if (r.required) throw new Error(`cannot read sysctl ${r.key}: ${errorMessage(err)}`, { cause: err });
      log.warn({ err, sysctl: r.key }, 'cannot read sysctl');
      continue;
    }
    if (current === r.value) {
      log.info({ sysctl: r.key, value: current, why: r.why }, 'sysctl already set');
      continue;
    }
    try {
      await sysctl.set(r.key, r.value);
      log.info({ sysctl: r.key, from: current, to: r.value, why: r.why }, 'sysctl set');
    } catch (err: unknown) {
      if (r.required) throw new Error(`cannot set sysctl ${r.key}=${r.value}: ${errorMessage(err)}`, { cause: err });
      log.warn({ err, sysctl: r.key, value: r.value }, 'cannot set sysctl');
    }
  }
}
