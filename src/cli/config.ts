// Configuration: flags > environment (BERTH_*) > KubeletConfiguration-style file (--config) > defaults.
// Every problem is reported at once (InvalidConfigError); the result is frozen. This is the only place
// that reads process.env (through the `env` argument).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { InvalidConfigError } from '../lib/index.ts';
import { buildSysctlAllowlist, parseLangleMap, parseThresholdConfig } from '../kubelet/index.ts';

export interface BerthConfig {
  nodeName: string;
  nodeIP?: string;
  podManifestPath?: string;
  fileCheckFrequencyMs: number;
  rootDir: string;
  podLogsDir: string;
  kubeconfig?: string;
  clusterDNS: string[];
  clusterDomain: string;
  maxPods: number;
  nodeLabels: Record<string, string>;
  registerWithTaints: { key: string; value?: string; effect: string }[];
  registerNode: boolean;
  dockerEndpoint: string;
  podInfraContainerImage?: string;
  address: string;
  port: number;
  healthzPort: number;
  healthzBindAddress: string;
  readOnlyPort: number;
  syncFrequencyMs: number;
  crashLoopBackoffInitialMs: number;
  crashLoopBackoffMaxMs: number;
  nodeStatusUpdateFrequencyMs: number;
  nodeStatusReportFrequencyMs: number;
  nodeLeaseDurationSeconds: number;
  logFormat: 'json' | 'text';
  logLevel: string;
  proxyMode: 'iptables' | 'nftables' | 'none';
  proxyKubeconfig?: string;
  iptablesBackend?: 'legacy' | 'nft';
  clusterCIDR?: string;
  iptablesSyncPeriodMs: number;
  iptablesMinSyncPeriodMs: number;
  /** Stats housekeeping period (cAdvisor's --housekeeping-interval). */
  housekeepingIntervalMs: number;
  masqueradeAll: boolean;
  /** Kubelet API (:10250) TLS and auth, as KubeletConfiguration's tlsCertFile/authentication/authorization. */
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  /** Where the self-signed serving certificate is generated (default <root-dir>/pki). */
  certDir?: string;
  clientCAFile?: string;
  anonymousAuth: boolean;
  /** Default: true when --kubeconfig is given. */
  authenticationTokenWebhook?: boolean;
  authenticationTokenWebhookCacheTtlMs: number;
  /** 'Webhook' | 'AlwaysAllow'; default Webhook with --kubeconfig, else AlwaysAllow (x509 users only). */
  authorizationMode?: string;
  authorizationWebhookCacheAuthorizedTtlMs: number;
  authorizationWebhookCacheUnauthorizedTtlMs: number;
  /** An exec/attach/port-forward connection with no traffic for this long is closed (0 = never). */
  streamingConnectionIdleTimeoutMs: number;
  /** json-file rotation of container logs (Docker's max-size / max-file). */
  containerLogMaxSize: string;
  containerLogMaxFiles: number;
  /** Eviction thresholds by signal (KubeletConfiguration evictionHard…); hard undefined = upstream's defaults. */
  evictionHard?: Record<string, string>;
  evictionSoft?: Record<string, string>;
  evictionSoftGracePeriod?: Record<string, string>;
  evictionMinimumReclaim?: Record<string, string>;
  evictionPressureTransitionPeriodMs: number;
  evictionMaxPodGracePeriodSeconds: number;
  imageGCHighThresholdPercent: number;
  imageGCLowThresholdPercent: number;
  imageMinimumGCAgeMs: number;
  /** Unsafe sysctls (names or `prefix*`) pods may set, beyond the safe set (--allowed-unsafe-sysctls). */
  allowedUnsafeSysctls: string[];
  /** Positional arguments after the command. */
  args: string[];
}

type Kind = 'string' | 'int' | 'bool' | 'duration' | 'list' | 'map' | 'taints' | 'langleMap';

