// Pods from the API server: an informer on the pods bound to this node (fieldSelector spec.nodeName),
// feeding the kubelet's "api" source (level-triggered: the whole set on every change) and keeping mirror
// pods in step with the static pods. It also answers the status manager's questions: which API object
// a pod's status goes to, and what status the server holds.
import type { Pod } from 'kubernetes-types/core/v1';
import { Informer, resources, type KubeApi } from '../../kube/index.ts';
import { RateLimiter, SyncRunner, type Logger } from '../../lib/index.ts';
import type { Kubelet } from '../kubelet.ts';
import { FILE_SOURCE } from '../manifest-source.ts';
import { formatFieldErrors, validatePod, type FieldError } from '../pod-spec.ts';
import { CONFIG_HASH_ANNOTATION, isMirrorPod, MIRROR_ANNOTATION, MirrorPodManager } from './mirror-pods.ts';
import type { ApiPodRef } from './status-manager.ts';

export const API_SOURCE = 'api';

/**
 * Problems with a pod from the API server that would make berth act on it wrongly or throw: the manifest checks
 * (pod-spec.ts) plus what only a server object has (uid, namespace). The API server validates pods already; this
 * guards against a broken or hostile server, a proxy in between, or a version skew (empty = usable).
 */
export function validateApiPod(pod: unknown): FieldError[] {
  if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) return [{ field: '', detail: 'Invalid value: expected a Pod object' }];
  const errs = validatePod(pod);
  const m = (pod as Pod | null | undefined)?.metadata;
  if (m && typeof m === 'object') {
    if (typeof m.uid !== 'string' || m.uid === '') errs.push({ field: 'metadata.uid', detail: 'Required value' });
    if (typeof m.namespace !== 'string' || m.namespace === '') errs.push({ field: 'metadata.namespace', detail: 'Required value' });
  }
  return errs;
}

/** `namespace/name` of an object that may be malformed (for log lines only). */
function describePod(pod: unknown): string {
  const m = (pod as Pod | null | undefined)?.metadata;
  const str = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 253) : '?');
  return m && typeof m === 'object' ? `${str(m.namespace)}/${str(m.name)}` : '?/?';
}

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
  /** One warning per bad object (by namespace/name and version) per 10 minutes. */
  private readonly invalidLog = new RateLimiter(600_000);

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
      run: () => this.mirrors.sync(this.staticPods, this.informer.hasSynced() ? this.validPods().filter(isMirrorPod) : []),
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
      // A throw here would be an uncaught exception (the microtask has no caller): log it instead.
      try {
        this.sync();
      } catch (err: unknown) {
        if (this.invalidLog.allow('sync-failed')) this.o.log.error({ err }, 'api pod source sync failed');
      }
    });
  }

  /** The informer's pods that pass validateApiPod; each bad one is logged (rate-limited) and left out. */
  private validPods(): Pod[] {
    const ok: Pod[] = [];
    for (const p of this.informer.list()) {
      const errs = validateApiPod(p);
      if (!errs.length) {
        ok.push(p);
        continue;
      }
      const pod = describePod(p);
      if (this.invalidLog.allow(`${pod}@${String((p as Pod | null)?.metadata?.resourceVersion)}`))
        this.o.log.warn({ pod, errors: formatFieldErrors(errs).slice(0, 2000) }, 'ignoring invalid pod from the API server');
    }
    return ok;
  }

  private sync(): void {
    if (!this.informer.hasSynced()) return;
    const all = this.validPods();
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
