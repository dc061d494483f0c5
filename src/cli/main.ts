// berth's composition root: parses the command line, builds the real Docker runtime, the kubelet, the
// proxy and the API clients, and wires them together. Nothing imports this file.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import { createLogger, errorMessage, InvalidConfigError, type Logger } from '../lib/index.ts';
import { DockerRuntime, DockerStreamingRuntime, PAUSE_IMAGE } from '../cri/docker/index.ts';
import { L, type Container, type PodSandbox } from '../cri/index.ts';
import { Kubelet, KubeletServer, ManifestSource, FILE_SOURCE, API_SOURCE, hostMachineReader, startKubeletApi, createStreamServer, type ManifestError, type RecordedEvent } from '../kubelet/index.ts';
import { buildSecurityAdmission, type AdmitResult } from '../kubelet/index.ts';
import { cmdLogs, kubeletConfigz, splitLogsArgs } from './logs.ts';
import { cmdExec, splitExecArgs } from './exec.ts';
import { connectCluster } from './cluster.ts';
import { exitOnUnhandledRejection, proxyMetricsText, serveProxyEndpoints, startProxy, type RunningProxy } from './proxy.ts';
import { runCleanup, runNftRules, runRules } from '../proxy/index.ts';
import http from 'node:http';
import { loadConfig, parseFlags, usage, type BerthConfig, type FlagSpec } from './config.ts';
import { humanDuration, podSummary, table } from './print.ts';
import { cmdStats, startStats } from './stats.ts';
import { createEvictionGC } from './eviction-gc.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** IPv4 of the default-route interface (as the kubelet picks its node IP when --node-ip is unset). */
export function detectHostIP(): string {
  let iface: string | undefined;
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === '00000000' && f[0]) {
        iface = f[0];
        break;
      }
    }
  } catch {
    // no /proc: fall through
  }
  const nets = os.networkInterfaces();
  const v4 = (name: string): string | undefined => nets[name]?.find((a) => a.family === 'IPv4' && !a.internal)?.address;
  if (iface && v4(iface)) return v4(iface)!;
  for (const name of Object.keys(nets)) if (!/^(docker|veth|br-|cni|flannel)/.test(name) && v4(name)) return v4(name)!;
  return '127.0.0.1';
}

/** Sysctl and AppArmor admission for every pod; AppArmor is enabled when the kernel module says so (apparmor.IsEnabled). */
function securityAdmission(allowedUnsafeSysctls: string[]): (pod: Pod) => AdmitResult {
  let hostAppArmorEnabled = false;
  try {
    hostAppArmorEnabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  } catch {
    hostAppArmorEnabled = false;
  }
  return buildSecurityAdmission({ allowedUnsafeSysctls, hostAppArmorEnabled });
}