/** What parseFlags needs of a flag: an OPTIONS row, or one of the few flags a command takes itself (logs -f, exec -it). */
export interface FlagSpec<K extends string = string> {
  key: K;
  /** Long name, without the dashes. */
  flag: string;
  aliases?: string[];
  /** One-letter form (-f). */
  short?: string;
  /** 'bool' flags take no separate value; every other kind takes one (--flag value or --flag=value). */
  kind: Kind;
}

/** One flag as parseFlags found it: `value` undefined is a bare boolean, or a valued flag left without its value. */
export interface FoundFlag<K extends string = string> {
  key: K;
  /** As written: --hostname-override, -n. */
  name: string;
  value: string | undefined;
}

/**
 * The one flag parser: node:util parseArgs driven by a table (OPTIONS, or a command's own flags). Pure. Returns the
 * flags of `specs` in order and, as written and in order, everything else (unknown flags, positional arguments,
 * `--` and what follows) for the caller to judge or to pass on. `boolTakesWord`: a bare boolean takes a following
 * `true`/`false` (berth's flags: --register-node false).
 */
export function parseFlags<K extends string>(args: string[], specs: readonly FlagSpec<K>[], boolTakesWord = false): { found: FoundFlag<K>[]; rest: string[] } {
  const byName = new Map<string, FlagSpec<K>>();
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const spec of specs)
    for (const [i, name] of [spec.flag, ...(spec.aliases ?? [])].entries()) {
      byName.set(name, spec);
      options[name] = { type: spec.kind === 'bool' ? 'boolean' : 'string', ...(i === 0 && spec.short ? { short: spec.short } : {}) };
    }
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const found: FoundFlag<K>[] = [];
  const rest: string[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const tok = tokens[t]!;
    if (tok.kind === 'option-terminator') rest.push('--');
    else if (tok.kind === 'positional') rest.push(tok.value);
    else {
      const spec = byName.get(tok.name);
      if (!spec) {
        rest.push(tok.inlineValue ? `${tok.rawName}=${tok.value}` : tok.rawName);
        continue;
      }
      // pflag's shorthand form -o=wide means the value "wide".
      let value = tok.rawName.startsWith('--') || !tok.inlineValue ? tok.value : tok.value?.replace(/^=/, '');
      const next = tokens[t + 1];
      if (spec.kind === 'bool' && value === undefined && boolTakesWord && next?.kind === 'positional' && /^(true|false)$/.test(next.value)) {
        value = next.value;
        t++;
      }
      found.push({ key: spec.key, name: tok.rawName, value });
    }
  }
  return { found, rest };
}

interface Opt extends FlagSpec<keyof BerthConfig> {
  /** Key in a KubeletConfiguration file. */
  file?: string;
  help: string;
}

