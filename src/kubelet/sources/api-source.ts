// Pods from the API server: an informer on the pods bound to this node (fieldSelector spec.nodeName),
// feeding the kubelet's "api" source (level-triggered: the whole set on every change) and keeping mirror
// pods in step with the static pods. It also answers the status manager's questions: which API object
// a pod's status goes to, and what status the server holds.
import type { Pod } from 'kubernetes-types/core/v1';
import { Informer, resources, type KubeApi } from '../../kube/index.ts';
import { RateLimiter, SyncRunner, type Logger } from '../../lib/index.ts';
import type { Kubelet, SourceRejection } from '../kubelet.ts';
import { FILE_SOURCE } from './manifest-source.ts';
import { formatFieldErrors, validatePod, type FieldError } from '../pod/pod-spec.ts';
import { CONFIG_HASH_ANNOTATION, isMirrorPod, MIRROR_ANNOTATION, MirrorPodManager } from './mirror-pods.ts';
import type { ApiPodRef } from '../status/status-manager.ts';

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

/** Why berth refuses to run a pod the API server stored: reported as the pod's status reason and a Warning Event. */
export const INVALID_POD_REASON = 'InvalidPod';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const UID = /^[A-Za-z0-9][-A-Za-z0-9]{0,63}$/;

/**
 * A bare Pod carrying only the identity of an invalid API object (name, namespace, uid, creationTimestamp), for
 * reporting it Failed: nothing else of it is trusted. Undefined when the identity itself is unusable (a name that
 * is not a DNS subdomain could address another API path): such an object is only logged.
 */
export function invalidPodStub(pod: unknown): Pod | undefined {
  const m = (pod as Pod | null | undefined)?.metadata;
  if (!m || typeof m !== 'object') return undefined;
  const { name, namespace, uid, creationTimestamp } = m as Record<string, unknown>;
  if (typeof name !== 'string' || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) return undefined;
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace)) return undefined;
  if (typeof uid !== 'string' || !UID.test(uid)) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid, ...(typeof creationTimestamp === 'string' ? { creationTimestamp } : {}) },
    spec: { containers: [] },
  };
}

/** The server's status of an invalid object, when it has a shape the status manager can compare with. */
function comparableStatus(pod: unknown): Pod['status'] {
  const s = (pod as Pod | null | undefined)?.status as unknown;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return undefined;
  const conds = (s as { conditions?: unknown }).conditions;
  if (conds !== undefined && !(Array.isArray(conds) && conds.every((c) => typeof c === 'object' && c !== null && !Array.isArray(c)))) return undefined;
  return s as Pod['status'];
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
  /** The server's status of the invalid pods reported as rejected (so a status already sent is not sent again). */
  private rejectedStatus = new Map<string, Pod['status']>();
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
      run: () => this.mirrors.sync(this.staticPods, this.informer.hasSynced() ? this.validPods().ok.filter(isMirrorPod) : []),
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

  /**
   * The informer's pods that pass validateApiPod, and the rest: each bad one is logged (rate-limited) and never run;
   * one with a usable identity is handed to the kubelet as a rejection (Failed, InvalidPod, Warning Event) so that
   * its owner sees why, rather than a pod Pending for ever.
   */
  private validPods(): { ok: Pod[]; rejected: SourceRejection[]; rejectedStatus: Map<string, Pod['status']> } {
    const ok: Pod[] = [];
    const rejected: SourceRejection[] = [];
    const rejectedStatus = new Map<string, Pod['status']>();
    for (const p of this.informer.list()) {
      const errs = validateApiPod(p);
      if (!errs.length) {
        ok.push(p);
        continue;
      }
      const pod = describePod(p);
      const message = formatFieldErrors(errs).slice(0, 2000);
      if (this.invalidLog.allow(`${pod}@${String((p as Pod | null)?.metadata?.resourceVersion)}`)) this.o.log.warn({ pod, errors: message }, 'ignoring invalid pod from the API server');
      const stub = invalidPodStub(p);
      if (!stub) continue;
      rejected.push({ pod: stub, reason: INVALID_POD_REASON, message: `is invalid: ${message}` });
      rejectedStatus.set(stub.metadata!.uid!, comparableStatus(p));
    }
    return { ok, rejected, rejectedStatus };
  }

  private sync(): void {
    if (!this.informer.hasSynced()) return;
    const { ok: all, rejected, rejectedStatus } = this.validPods();
    this.byUid = new Map(all.map((p) => [p.metadata!.uid!, p]));
    this.rejectedStatus = rejectedStatus;
    this.o.kubelet.updateSource(API_SOURCE, all.filter((p) => !isMirrorPod(p)), [], rejected);
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

  serverStatus = (uid: string): Pod['status'] => this.byUid.get(uid)?.status ?? this.rejectedStatus.get(uid);
}
