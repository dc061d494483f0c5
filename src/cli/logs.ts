// `berth logs [-f] [-p|--previous] [--tail N] [--since D|--since-time T] [--timestamps] [--limit-bytes N] [-n NS]
// POD [CONTAINER|-c CONTAINER]`: a container's log on this node, like `kubectl logs`, read straight from Docker's
// labels and json-file logs with the same code as the kubelet API's /containerLogs (works while berth is down).
// Also /configz's view of the configuration.
import { createLogger } from '../lib/index.ts';
import { DockerRuntime } from '../cri/docker/index.ts';
import { L, type ContainerStatus } from '../cri/index.ts';
import { computePodLogOptions, openContainerLog, podFromRuntime } from '../kubelet/index.ts';
import { parseDuration, parseFlags, type BerthConfig, type FlagSpec } from './config.ts';

export interface LogsArgs {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tail?: string;
  since?: string;
  sinceTime?: string;
  limitBytes?: string;
  container?: string;
  namespace: string;
}

/** Flags of `berth logs` (taken out before the berth flags are parsed), as kubectl logs spells them. */
export const LOGS_FLAGS: FlagSpec<keyof LogsArgs>[] = [
  { key: 'follow', flag: 'follow', short: 'f', kind: 'bool' },
  { key: 'previous', flag: 'previous', short: 'p', kind: 'bool' },
  { key: 'timestamps', flag: 'timestamps', kind: 'bool' },
  { key: 'tail', flag: 'tail', kind: 'string' },
  { key: 'since', flag: 'since', kind: 'string' },
  { key: 'sinceTime', flag: 'since-time', kind: 'string' },
  { key: 'limitBytes', flag: 'limit-bytes', kind: 'string' },
  { key: 'container', flag: 'container', short: 'c', kind: 'string' },
  { key: 'namespace', flag: 'namespace', short: 'n', kind: 'string' },
];

/** Pure: splits `berth logs` arguments into its own options and the rest (berth flags and positionals). */
export function splitLogsArgs(args: string[]): { logs: LogsArgs; others: string[] } {
  const logs: LogsArgs = { follow: false, previous: false, timestamps: false, namespace: 'default' };
  const { found, rest } = parseFlags(args, LOGS_FLAGS);
  for (const { key, value } of found) {
    if (key === 'follow' || key === 'previous' || key === 'timestamps') logs[key] = value !== 'false';
    else logs[key] = value ?? '';
  }
  return { logs, others: rest };
}

/** Pure: the containerLogs query these options mean (so the kubelet API's decoding and validation apply). */
export function buildLogsQuery(l: LogsArgs): URLSearchParams | { error: string } {
  const q = new URLSearchParams();
  if (l.follow) q.set('follow', 'true');
  if (l.previous) q.set('previous', 'true');
  if (l.timestamps) q.set('timestamps', 'true');
  // kubectl's --tail=-1 means all lines.
  if (l.tail !== undefined && l.tail !== '-1') q.set('tailLines', l.tail);
  if (l.limitBytes !== undefined) q.set('limitBytes', l.limitBytes);
  if (l.sinceTime !== undefined) q.set('sinceTime', l.sinceTime);
  if (l.since !== undefined) {
    try {
      q.set('sinceSeconds', String(Math.max(1, Math.ceil(parseDuration(l.since) / 1000))));
    } catch (err) {
      return { error: `--since: ${(err as Error).message}` };
    }
  }
  return q;
}