function dockerSocket(endpoint: string): string {
  return endpoint.replace(/^unix:\/\//, '');
}

async function cmdRun(cfg: BerthConfig, log: Logger, env: Record<string, string | undefined>): Promise<void> {
  const hostIP = cfg.nodeIP ?? detectHostIP();
  const runtime = new DockerRuntime({
    docker: dockerSocket(cfg.dockerEndpoint),
    log: log.child({ component: 'docker' }),
    pauseImage: cfg.podInfraContainerImage,
    containerLogMaxSize: cfg.containerLogMaxSize,
    containerLogMaxFiles: cfg.containerLogMaxFiles,
    // log links a full --pod-logs-dir refused are made on a later relist (issue 9, scenario 4)
    repairLogLinks: true,
  });
  const v = await runtime.version().catch((err: unknown) => {
    throw new Error(`cannot reach the Docker Engine at ${cfg.dockerEndpoint}: ${errorMessage(err)}`);
  });
  log.info({ node: cfg.nodeName, hostIP, runtime: `${v.runtimeName}://${v.runtimeVersion}`, version: VERSION, mode: cfg.kubeconfig ? 'cluster' : 'standalone' }, 'starting berth');
  const cluster = cfg.kubeconfig ? await connectCluster({ cfg, log, env, version: VERSION }) : undefined;
  const sources = [...(cfg.podManifestPath ? [FILE_SOURCE] : []), ...(cluster ? [API_SOURCE] : [])];
  const kubelet = new Kubelet({
    runtime,
    images: runtime,
    log: log.child({ component: 'kubelet' }),
    node: {
      nodeName: cfg.nodeName,
      hostname: os.hostname(),
      memoryCapacityBytes: os.totalmem(),
      clusterDNS: cfg.clusterDNS,
      clusterDomain: cfg.clusterDomain,
      rootDir: cfg.rootDir,
      podLogsDir: cfg.podLogsDir,
    },
    hostIP: () => hostIP,
    backoff: { initialMs: cfg.crashLoopBackoffInitialMs, maxMs: cfg.crashLoopBackoffMaxMs },
    syncFrequencyMs: cfg.syncFrequencyMs,
    sources,
    admitAny: securityAdmission(cfg.allowedUnsafeSysctls),
    ...(cluster?.kubeletOptions ?? {}),
  });
  const evictionGC = createEvictionGC({ cfg, log, runtime, kubelet, sandboxImage: cfg.podInfraContainerImage ?? PAUSE_IMAGE, memoryCapacityBytes: os.totalmem() });
  const attached = cluster ? await cluster.attach({ kubelet, runtime, hostIP, eviction: evictionGC }) : undefined;
  let proxy: RunningProxy | undefined;
  if (cfg.proxyMode !== 'none' && (cluster || cfg.proxyKubeconfig)) proxy = await startProxy({ cfg, log, env, version: VERSION, nodeIP: hostIP, api: cluster?.api });
  else log.info({ proxyMode: cfg.proxyMode }, cfg.proxyMode === 'none' ? 'service proxy disabled (--proxy-mode none)' : 'service proxy off: it needs an API server (--kubeconfig)');
  kubelet.start();
  const stats = startStats({ cfg, log, runtime, kubelet });
  evictionGC.useStats(stats.provider);
  evictionGC.start();
  let manifests: ManifestSource | undefined;
  if (cfg.podManifestPath) {
    manifests = new ManifestSource({
      dir: cfg.podManifestPath,
      nodeName: cfg.nodeName,
      log: log.child({ component: 'manifests' }),
      resyncMs: cfg.fileCheckFrequencyMs,
      onUpdate: (snap) => {
        kubelet.updateSource(FILE_SOURCE, snap.pods, snap.errors);
        attached?.setStaticPods(snap.pods);
      },
    });
    manifests.start();
    log.info({ dir: cfg.podManifestPath }, 'watching static pod manifests');
  }
  const checks = [
    { name: 'pleg', healthy: () => kubelet.pleg.healthy() || kubelet.pleg.lastRelistStart === 0 },
    ...(attached?.checks ?? []),
    ...(proxy ? [{ name: 'proxy', healthy: () => proxy!.healthy() }] : []),
  ];
  const server = new KubeletServer({
    kubelet,
    address: cfg.healthzBindAddress,
    healthzPort: cfg.healthzPort,
    readOnlyPort: cfg.readOnlyPort,
    nodeName: cfg.nodeName,
    checks,
    log: log.child({ component: 'server' }),
    extra: (req, res) => {
      if (proxy && req.url === '/metrics/proxy') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(proxyMetricsText(proxy.metrics()));
        return true;
      }
      if (stats.handler(req, res)) return true;
      return false;
    },
  });
  await server.start();
  const kubeletApi = await startKubeletApi({
    ...cfg,
    certDir: cfg.certDir ?? `${cfg.rootDir}/pki`,
    hostIPs: [hostIP],
    fallbackClientCA: cluster?.caData,
    api: cluster?.api,
    kubelet,
    runtime,
    checks,
    machineInfo: () => hostMachineReader({ rootDir: cfg.rootDir }).machineInfo(),
    configz: () => kubeletConfigz(cfg),
    routes: stats.routes,
    streaming: createStreamServer({ runtime: new DockerStreamingRuntime({ docker: dockerSocket(cfg.dockerEndpoint) }), log, idleTimeoutMs: cfg.streamingConnectionIdleTimeoutMs }),
    log: log.child({ component: 'kubelet-api' }),
  });

  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      log.info({ signal: sig }, 'shutting down; pods keep running');
      resolve();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  manifests?.stop();
  await proxy?.stop();
  await attached?.stop();
  evictionGC.stop();
  stats.stop();
  await kubelet.stop();
  await server.stop();
  await kubeletApi?.stop();
}