export const OPTIONS: Opt[] = [
  { key: 'nodeName', flag: 'hostname-override', aliases: ['node-name'], kind: 'string', help: 'node name (default: hostname)' },
  { key: 'nodeIP', flag: 'node-ip', kind: 'string', help: "node IP address reported in the Node's status and used as hostIP" },
  { key: 'podManifestPath', flag: 'pod-manifest-path', aliases: ['manifest-dir'], kind: 'string', file: 'staticPodPath', help: 'folder of static pod manifests' },
  { key: 'fileCheckFrequencyMs', flag: 'file-check-frequency', kind: 'duration', file: 'fileCheckFrequency', help: 'how often the manifest folder is re-read (default 20s)' },
  { key: 'rootDir', flag: 'root-dir', kind: 'string', help: 'berth state directory (default /var/lib/berth)' },
  { key: 'podLogsDir', flag: 'pod-logs-dir', kind: 'string', file: 'podLogsDir', help: 'pod log directory (default /var/log/pods)' },
  { key: 'kubeconfig', flag: 'kubeconfig', kind: 'string', help: 'kubeconfig of the node identity; without it berth runs standalone' },
  { key: 'clusterDNS', flag: 'cluster-dns', kind: 'list', file: 'clusterDNS', help: 'DNS server IPs for pods with dnsPolicy ClusterFirst' },
  { key: 'clusterDomain', flag: 'cluster-domain', kind: 'string', file: 'clusterDomain', help: 'cluster domain (default cluster.local)' },
  { key: 'maxPods', flag: 'max-pods', kind: 'int', file: 'maxPods', help: 'maximum pods on this node (default 110)' },
  { key: 'nodeLabels', flag: 'node-labels', kind: 'map', help: 'labels to add when registering the node (k=v,...)' },
  { key: 'registerWithTaints', flag: 'register-with-taints', kind: 'taints', file: 'registerWithTaints', help: 'taints to add when registering (key=value:Effect,...)' },
  { key: 'registerNode', flag: 'register-node', kind: 'bool', file: 'registerNode', help: 'register the node with the API server (default true)' },
  { key: 'dockerEndpoint', flag: 'docker-endpoint', aliases: ['container-runtime-endpoint'], kind: 'string', help: 'Docker socket (default unix:///var/run/docker.sock)' },
  { key: 'podInfraContainerImage', flag: 'pod-infra-container-image', kind: 'string', help: 'sandbox image (default: berth builds berth.local/pause locally)' },
  { key: 'address', flag: 'address', kind: 'string', file: 'address', help: 'address of the kubelet API (default 0.0.0.0)' },
  { key: 'port', flag: 'port', kind: 'int', file: 'port', help: 'kubelet API port (default 10250)' },
  { key: 'healthzPort', flag: 'healthz-port', kind: 'int', file: 'healthzPort', help: 'healthz port on 127.0.0.1 (default 10248, 0 = off)' },
  { key: 'healthzBindAddress', flag: 'healthz-bind-address', kind: 'string', file: 'healthzBindAddress', help: 'healthz address (default 127.0.0.1)' },
  { key: 'readOnlyPort', flag: 'read-only-port', kind: 'int', file: 'readOnlyPort', help: 'local read-only API port used by `berth pods` (default 10255, 0 = off)' },
  { key: 'syncFrequencyMs', flag: 'sync-frequency', kind: 'duration', file: 'syncFrequency', help: 'periodic re-sync of every pod (default 1m)' },
  { key: 'crashLoopBackoffInitialMs', flag: 'crash-loop-backoff-initial', kind: 'duration', help: 'first crash-loop back-off (default 10s)' },
  { key: 'crashLoopBackoffMaxMs', flag: 'crash-loop-backoff-max', kind: 'duration', help: 'maximum crash-loop back-off (default 5m)' },
  { key: 'nodeStatusUpdateFrequencyMs', flag: 'node-status-update-frequency', kind: 'duration', file: 'nodeStatusUpdateFrequency', help: 'how often node status is computed (default 10s)' },
  { key: 'nodeStatusReportFrequencyMs', flag: 'node-status-report-frequency', kind: 'duration', file: 'nodeStatusReportFrequency', help: 'node status is posted at least this often (default 5m)' },
  { key: 'nodeLeaseDurationSeconds', flag: 'node-lease-duration-seconds', kind: 'int', file: 'nodeLeaseDurationSeconds', help: 'Lease duration (default 40)' },
  { key: 'logFormat', flag: 'log-format', kind: 'string', help: 'json (default) or text' },
  { key: 'logLevel', flag: 'log-level', kind: 'string', help: 'trace, debug, info (default), warn, error' },
  { key: 'proxyMode', flag: 'proxy-mode', kind: 'string', help: 'iptables (default), nftables or none' },
  { key: 'proxyKubeconfig', flag: 'proxy-kubeconfig', kind: 'string', help: 'kubeconfig for the proxy (default: --kubeconfig)' },
  { key: 'iptablesBackend', flag: 'iptables-backend', kind: 'string', help: 'legacy or nft (default: the one holding more rules)' },
  { key: 'clusterCIDR', flag: 'cluster-cidr', kind: 'string', help: 'pod CIDR; traffic to Services from outside it is masqueraded' },
  { key: 'iptablesSyncPeriodMs', flag: 'iptables-sync-period', kind: 'duration', help: 'full iptables sync period (default 1h)' },
  { key: 'iptablesMinSyncPeriodMs', flag: 'iptables-min-sync-period', kind: 'duration', help: 'minimum time between syncs (default 1s)' },
  { key: 'housekeepingIntervalMs', flag: 'housekeeping-interval', kind: 'duration', help: 'how often container and node stats are read from the cgroups (default 10s)' },
  { key: 'masqueradeAll', flag: 'masquerade-all', kind: 'bool', help: 'SNAT all traffic sent via Service cluster IPs' },
  { key: 'tlsCertFile', flag: 'tls-cert-file', kind: 'string', file: 'tlsCertFile', help: 'kubelet API serving certificate (default: self-signed, generated into --cert-dir)' },
  { key: 'tlsPrivateKeyFile', flag: 'tls-private-key-file', kind: 'string', file: 'tlsPrivateKeyFile', help: 'key of --tls-cert-file' },
  { key: 'certDir', flag: 'cert-dir', kind: 'string', help: 'directory of the generated serving certificate (default <root-dir>/pki)' },
  { key: 'clientCAFile', flag: 'client-ca-file', kind: 'string', file: 'authentication.x509.clientCAFile', help: 'CA bundle that verifies client certificates on the kubelet API' },
  { key: 'anonymousAuth', flag: 'anonymous-auth', kind: 'bool', file: 'authentication.anonymous.enabled', help: 'treat unauthenticated kubelet API requests as system:anonymous (default false)' },
  { key: 'authenticationTokenWebhook', flag: 'authentication-token-webhook', kind: 'bool', file: 'authentication.webhook.enabled', help: 'check bearer tokens with TokenReview (default true with --kubeconfig)' },
  { key: 'authenticationTokenWebhookCacheTtlMs', flag: 'authentication-token-webhook-cache-ttl', kind: 'duration', file: 'authentication.webhook.cacheTTL', help: 'cache of TokenReview answers (default 2m)' },
  { key: 'authorizationMode', flag: 'authorization-mode', kind: 'string', file: 'authorization.mode', help: 'Webhook (SubjectAccessReview; default with --kubeconfig) or AlwaysAllow' },
  { key: 'authorizationWebhookCacheAuthorizedTtlMs', flag: 'authorization-webhook-cache-authorized-ttl', kind: 'duration', file: 'authorization.webhook.cacheAuthorizedTTL', help: 'cache of allowed SubjectAccessReviews (default 5m)' },
  { key: 'authorizationWebhookCacheUnauthorizedTtlMs', flag: 'authorization-webhook-cache-unauthorized-ttl', kind: 'duration', file: 'authorization.webhook.cacheUnauthorizedTTL', help: 'cache of denied SubjectAccessReviews (default 30s)' },
  { key: 'streamingConnectionIdleTimeoutMs', flag: 'streaming-connection-idle-timeout', kind: 'duration', file: 'streamingConnectionIdleTimeout', help: 'close an exec/attach/port-forward connection idle this long (default 4h, 0 = never)' },
  { key: 'containerLogMaxSize', flag: 'container-log-max-size', kind: 'string', file: 'containerLogMaxSize', help: 'rotate a container log at this size (default 10Mi)' },
  { key: 'containerLogMaxFiles', flag: 'container-log-max-files', kind: 'int', file: 'containerLogMaxFiles', help: 'container log files kept, current included (default 5)' },
  { key: 'evictionHard', flag: 'eviction-hard', kind: 'langleMap', file: 'evictionHard', help: 'hard eviction thresholds (default memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%)' },
  { key: 'evictionSoft', flag: 'eviction-soft', kind: 'langleMap', file: 'evictionSoft', help: 'soft eviction thresholds (e.g. memory.available<1.5Gi), each with a grace period' },
  { key: 'evictionSoftGracePeriod', flag: 'eviction-soft-grace-period', kind: 'map', file: 'evictionSoftGracePeriod', help: 'grace period per soft threshold (e.g. memory.available=1m30s)' },
  { key: 'evictionMinimumReclaim', flag: 'eviction-minimum-reclaim', kind: 'map', file: 'evictionMinimumReclaim', help: 'minimum reclaim per signal once a threshold is met (e.g. memory.available=0Mi,nodefs.available=500Mi)' },
  { key: 'evictionPressureTransitionPeriodMs', flag: 'eviction-pressure-transition-period', kind: 'duration', file: 'evictionPressureTransitionPeriod', help: 'how long a pressure condition stays after its threshold was last met (default 5m)' },
  { key: 'evictionMaxPodGracePeriodSeconds', flag: 'eviction-max-pod-grace-period', kind: 'int', file: 'evictionMaxPodGracePeriod', help: 'grace period (s) of pods evicted for a soft threshold (default 0)' },
  { key: 'imageGCHighThresholdPercent', flag: 'image-gc-high-threshold', kind: 'int', file: 'imageGCHighThresholdPercent', help: 'imagefs usage (%) at which image GC runs (default 85; 100 disables)' },
  { key: 'imageGCLowThresholdPercent', flag: 'image-gc-low-threshold', kind: 'int', file: 'imageGCLowThresholdPercent', help: 'imagefs usage (%) image GC frees down to (default 80)' },
  { key: 'imageMinimumGCAgeMs', flag: 'minimum-image-ttl-duration', aliases: ['image-minimum-gc-age'], kind: 'duration', file: 'imageMinimumGCAge', help: 'minimum age of an unused image before it is collected (default 2m)' },
  { key: 'allowedUnsafeSysctls', flag: 'allowed-unsafe-sysctls', kind: 'list', file: 'allowedUnsafeSysctls', help: 'unsafe sysctls (or prefix*) pods may set, besides the safe set (default none)' },
];

