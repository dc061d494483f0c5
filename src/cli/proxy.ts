// Proxy wiring: informers on Services, EndpointSlices (discovery.k8s.io/v1, else v1beta1, else core
// Endpoints) and this Node feed the ServiceProxy; used by `berth run` (cluster mode) and `berth proxy`.
import type { Endpoints, Node, Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import { Discovery, Informer, KubeClient, buildUserAgent, loadClientConfig, resources, withVersion, type KubeObject } from '../kube/index.ts';
import type { Logger } from '../lib/index.ts';
import {
  CommandNftExecutor,
  NftablesProxy,
  ServiceProxy,
  cleanupNftables,
  createConntrack,
  createIptablesExecutor,
  createServiceHealthServer,
  createSysctl,
  nftInstalled,
  resolveProxyConfig,
  runCleanup,
  type ProxyMetricsSnapshot,
} from '../proxy/index.ts';
import type { BerthConfig } from './config.ts';
import http from 'node:http';

export interface RunningProxy {
  proxy: ServiceProxy | NftablesProxy;
  healthy(): boolean;
  metrics(): ProxyMetricsSnapshot;
  stop(): Promise<void>;
}

/** Prometheus text for the proxy's plain metrics (kube-proxy's metric names where they exist). */
export function proxyMetricsText(m: ProxyMetricsSnapshot): string {
  const lines: string[] = [];
  const hist = (name: string, h: ProxyMetricsSnapshot['syncProxyRulesDurationSeconds']): void => {
    lines.push(`# TYPE ${name} histogram`);
    // counts are cumulative already; the last bound is +Inf.
    h.bounds.forEach((le, i) => lines.push(`${name}_bucket{le="${Number.isFinite(le) ? le : '+Inf'}"} ${h.counts[i] ?? 0}`));
    lines.push(`${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  };
  hist('kubeproxy_sync_proxy_rules_duration_seconds', m.syncProxyRulesDurationSeconds);
  hist('kubeproxy_sync_full_proxy_rules_duration_seconds', m.syncFullProxyRulesDurationSeconds);
  hist('kubeproxy_sync_partial_proxy_rules_duration_seconds', m.syncPartialProxyRulesDurationSeconds);
  lines.push('# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge', `kubeproxy_sync_proxy_rules_last_timestamp_seconds ${m.syncProxyRulesLastTimestampMs / 1000}`);
  lines.push('# TYPE kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds gauge', `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds ${m.syncProxyRulesLastQueuedTimestampMs / 1000}`);
  lines.push('# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge');
  lines.push(`kubeproxy_sync_proxy_rules_iptables_total{table="filter"} ${m.iptablesRulesTotal.filter}`, `kubeproxy_sync_proxy_rules_iptables_total{table="nat"} ${m.iptablesRulesTotal.nat}`);
  lines.push('# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter', `kubeproxy_sync_proxy_rules_iptables_restore_failures_total ${m.iptablesRestoreFailuresTotal}`);
  lines.push('# TYPE kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total counter', `kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total ${m.iptablesPartialRestoreFailuresTotal}`);
  lines.push('# TYPE berth_proxy_syncs_total counter');
  for (const [k, v] of Object.entries(m.syncsTotal)) lines.push(`berth_proxy_syncs_total{kind="${k}"} ${v}`);
  lines.push('# TYPE berth_proxy_services gauge', `berth_proxy_services ${m.services}`, '# TYPE berth_proxy_endpoints gauge', `berth_proxy_endpoints ${m.endpoints}`);
  return lines.join('\n') + '\n';
}

function feed<T extends KubeObject>(
  inf: Informer<T>,
  add: (o: T) => void,
  update: (a: T, b: T) => void,
  del: (o: T) => void,
  synced: () => void,
): void {
  inf.addEventHandler({ onAdd: add, onUpdate: update, onDelete: del });
  void inf.waitForSync().then(synced, () => undefined);
}

export async function startProxy(o: {
  cfg: BerthConfig;
  log: Logger;
  env: Record<string, string | undefined>;
  version: string;
  nodeIP: string;
  /** The node identity's client; a separate one is made from --proxy-kubeconfig when given. */
  api?: KubeClient;
}): Promise<RunningProxy> {
  const { cfg } = o;
  const log = o.log.child({ component: 'proxy' });
  const pcfg = resolveProxyConfig({
    mode: cfg.proxyMode,
    backend: cfg.iptablesBackend ?? 'auto',
    clusterCIDR: cfg.clusterCIDR,
    masqueradeAll: cfg.masqueradeAll,
    fullSyncPeriodMs: cfg.iptablesSyncPeriodMs,
    minSyncPeriodMs: cfg.iptablesMinSyncPeriodMs,
    kubeconfig: cfg.proxyKubeconfig,
  });
  const kubeconfig = cfg.proxyKubeconfig ?? cfg.kubeconfig;
  if (!kubeconfig) throw new Error('the proxy needs an API server: --kubeconfig or --proxy-kubeconfig');
  const ownClient = !o.api || !!cfg.proxyKubeconfig;
  const api = ownClient
    ? new KubeClient({ config: await loadClientConfig({ kubeconfigPath: kubeconfig, env: o.env }), log: log.child({ component: 'api' }), userAgent: buildUserAgent({ version: o.version, component: 'kube-proxy' }) })
    : o.api!;
  // Switching modes: the other mode's rules are removed first (upstream kube-proxy cleans up the other modes'
  // leftovers at start), so traffic is never handled by two rule sets.
  let proxy: ServiceProxy | NftablesProxy;
  let backend: string;
  const common = {
    config: pcfg,
    node: { name: cfg.nodeName, ip: o.nodeIP },
    sysctl: createSysctl(),
    conntrack: createConntrack({ log }),
    healthServer: createServiceHealthServer({ bindAddress: pcfg.healthCheckBindAddress, log, proxyHealthy: () => proxy.healthy() }),
    log,
  };
  if (pcfg.mode === 'nftables') {
    if (!(await nftInstalled())) throw new Error('--proxy-mode nftables needs the nft tool (Debian package nftables)');
    await runCleanup({ backend: 'all', modes: ['iptables'], log }).catch((err: unknown) => log.warn({ err }, 'removing iptables-mode rules failed'));
    proxy = new NftablesProxy({ ...common, executor: new CommandNftExecutor({ applyTimeoutMs: pcfg.restoreTimeoutMs }) });
    backend = 'nftables';
  } else {
    await cleanupNftables({ log }).catch((err: unknown) => log.warn({ err }, 'removing nftables-mode rules failed'));
    const executor = await createIptablesExecutor({ backend: pcfg.backend, log, restoreTimeoutMs: pcfg.restoreTimeoutMs });
    proxy = new ServiceProxy({ ...common, executor });
    backend = executor.backend;
  }
  await proxy.start();

  const ilog = log.child({ component: 'informer' });
  const services = new Informer<Service>({ api, ref: resources.services, name: 'services', log: ilog });
  feed(services, (s) => proxy.onServiceAdd(s), (a, b) => proxy.onServiceUpdate(a, b), (s) => proxy.onServiceDelete(s), () => proxy.onServicesSynced());
  // Which endpoint API this server serves (discovery.k8s.io/v1 from 1.21, v1beta1 in 1.20, else core Endpoints).
  const discovery = new Discovery({ api });
  const sliceVersion = await discovery.preferredVersion('discovery.k8s.io', ['v1', 'v1beta1']).catch(() => undefined);
  const informers: Informer<KubeObject>[] = [services as unknown as Informer<KubeObject>];
  if (sliceVersion) {
    const slices = new Informer<EndpointSlice>({ api, ref: withVersion(resources.endpointslices, sliceVersion), name: 'endpointslices', log: ilog });
    feed(slices, (s) => proxy.onEndpointSliceAdd(s), (a, b) => proxy.onEndpointSliceUpdate(a, b), (s) => proxy.onEndpointSliceDelete(s), () => proxy.onEndpointSlicesSynced());
    informers.push(slices as unknown as Informer<KubeObject>);
  } else {
    const eps = new Informer<Endpoints>({ api, ref: resources.endpoints, name: 'endpoints', log: ilog });
    feed(eps, (e) => proxy.onEndpointsAdd(e), (a, b) => proxy.onEndpointsUpdate(a, b), (e) => proxy.onEndpointsDelete(e), () => proxy.onEndpointsSynced());
    informers.push(eps as unknown as Informer<KubeObject>);
  }
  const nodes = new Informer<Node>({ api, ref: resources.nodes, fieldSelector: `metadata.name=${cfg.nodeName}`, name: 'node', log: ilog });
  nodes.addEventHandler({ onAdd: (n) => proxy.onNodeUpdate(n), onUpdate: (_a, n) => proxy.onNodeUpdate(n) });
  informers.push(nodes as unknown as Informer<KubeObject>);
  log.info({ mode: pcfg.mode, endpoints: sliceVersion ? `discovery.k8s.io/${sliceVersion} EndpointSlices` : 'core Endpoints', backend }, 'service proxy starting');
  for (const i of informers) i.start();
  return {
    proxy,
    healthy: () => proxy.healthy(),
    metrics: () => proxy.metrics(),
    async stop() {
      for (const i of informers) await i.stop();
      await proxy.stop();
      if (ownClient) await api.close();
    },
  };
}

/**
 * `berth proxy`'s fatal handler: an unhandled rejection is logged at fatal and the process exits 1 (systemd restarts
 * it and the proxy rebuilds its rules from the API server) rather than running on with stale rules. Installed once
 * by the composition root; returns the handler (tests call it directly with a fake `exit`).
 */
export function exitOnUnhandledRejection(log: Logger, exit: (code: number) => void = (c) => process.exit(c)): (reason: unknown) => void {
  const handler = (reason: unknown): void => {
    log.fatal({ err: reason }, 'unhandled rejection; exiting so that the proxy restarts with fresh state');
    exit(1);
  };
  process.on('unhandledRejection', handler);
  return handler;
}

export interface ProxyEndpoints {
  /** Bound addresses by requested port (a port still retrying is absent). */
  addresses(): Map<number, { address: string; port: number }>;
  /** Stops retries and closes every server. Idempotent. */
  close(): Promise<void>;
}

/**
 * The proxy's own endpoints (healthz, metrics). A port that cannot be bound (EADDRINUSE, EACCES) is logged and
 * retried every `retryMs` instead of crashing the proxy, and an error on a listening server is logged, never thrown
 * (kube-proxy's servers log and retry: cmd/kube-proxy/app/server.go serveHealthz/serveMetrics, wait.Until 5 s).
 * Port 0 binds a random port (tests).
 */
export function serveProxyEndpoints(o: { handler: http.RequestListener; ports: number[]; address: string; log: Logger; retryMs?: number }): ProxyEndpoints {
  const retryMs = o.retryMs ?? 5000;
  const bound = new Map<number, http.Server>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const failedOnce = new Set<number>();
  const listen = (port: number): void => {
    if (closed) return;
    const server = http.createServer(o.handler);
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (bound.get(port) === server) {
        o.log.error({ err, port }, 'proxy endpoint server failed');
        return;
      }
      // Not listening yet: report the first failure, then retry quietly.
      if (!failedOnce.has(port)) o.log.error({ err, port, retryInMs: retryMs }, 'proxy endpoint could not listen; retrying');
      failedOnce.add(port);
      server.close();
      const t = setTimeout(() => {
        timers.delete(t);
        listen(port);
      }, retryMs);
      timers.add(t);
    });
    server.listen(port, o.address, () => {
      if (closed) return void server.close();
      bound.set(port, server);
      if (failedOnce.delete(port)) o.log.info({ port }, 'proxy endpoint listening');
    });
  };
  for (const port of o.ports) listen(port);
  return {
    addresses() {
      const m = new Map<number, { address: string; port: number }>();
      for (const [port, s] of bound) {
        const a = s.address();
        if (a && typeof a === 'object') m.set(port, { address: a.address, port: a.port });
      }
      return m;
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const all = [...bound.values()];
      bound.clear();
      await Promise.all(all.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); })));
    },
  };
}