interface PodsResponse {
  node: string;
  items: (Pod & { status: PodStatus })[];
  errors: ManifestError[];
  events: RecordedEvent[];
}

async function cmdPods(cfg: BerthConfig, wide: boolean, output?: string): Promise<number> {
  const url = `http://127.0.0.1:${cfg.readOnlyPort}/berth/pods`;
  let data: PodsResponse;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    data = (await res.json()) as PodsResponse;
  } catch (err) {
    process.stderr.write(`berth is not answering on ${url} (${errorMessage((err as { cause?: unknown }).cause ?? err)}); showing pods from Docker labels instead\n`);
    return cmdPodsFromDocker(cfg);
  }
  if (output === 'json') {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
    return 0;
  }
  const now = Date.now();
  const rows = data.items
    .sort((a, b) => `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`))
    .map((p) => {
      const s = podSummary(p, p.status);
      const age = p.metadata?.creationTimestamp ?? p.status.startTime;
      const row = [p.metadata?.namespace ?? '', p.metadata?.name ?? '', s.ready, s.status, String(s.restarts), age ? humanDuration(now - Date.parse(age)) : '<unknown>'];
      if (wide) row.push(p.status.podIP ?? '<none>', data.node);
      else row.push(data.node);
      return row;
    });
  for (const e of data.errors) {
    const row = ['', e.name ?? `(${e.file.split('/').pop()})`, '0/0', e.reason, '0', '-'];
    row.push(...(wide ? ['<none>', data.node] : [data.node]));
    rows.push(row);
  }
  const header = ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE'] : ['NODE'])];
  process.stdout.write(rows.length ? table(header, rows) + '\n' : 'No resources found.\n');
  if (data.errors.length) {
    process.stdout.write('\nManifest problems:\n');
    for (const e of data.errors) process.stdout.write(`  ${e.file}${e.document !== undefined ? ` (document ${e.document})` : ''}: ${e.reason}: ${e.message}\n`);
  }
  return 0;
}

/** Every sandbox and container in Docker (all nodes' and states), straight from labels: works while berth is down. */
async function listFromDocker(cfg: BerthConfig): Promise<{ sandboxes: PodSandbox[]; containers: Container[] }> {
  const rt = new DockerRuntime({ docker: dockerSocket(cfg.dockerEndpoint), log: createLogger({ level: 'silent' }) });
  const [sandboxes, containers] = await Promise.all([rt.listPodSandbox(), rt.listContainers()]);
  return { sandboxes, containers };
}

async function cmdPodsFromDocker(cfg: BerthConfig): Promise<number> {
  const { sandboxes, containers } = await listFromDocker(cfg);
  const byUid = new Map<string, { sb: PodSandbox[]; cs: Container[] }>();
  for (const s of sandboxes) {
    const uid = s.metadata.uid;
    if (!byUid.has(uid)) byUid.set(uid, { sb: [], cs: [] });
    byUid.get(uid)!.sb.push(s);
  }
  for (const c of containers) {
    const uid = c.labels[L.podUid] ?? '';
    if (!byUid.has(uid)) byUid.set(uid, { sb: [], cs: [] });
    byUid.get(uid)!.cs.push(c);
  }
  const rows = [...byUid.values()].map(({ sb, cs }) => {
    const m = sb[0]?.metadata;
    const names = new Set(cs.map((c) => c.metadata.name));
    const running = new Set(cs.filter((c) => c.state === 'CONTAINER_RUNNING').map((c) => c.metadata.name));
    const created = Math.min(...sb.map((s) => s.createdAt), ...cs.map((c) => c.createdAt));
    return [
      m?.namespace ?? cs[0]?.labels[L.podNamespace] ?? '',
      m?.name ?? cs[0]?.labels[L.podName] ?? '',
      `${running.size}/${names.size}`,
      sb.some((s) => s.state === 'SANDBOX_READY') ? (running.size ? 'Running' : 'NotReady') : 'Stopped',
      humanDuration(Date.now() - created),
    ];
  });
  process.stdout.write(rows.length ? table(['NAMESPACE', 'NAME', 'RUNNING', 'SANDBOX', 'AGE'], rows) + '\n' : 'No pods found in Docker.\n');
  return 0;
}