/** --config FILE (also BERTH_CONFIG): the KubeletConfiguration-style file; parsed with OPTIONS, not one of them. */
const CONFIG_FLAG: FlagSpec<'config'> = { key: 'config', flag: 'config', kind: 'string' };

export const DEFAULTS: Omit<BerthConfig, 'nodeName' | 'args'> = {
  fileCheckFrequencyMs: 20_000,
  rootDir: '/var/lib/berth',
  podLogsDir: '/var/log/pods',
  clusterDNS: [],
  clusterDomain: 'cluster.local',
  maxPods: 110,
  nodeLabels: {},
  registerWithTaints: [],
  registerNode: true,
  dockerEndpoint: 'unix:///var/run/docker.sock',
  address: '0.0.0.0',
  port: 10250,
  healthzPort: 10248,
  healthzBindAddress: '127.0.0.1',
  readOnlyPort: 10255,
  syncFrequencyMs: 60_000,
  crashLoopBackoffInitialMs: 10_000,
  crashLoopBackoffMaxMs: 300_000,
  nodeStatusUpdateFrequencyMs: 10_000,
  nodeStatusReportFrequencyMs: 300_000,
  nodeLeaseDurationSeconds: 40,
  logFormat: 'json',
  logLevel: 'info',
  proxyMode: 'iptables',
  iptablesSyncPeriodMs: 3_600_000,
  iptablesMinSyncPeriodMs: 1000,
  housekeepingIntervalMs: 10_000,
  masqueradeAll: false,
  anonymousAuth: false,
  authenticationTokenWebhookCacheTtlMs: 120_000,
  authorizationWebhookCacheAuthorizedTtlMs: 300_000,
  authorizationWebhookCacheUnauthorizedTtlMs: 30_000,
  streamingConnectionIdleTimeoutMs: 4 * 3_600_000,
  containerLogMaxSize: '10Mi',
  containerLogMaxFiles: 5,
  evictionPressureTransitionPeriodMs: 300_000,
  evictionMaxPodGracePeriodSeconds: 0,
  imageGCHighThresholdPercent: 85,
  imageGCLowThresholdPercent: 80,
  imageMinimumGCAgeMs: 120_000,
  allowedUnsafeSysctls: [],
};

