// Proxy wiring: informers on Services, EndpointSlices (discovery.k8s.io/v1, else v1beta1, else core
// Endpoints) and this Node feed the ServiceProxy; used by `berth run` (cluster mode) and `berth proxy`.
import type { Endpoints, Node, Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import { Discovery, Informer, KubeClient, buildUserAgent, loadClientConfig, resources, withVersion, type KubeObject } from '../kube/index.ts';
import type { Logger } from '../lib/index.ts';
import {
  ServiceProxy,
  createConntrack,
  createIptablesExecutor,
  createServiceHealthServer,
  createSysctl,
  resolveProxyConfig,
  type ProxyMetricsSnapshot,
} from '../proxy/index.ts';
import type { BerthConfig } from './config.ts';

export interface RunningProxy {
  proxy: ServiceProxy;
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
  const executor = await createIptablesExecutor({ backend: pcfg.backend, log, restoreTimeoutMs: pcfg.restoreTimeoutMs });
  const proxy: ServiceProxy = new ServiceProxy({
    config: pcfg,
    node: { name: cfg.nodeName, ip: o.nodeIP },
    executor,
    sysctl: createSysctl(),
    conntrack: createConntrack({ log }),
    healthServer: createServiceHealthServer({ bindAddress: pcfg.healthCheckBindAddress, log, proxyHealthy: () => proxy.healthy() }),
    log,
  });
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
  log.info({ endpoints: sliceVersion ? `discovery.k8s.io/${sliceVersion} EndpointSlices` : 'core Endpoints', backend: executor.backend }, 'service proxy starting');
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