async function cmdPs(cfg: BerthConfig, all: boolean): Promise<number> {
  const { sandboxes, containers } = await listFromDocker(cfg);
  const now = Date.now();
  const short = (id: string): string => id.slice(0, 13);
  const sbRows = sandboxes
    .filter((s) => all || s.state === 'SANDBOX_READY')
    .sort((a, b) => b.createdAt - a.createdAt)
    .map((s) => [short(s.id), `${humanDuration(now - s.createdAt)} ago`, s.state === 'SANDBOX_READY' ? 'Ready' : 'NotReady', s.metadata.name, s.metadata.namespace, String(s.metadata.attempt)]);
  const podName = new Map(sandboxes.map((s) => [s.id, s.metadata.name]));
  const cRows = containers
    .filter((c) => all || c.state === 'CONTAINER_RUNNING')
    .sort((a, b) => b.createdAt - a.createdAt)
    .map((c) => [
      short(c.id),
      c.image,
      `${humanDuration(now - c.createdAt)} ago`,
      c.state.replace('CONTAINER_', '').replace(/^(\w)(\w*)$/, (_m, a: string, b: string) => a + b.toLowerCase()),
      c.metadata.name,
      String(c.metadata.attempt),
      short(c.podSandboxId),
      podName.get(c.podSandboxId) ?? c.labels[L.podName] ?? '',
    ]);
  process.stdout.write('SANDBOXES\n' + table(['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT'], sbRows) + '\n\n');
  process.stdout.write('CONTAINERS\n' + table(['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD'], cRows) + '\n');
  return 0;
}

/** `berth proxy`: the service proxy alone (kube-proxy's job), healthz on :10256 and metrics on :10249. */
async function cmdProxy(cfg: BerthConfig, log: Logger, env: Record<string, string | undefined>): Promise<void> {
  const nodeIP = cfg.nodeIP ?? detectHostIP();
  const p = await startProxy({ cfg, log, env, version: VERSION, nodeIP });
  const handler: http.RequestListener = (req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(p.healthy() ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ lastUpdated: new Date(p.metrics().syncProxyRulesLastTimestampMs).toISOString(), currentTime: new Date().toISOString() }));
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(proxyMetricsText(p.metrics()));
    } else {
      res.writeHead(404);
      res.end();
    }
  };
  // kube-proxy's ports: healthz 10256, metrics 10249.
  const endpoints = serveProxyEndpoints({ handler, ports: [10256, 10249], address: cfg.healthzBindAddress, log });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('shutting down the proxy; rules stay in place (berth cleanup removes them)');
  await endpoints.close();
  await p.stop();
}

const HELP = `berth ${VERSION}: a node agent (kubelet + kube-proxy) over the Docker Engine

Usage:
  berth run [flags]            run the node agent (standalone with --pod-manifest-path; cluster node with --kubeconfig)
  berth pods [-o wide|json]    pods this node runs (like kubectl get pods), with manifest problems
  berth logs [-f] [-p] [--tail N] [--since D] [--timestamps] [--limit-bytes N] [-n NS] POD [CONTAINER]
                               a container's log (like kubectl logs), from Docker's log files; works while berth is down
  berth exec [-i] [-t] [-n NS] POD [-c CONTAINER] -- CMD [ARGS...]
                               run a command in a running container (like kubectl exec); works while berth is down
  berth ps [-a]                sandboxes and containers from Docker labels (like crictl ps); works while berth is down
  berth stats [--no-stream] [-o json]  live CPU/memory/network/block I/O/pids per container (like docker stats)
  berth proxy [flags]          only the service proxy (kube-proxy's job); needs --kubeconfig or --proxy-kubeconfig
  berth rules NS/NAME[:PORT]   the iptables chains (nftables elements and chains with --proxy-mode nftables) of one Service
  berth cleanup                remove every iptables rule and chain berth created and its nftables table, nothing else
  berth version

Flags (also BERTH_<FLAG> environment variables, or a KubeletConfiguration file with --config):
${usage()}
`;