/** Go duration ("1m30s", "300ms", "10s") or plain seconds → milliseconds. */
export function parseDuration(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed += m[0].length;
  }
  if (consumed !== s.length || s.length === 0) throw new Error(`invalid duration ${JSON.stringify(s)}`);
  return total;
}

function convert(o: Opt, raw: unknown, problems: string[], where: string): unknown {
  const bad = (why: string): undefined => {
    problems.push(`${where}: ${why}`);
    return undefined;
  };
  switch (o.kind) {
    case 'string':
      return typeof raw === 'string' ? raw : raw === undefined ? undefined : String(raw);
    case 'int': {
      const n = Number(raw);
      return Number.isInteger(n) ? n : bad(`${JSON.stringify(raw)} is not an integer`);
    }
    case 'bool':
      if (raw === true || raw === 'true' || raw === '') return true;
      if (raw === false || raw === 'false') return false;
      return bad(`${JSON.stringify(raw)} is not true/false`);
    case 'duration':
      try {
        return typeof raw === 'number' ? raw * 1000 : parseDuration(String(raw));
      } catch (err) {
        return bad((err as Error).message);
      }
    case 'list':
      return Array.isArray(raw) ? raw.map(String) : String(raw).split(',').map((x) => x.trim()).filter(Boolean);
    case 'map': {
      if (typeof raw === 'object' && raw !== null) return raw;
      const out: Record<string, string> = {};
      for (const kv of String(raw).split(',').filter(Boolean)) {
        const i = kv.indexOf('=');
        if (i <= 0) return bad(`${JSON.stringify(kv)} is not key=value`);
        out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
      }
      return out;
    }
    case 'langleMap': {
      if (typeof raw === 'object' && raw !== null && !Array.isArray(raw))
        return Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      try {
        return parseLangleMap(String(raw));
      } catch (err) {
        return bad((err as Error).message);
      }
    }
    case 'taints': {
      if (Array.isArray(raw)) return raw;
      const out: { key: string; value?: string; effect: string }[] = [];
      for (const t of String(raw).split(',').filter(Boolean)) {
        const m = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(t.trim());
        if (!m) return bad(`${JSON.stringify(t)} is not key[=value]:Effect`);
        out.push({ key: m[1]!, value: m[2], effect: m[3]! });
      }
      return out;
    }
  }
}

