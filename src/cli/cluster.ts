// Cluster mode wiring (berth run --kubeconfig): the API client, the node's registration/status/Lease, the
// pods bound to this node, pod statuses, mirror pods, Events, ConfigMap/Secret data and service env vars.
import type { Node, Pod, Service } from 'kubernetes-types/core/v1';
import { Informer, KubeClient, buildUserAgent, loadClientConfig, resources } from '../kube/index.ts';
import type { Logger } from '../lib/index.ts';
import type { RuntimeService, ImageService } from '../cri/index.ts';
import {
  ApiConfigData,
  ApiEventSink,
  ClusterPodSource,
  StatusManager,
  admitPod,
  allocatableOf,
  bytes,
  serviceEnv,
  servicesForPod,
  type HealthCheck,
  type Kubelet,
  type KubeletOptions,
} from '../kubelet/index.ts';
import { NodeManager } from '../kubelet/node/index.ts';
import type { BerthConfig } from './config.ts';
import os from 'node:os';

export interface ClusterAttachInput {
  kubelet: Kubelet;
  runtime: RuntimeService & ImageService;
  hostIP: string;
}

export interface AttachedCluster {
  setStaticPods(pods: Pod[]): void;
  checks: HealthCheck[];
  stop(): Promise<void>;
}

export interface Cluster {
  api: KubeClient;
  kubeletOptions: Partial<KubeletOptions>;
  attach(input: ClusterAttachInput): Promise<AttachedCluster>;
}

export async function connectCluster(o: { cfg: BerthConfig; log: Logger; env: Record<string, string | undefined>; version: string }): Promise<Cluster> {
  const { cfg, log } = o;
  const config = await loadClientConfig({ kubeconfigPath: cfg.kubeconfig, env: o.env });
  const api = new KubeClient({ config, log: log.child({ component: 'api' }), userAgent: buildUserAgent({ version: o.version, component: 'kubelet' }) });
  log.info({ server: config.server, kubeconfig: cfg.kubeconfig }, 'connecting to the API server');
  const services = new Informer<Service>({ api, ref: resources.services, name: 'services', log: log.child({ component: 'informer' }) });
  let nodeManager: NodeManager | undefined;
  let statusManager: StatusManager | undefined;
  const fallback = { cpuMillis: os.cpus().length * 1000, memoryBytes: os.totalmem(), pods: cfg.maxPods };
  const kubeletOptions: Partial<KubeletOptions> = {
    data: new ApiConfigData(api),
    admit: (pod, admitted) => {
      const node = nodeManager?.node();
      return admitPod(pod, admitted, node, allocatableOf(node, fallback));
    },
    onPodTerminated: (pod, status) => statusManager?.terminated(pod, status),
    serviceEnv: (namespace) => (services.hasSynced() ? serviceEnv(servicesForPod(services.list(), namespace, true)) : {}),
    nodeAllocatable: () => {
      const a = allocatableOf(nodeManager?.node(), fallback);
      return { cpuMillis: a.cpuMillis, memoryBytes: a.memoryBytes };
    },
  };

  return {
    api,
    kubeletOptions,
    async attach(input) {
      const { kubelet } = input;
      nodeManager = new NodeManager({
        api,
        log: log.child({ component: 'node' }),
        config: cfg,
        hostIP: input.hostIP,
        runtime: input.runtime,
        kubelet,
        version: o.version,
      });
      const podSource = new ClusterPodSource({
        api,
        kubelet,
        nodeName: cfg.nodeName,
        node: () => ({ name: cfg.nodeName, uid: nodeManager?.node()?.metadata?.uid }),
        log: log.child({ component: 'pods' }),
        onChange: () => statusManager?.reconcile(),
      });
      statusManager = new StatusManager({
        api,
        log: log.child({ component: 'status' }),
        apiPodFor: podSource.apiPodFor,
        serverStatus: podSource.serverStatus,
      });
      kubelet.onStatus(statusManager.set);
      kubelet.recorder.sinks.push(new ApiEventSink({ api, log: log.child({ component: 'events' }), host: cfg.nodeName }));
      nodeManager.start();
      services.start();
      podSource.start();
      statusManager.start();
      return {
        setStaticPods: (pods) => podSource.setStaticPods(pods),
        checks: [
          { name: 'node', healthy: () => nodeManager!.healthy() },
          { name: 'pod-informer', healthy: () => podSource.healthy() },
        ],
        async stop() {
          statusManager?.stop();
          await podSource.stop();
          await services.stop();
          await nodeManager?.stop();
          await api.close();
        },
      };
    },
  };
}

export type { Node };
void bytes;