/** Flags of the listing commands (pods -o, ps -a, stats --no-stream -o); every command accepts them, as before. */
const LISTING_FLAGS: FlagSpec<'all' | 'noStream' | 'output'>[] = [
  { key: 'all', flag: 'all', short: 'a', kind: 'bool' },
  { key: 'noStream', flag: 'no-stream', kind: 'bool' },
  { key: 'output', flag: 'output', short: 'o', kind: 'string' },
];

export async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const [cmd, ...allArgs] = argv;
  // `berth logs` has kubectl-like flags of its own (-f, --tail…): take them out before the berth flags are parsed.
  const logsArgs = cmd === 'logs' ? splitLogsArgs(allArgs) : undefined;
  const execArgs = cmd === 'exec' ? splitExecArgs(allArgs) : undefined;
  const rest = logsArgs?.others ?? execArgs?.others ?? allArgs;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === 'version' || cmd === '--version') {
    process.stdout.write(`berth ${VERSION}\n`);
    return 0;
  }
  const { found: listing, rest: flags } = parseFlags(rest, LISTING_FLAGS);
  let cfg: BerthConfig;
  try {
    cfg = loadConfig({ argv: flags, env });
  } catch (err) {
    if (err instanceof InvalidConfigError) {
      process.stderr.write(`berth: ${err.problems.map((p) => `\n  ${p}`).join('')}\n`);
      return 2;
    }
    throw err;
  }
  const listed = (key: 'all' | 'noStream' | 'output'): string | undefined => {
    const f = listing.find((x) => x.key === key);
    return f && (f.value ?? (key === 'output' ? '' : 'true'));
  };
  const output = listed('output');
  switch (cmd) {
    case 'run': {
      const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
      process.on('unhandledRejection', (err) => {
        log.fatal({ err }, 'unhandled rejection; exiting so that berth restarts with fresh state');
        process.exit(1);
      });
      await cmdRun(cfg, log, env);
      return 0;
    }
    case 'pods':
      return cmdPods(cfg, output === 'wide', output);
    case 'stats':
      return cmdStats(cfg, { output, noStream: listed('noStream') === 'true', makeRuntime: () => new DockerRuntime({ docker: dockerSocket(cfg.dockerEndpoint), log: createLogger({ level: 'silent' }) }) });
    case 'exec':
      return cmdExec(cfg, execArgs!.exec);
    case 'logs':
      return cmdLogs(cfg, logsArgs!.logs);
    case 'ps':
      return cmdPs(cfg, listed('all') === 'true');
    case 'proxy': {
      const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
      exitOnUnhandledRejection(log);
      await cmdProxy(cfg, log, env);
      return 0;
    }
    case 'rules': {
      const service = cfg.args[0];
      if (!service) {
        process.stderr.write('usage: berth rules NAMESPACE/NAME[:PORT]\n');
        return 2;
      }
      const log = createLogger({ level: 'warn', format: 'text' });
      process.stdout.write(
        cfg.proxyMode === 'nftables' ? await runNftRules({ service }) : await runRules({ service, backend: cfg.iptablesBackend ?? 'auto', log }),
      );
      return 0;
    }
    case 'cleanup': {
      const log = createLogger({ level: cfg.logLevel, format: 'text' });
      await runCleanup({ backend: cfg.iptablesBackend ?? 'all', log });
      return 0;
    }
    default:
      process.stderr.write(`berth: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
      return 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.ts')) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`berth: ${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