export interface LoadConfigInput {
  argv: string[];
  env: Record<string, string | undefined>;
  /** Reads --config files; injectable for tests. */
  readFile?: (p: string) => string;
  hostname?: string;
}

export function loadConfig(input: LoadConfigInput): Readonly<BerthConfig> {
  const problems: string[] = [];
  const flags: Partial<Record<keyof BerthConfig, unknown>> = {};
  const args: string[] = [];
  let configFile: string | undefined = input.env.BERTH_CONFIG;
  const { found, rest } = parseFlags<keyof BerthConfig | 'config'>(input.argv, [...OPTIONS, CONFIG_FLAG], true);
  for (const f of found) {
    const o = OPTIONS.find((x) => x.key === f.key);
    if (!o) configFile = f.value;
    else if (f.value === undefined && o.kind !== 'bool') problems.push(`flag ${f.name} needs a value`);
    else flags[o.key] = convert(o, f.value ?? 'true', problems, f.name);
  }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') {
      args.push(...rest.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) problems.push(`unknown flag ${a.split('=')[0]}`);
    else args.push(a);
  }
  const fromEnv: Partial<Record<keyof BerthConfig, unknown>> = {};
  for (const o of OPTIONS) {
    const envName = `BERTH_${o.flag.toUpperCase().replace(/-/g, '_')}`;
    const v = input.env[envName];
    if (v !== undefined && v !== '') fromEnv[o.key] = convert(o, v, problems, envName);
  }
  const fromFile: Partial<Record<keyof BerthConfig, unknown>> = {};
  if (configFile) {
    try {
      const doc = parseYaml((input.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(configFile)) as Record<string, unknown>;
      if (doc && typeof doc === 'object')
        for (const o of OPTIONS) {
          // Dotted keys reach into KubeletConfiguration's nested sections (authentication.x509.clientCAFile).
          const v = o.file?.split('.').reduce<unknown>((at, k) => (at && typeof at === 'object' ? (at as Record<string, unknown>)[k] : undefined), doc);
          if (o.file && v !== undefined) fromFile[o.key] = convert(o, v, problems, `${configFile}: ${o.file}`);
        }
    } catch (err) {
      problems.push(`--config ${configFile}: ${(err as Error).message}`);
    }
  }
  const merged = { ...DEFAULTS, ...clean(fromFile), ...clean(fromEnv), ...clean(flags) } as BerthConfig;
  merged.nodeName = (merged.nodeName || input.hostname || os.hostname()).toLowerCase();
  merged.args = args;
  if (!['json', 'text'].includes(merged.logFormat)) problems.push(`--log-format: ${JSON.stringify(merged.logFormat)} is not json or text`);
  if (!['iptables', 'nftables', 'none'].includes(merged.proxyMode)) problems.push(`--proxy-mode: ${JSON.stringify(merged.proxyMode)} is not iptables, nftables or none`);
  if (merged.iptablesBackend && !['legacy', 'nft'].includes(merged.iptablesBackend)) problems.push(`--iptables-backend: ${JSON.stringify(merged.iptablesBackend)} is not legacy or nft`);
  if (merged.maxPods < 1) problems.push('--max-pods must be at least 1');
  if (merged.authorizationMode && !['Webhook', 'AlwaysAllow'].includes(merged.authorizationMode)) problems.push(`--authorization-mode: ${JSON.stringify(merged.authorizationMode)} is not Webhook or AlwaysAllow`);
  if (!merged.kubeconfig && merged.authorizationMode === 'Webhook') problems.push('--authorization-mode=Webhook needs --kubeconfig (SubjectAccessReview)');
  if (!merged.kubeconfig && merged.authenticationTokenWebhook) problems.push('--authentication-token-webhook needs --kubeconfig (TokenReview)');
  if (!merged.tlsCertFile !== !merged.tlsPrivateKeyFile) problems.push('--tls-cert-file and --tls-private-key-file go together');
  if (merged.containerLogMaxFiles < 2) problems.push('--container-log-max-files must be at least 2');
  if (merged.housekeepingIntervalMs < 1000) problems.push('--housekeeping-interval must be at least 1s');
  try {
    parseThresholdConfig({ hard: merged.evictionHard, soft: merged.evictionSoft, softGracePeriod: merged.evictionSoftGracePeriod, minimumReclaim: merged.evictionMinimumReclaim });
  } catch (err) {
    problems.push(`--eviction-*: ${(err as Error).message}`);
  }
  try {
    buildSysctlAllowlist(merged.allowedUnsafeSysctls);
  } catch (err) {
    problems.push(`--allowed-unsafe-sysctls: ${(err as Error).message}`);
  }
  // Upstream's ValidateKubeletConfiguration for the image GC thresholds.
  const { imageGCHighThresholdPercent: high, imageGCLowThresholdPercent: low } = merged;
  if (high < 0 || high > 100) problems.push(`--image-gc-high-threshold: ${high} must be between 0 and 100, inclusive`);
  if (low < 0 || low > 100) problems.push(`--image-gc-low-threshold: ${low} must be between 0 and 100, inclusive`);
  if (low >= high) problems.push(`--image-gc-low-threshold (${low}) must be less than --image-gc-high-threshold (${high})`);
  if (merged.evictionMaxPodGracePeriodSeconds < 0) problems.push('--eviction-max-pod-grace-period must not be negative');
  if (merged.crashLoopBackoffInitialMs <= 0 || merged.crashLoopBackoffMaxMs < merged.crashLoopBackoffInitialMs)
    problems.push('--crash-loop-backoff-initial must be > 0 and <= --crash-loop-backoff-max');
  if (merged.nodeIP && !/^[0-9.]+$|:/.test(merged.nodeIP)) problems.push(`--node-ip: ${JSON.stringify(merged.nodeIP)} is not an IP address`);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(merged.nodeName)) problems.push(`node name ${JSON.stringify(merged.nodeName)} is not a valid DNS subdomain`);
  if (problems.length) throw new InvalidConfigError(problems);
  return Object.freeze(merged);
}

function clean<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function usage(): string {
  const lines = OPTIONS.map((o) => `  --${o.flag.padEnd(30)} ${o.help}`);
  return lines.join('\n');
}