export async function cmdLogs(cfg: BerthConfig, l: LogsArgs): Promise<number> {
  const [podArg, containerArg] = cfg.args;
  if (!podArg) {
    process.stderr.write('usage: berth logs [-f] [-p] [--tail N] [--since D] [--timestamps] [--limit-bytes N] [-n NAMESPACE] POD [CONTAINER]\n');
    return 2;
  }
  const q = buildLogsQuery(l);
  if (!(q instanceof URLSearchParams)) {
    process.stderr.write(`berth: ${q.error}\n`);
    return 2;
  }
  const opts = computePodLogOptions(q);
  if (!opts.ok) {
    process.stderr.write(`berth: invalid log options (${opts.message})\n`);
    return 2;
  }
  const runtime = new DockerRuntime({ docker: cfg.dockerEndpoint.replace(/^unix:\/\//, ''), log: createLogger({ level: 'silent' }) });
  const listed = await runtime.listContainers({ labelSelector: { [L.node]: cfg.nodeName, [L.podNamespace]: l.namespace } });
  // Static pods carry the node name as a suffix (`web-<node>`); accept the manifest's name too.
  const podName = [podArg, `${podArg}-${cfg.nodeName}`].find((n) => listed.some((c) => c.labels[L.podName] === n)) ?? podArg;
  const statuses: ContainerStatus[] = [];
  for (const c of listed.filter((x) => x.labels[L.podName] === podName)) statuses.push(await runtime.containerStatus(c.id));
  const found = podFromRuntime(l.namespace, podName, statuses);
  if (!found) {
    process.stderr.write(`berth: pod "${podName}" does not exist\n`);
    return 1;
  }
  let container = l.container ?? containerArg;
  const names = found.pod.spec?.containers.map((c) => c.name) ?? [];
  if (!container && names.length === 1) container = names[0];
  if (!container) {
    process.stderr.write(`berth: a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]\n`);
    return 1;
  }
  const opened = await openContainerLog({ namespace: l.namespace, pod: podName, container: container ?? '', options: opts.options }, () => found, runtime);
  if (!opened.ok) {
    process.stderr.write(`berth: ${opened.message}\n`);
    return 1;
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.on('error', stop);
  try {
    await opened.stream(
      (chunk) => new Promise<void>((resolve) => (process.stdout.write(chunk) ? resolve() : process.stdout.once('drain', resolve))),
      ac.signal,
    );
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}

/** /configz: the running configuration in KubeletConfiguration's names (upstream wraps it in `kubeletconfig`). */
export function kubeletConfigz(cfg: BerthConfig): Record<string, unknown> {
  const d = (ms: number): string => `${ms / 1000}s`;
  return {
    kubeletconfig: {
      kind: 'KubeletConfiguration',
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      staticPodPath: cfg.podManifestPath,
      syncFrequency: d(cfg.syncFrequencyMs),
      fileCheckFrequency: d(cfg.fileCheckFrequencyMs),
      address: cfg.address,
      port: cfg.port,
      readOnlyPort: cfg.readOnlyPort,
      healthzPort: cfg.healthzPort,
      healthzBindAddress: cfg.healthzBindAddress,
      tlsCertFile: cfg.tlsCertFile,
      tlsPrivateKeyFile: cfg.tlsPrivateKeyFile,
      authentication: {
        x509: { clientCAFile: cfg.clientCAFile },
        webhook: { enabled: cfg.authenticationTokenWebhook ?? !!cfg.kubeconfig, cacheTTL: d(cfg.authenticationTokenWebhookCacheTtlMs) },
        anonymous: { enabled: cfg.anonymousAuth },
      },
      authorization: {
        mode: cfg.authorizationMode ?? (cfg.kubeconfig ? 'Webhook' : 'AlwaysAllow'),
        webhook: { cacheAuthorizedTTL: d(cfg.authorizationWebhookCacheAuthorizedTtlMs), cacheUnauthorizedTTL: d(cfg.authorizationWebhookCacheUnauthorizedTtlMs) },
      },
      clusterDomain: cfg.clusterDomain,
      clusterDNS: cfg.clusterDNS,
      maxPods: cfg.maxPods,
      podLogsDir: cfg.podLogsDir,
      containerLogMaxSize: cfg.containerLogMaxSize,
      containerLogMaxFiles: cfg.containerLogMaxFiles,
      nodeStatusUpdateFrequency: d(cfg.nodeStatusUpdateFrequencyMs),
      nodeStatusReportFrequency: d(cfg.nodeStatusReportFrequencyMs),
      nodeLeaseDurationSeconds: cfg.nodeLeaseDurationSeconds,
      streamingConnectionIdleTimeout: d(cfg.streamingConnectionIdleTimeoutMs),
      registerNode: cfg.registerNode,
    },
  };
}
