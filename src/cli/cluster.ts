// Cluster mode wiring (berth run --kubeconfig): the API client, the node's registration/status/Lease, the
// pods bound to this node, pod statuses, mirror pods, Events, ConfigMap/Secret data and service env vars.
import type { Pod, Service } from 'kubernetes-types/core/v1';
import { Informer, KubeClient, buildUserAgent, loadClientConfig, resources } from '../kube/index.ts';
import type { Logger } from '../lib/index.ts';
import type { RuntimeService, ImageService } from '../cri/index.ts';
import {
  ApiConfigData,
  ApiEventSink,
  ClusterPodSource,
  StatusManager,
  TokenManager,
  admitPod,
  allocatableOf,
  serviceEnv,
  servicesForPod,
  type HealthCheck,
  type Kubelet,
  type KubeletOptions,
} from '../kubelet/index.ts';
import { NodeManager, computePlegHealth, allocatableReservation } from '../kubelet/index.ts';
import type { BerthConfig } from './config.ts';
import type { RunningEvictionGC } from './eviction-gc.ts';
import os from 'node:os';

export interface ClusterAttachInput {
  kubelet: Kubelet;
  runtime: RuntimeService & ImageService;
  hostIP: string;
  /** Pressure conditions, admission under pressure and the hard thresholds (allocatable) of the eviction manager. */
  eviction?: RunningEvictionGC;
}

export interface AttachedCluster {
  setStaticPods(pods: Pod[]): void;
  checks: HealthCheck[];
  stop(): Promise<void>;
}

export interface Cluster {
  api: KubeClient;
  /** The cluster CA from the kubeconfig (the kubelet API's default client CA). */
  caData?: Buffer;
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
  let evictionGC: RunningEvictionGC | undefined;
  let statusManager: StatusManager | undefined;
  const fallback = { cpuMillis: os.cpus().length * 1000, memoryBytes: os.totalmem(), pods: cfg.maxPods };
  const kubeletOptions: Partial<KubeletOptions> = {
    data: new ApiConfigData(api),
    // TokenRequests as the node (Node authorizer + NodeRestriction allow them for pods bound to it).
    tokens: new TokenManager({ api, log: log.child({ component: 'token-manager' }) }),
    admit: (pod, admitted) => {
      // The eviction manager's admit handler comes first, as upstream registers it first.
      const underPressure = evictionGC?.eviction.admit(pod, false);
      if (underPressure && !underPressure.admit) return underPressure;
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
    caData: config.tls.ca,
    kubeletOptions,
    async attach(input) {
      const { kubelet } = input;
      const nm = new NodeManager({
        api,
        nodeName: cfg.nodeName,
        hostIP: () => input.hostIP,
        runtime: input.runtime,
        plegHealth: () => computePlegHealth(kubelet.pleg.lastRelistStart, 180_000, Date.now()),
        rootDir: cfg.rootDir,
        kubeletPort: cfg.port,
        maxPods: cfg.maxPods,
        nodeLabels: cfg.nodeLabels,
        registerWithTaints: cfg.registerWithTaints.map((t) => ({ key: t.key, value: t.value, effect: t.effect as 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' })),
        registerNode: cfg.registerNode,
        nodeStatusUpdateFrequencyMs: cfg.nodeStatusUpdateFrequencyMs,
        nodeStatusReportFrequencyMs: cfg.nodeStatusReportFrequencyMs,
        nodeLeaseDurationSeconds: cfg.nodeLeaseDurationSeconds,
        ...(input.eviction ? { pressure: input.eviction.pressure, evictionHard: allocatableReservation(input.eviction.thresholds, os.totalmem()) } : {}),
        log: log.child({ component: 'node' }),
      });
      evictionGC = input.eviction;
      input.eviction?.onConditionsChanged(() => nm.requestStatusUpdate());
      await nm.start();
      nodeManager = nm;
      // The node turns Ready as soon as the PLEG has relisted once, not at the next 10 s update.
      const firstRelist = setInterval(() => {
        if (kubelet.pleg.lastRelistStart > 0) {
          clearInterval(firstRelist);
          nm.requestStatusUpdate();
        }
      }, 100);
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
          clearInterval(firstRelist);
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

