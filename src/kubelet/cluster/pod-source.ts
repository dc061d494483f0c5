// Pods from the API server: an informer on the pods bound to this node (fieldSelector spec.nodeName),
// feeding the kubelet's "api" source (level-triggered: the whole set on every change) and keeping mirror
// pods in step with the static pods. It also answers the status manager's questions: which API object
// a pod's status goes to, and what status the server holds.
import type { Pod } from 'kubernetes-types/core/v1';
import { Informer, resources, type KubeApi } from '../../kube/index.ts';
import { SyncRunner, type Logger } from '../../lib/index.ts';
import type { Kubelet } from '../kubelet.ts';
import { FILE_SOURCE } from '../manifest-source.ts';
import { CONFIG_HASH_ANNOTATION, isMirrorPod, MIRROR_ANNOTATION, MirrorPodManager } from './mirror-pods.ts';
import type { ApiPodRef } from './status-manager.ts';

export const API_SOURCE = 'api';

export interface ClusterPodSourceOptions {
  api: Pick<KubeApi, 'list' | 'watch' | 'create' | 'delete'>;
  kubelet: Pick<Kubelet, 'updateSource'>;
  nodeName: string;
  node: () => { name: string; uid?: string };
  log: Logger;
  /** Called after every change of the pod set (e.g. to reconcile statuses once a mirror pod exists). */
  onChange?: () => void;
}

export class ClusterPodSource {
  readonly informer: Informer<Pod>;
  private readonly o: ClusterPodSourceOptions;
  private readonly mirrors: MirrorPodManager;
  private readonly mirrorRunner: SyncRunner;
  private staticPods: Pod[] = [];
  private byUid = new Map<string, Pod>();
  private scheduled = false;

  constructor(o: ClusterPodSourceOptions) {
    this.o = o;
    this.informer = new Informer<Pod>({
      api: o.api,
      ref: resources.pods,
      fieldSelector: `spec.nodeName=${o.nodeName}`,
      name: 'pods',
      log: o.log,
    });
    this.mirrors = new MirrorPodManager({ api: o.api, log: o.log.child({ component: 'mirror-pods' }), node: o.node });
    this.mirrorRunner = new SyncRunner({
      name: 'mirror-pods',
      run: () => this.mirrors.sync(this.staticPods, this.informer.hasSynced() ? this.informer.list().filter(isMirrorPod) : []),
      minIntervalMs: 200,
      periodMs: 30_000,
      log: o.log,
    });
    const changed = (): void => this.schedule();
    this.informer.addEventHandler({ onAdd: changed, onUpdate: changed, onDelete: changed });
  }

  start(): void {
    this.informer.start();
    this.mirrorRunner.start();
  }

  async stop(): Promise<void> {
    this.mirrorRunner.stop();
    await this.informer.stop();
  }

  /** The static pods the kubelet runs (from the manifest folder): their mirrors follow. */
  setStaticPods(pods: Pod[]): void {
    this.staticPods = pods;
    this.mirrorRunner.trigger();
  }

  healthy(): boolean {
    return this.informer.healthy();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.sync();
    });
  }

  private sync(): void {
    if (!this.informer.hasSynced()) return;
    const all = this.informer.list();
    this.byUid = new Map(all.map((p) => [p.metadata!.uid!, p]));
    this.o.kubelet.updateSource(API_SOURCE, all.filter((p) => !isMirrorPod(p)));
    this.mirrorRunner.trigger();
    this.o.onChange?.();
  }

  /** The API object for a pod's status: itself, or the mirror pod of a static pod. */
  apiPodFor = (pod: Pod): ApiPodRef | undefined => {
    const m = pod.metadata!;
    if (m.annotations?.['kubernetes.io/config.source'] !== FILE_SOURCE) return { namespace: m.namespace!, name: m.name!, uid: m.uid! };
    const hash = m.annotations?.[CONFIG_HASH_ANNOTATION];
    for (const p of this.byUid.values())
      if (p.metadata?.namespace === m.namespace && p.metadata?.name === m.name && p.metadata?.annotations?.[MIRROR_ANNOTATION] === hash && !p.metadata?.deletionTimestamp)
        return { namespace: m.namespace!, name: m.name!, uid: p.metadata!.uid! };
    return undefined;
  };

  serverStatus = (uid: string): Pod['status'] => this.byUid.get(uid)?.status;
}
