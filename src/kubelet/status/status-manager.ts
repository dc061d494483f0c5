// Pod status to the API server (pkg/kubelet/status/status_manager.go): one versioned latest status per pod,
// sent as a patch of /status with the API object's UID as precondition, only when it differs from what
// the server holds, newer versions replacing older ones that were not sent yet (never a stale status),
// failures retried with back-off, and a periodic reconcile that catches up after an outage. Static pods'
// statuses go to their mirror pods. Deleted pods are removed with grace 0 once their final status is in.
import type { Pod, PodCondition, PodStatus } from 'kubernetes-types/core/v1';
import { resources, type KubeApi } from '../../kube/index.ts';
import { Backoff, errorMessage, hasCode, RateLimiter, systemClock, type BackoffPolicy, type Clock, type Logger } from '../../lib/index.ts';
import type { PodRecord } from '../kubelet.ts';

export interface ApiPodRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface StatusManagerOptions {
  api: Pick<KubeApi, 'patchStatus' | 'delete'>;
  log: Logger;
  clock?: Clock;
  /** The API object a pod's status goes to: the pod itself, or a static pod's mirror pod (undefined = none yet). */
  apiPodFor: (pod: Pod) => ApiPodRef | undefined;
  /** The status the API server holds for an object UID (informer cache), to skip no-op patches and keep others' conditions. */
  serverStatus: (uid: string) => PodStatus | undefined;
  reconcileEveryMs?: number;
}

/** Conditions the kubelet owns; others (readiness gates, DisruptionTarget, …) are kept as the server has them. */
const KUBELET_CONDITIONS = new Set(['PodScheduled', 'Ready', 'Initialized', 'ContainersReady']);
const OWNED_KEYS = [
  'phase',
  'conditions',
  'message',
  'reason',
  'hostIP',
  'podIP',
  'podIPs',
  'startTime',
  'containerStatuses',
  'initContainerStatuses',
  'qosClass',
] as const;

// Capped below the reconcile period (8 s + 20 % jitter < 10 s): upstream's syncBatch retries every pending status each
// 10 s, so after an outage statuses catch up within 10 s of the server's return; a 30 s cap held them back up to 36 s
// (reconcile() skips a pod whose retry is pending).
const STATUS_RETRY_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 8_000, jitter: 0.2 };

interface Entry {
  rec: PodRecord;
  sentVersion: number;
  inflight: boolean;
  /** Retries of a failed request (STATUS_RETRY_BACKOFF); reset by a success. */
  backoff: Backoff;
  retry?: NodeJS.Timeout;
  deleteAfterVersion?: number;
  deleted?: boolean;
}

/** Server's conditions of types the kubelet does not own, then ours. */
export function mergeConditions(server: PodCondition[] | undefined, ours: PodCondition[] | undefined): PodCondition[] {
  return [...(server ?? []).filter((c) => !KUBELET_CONDITIONS.has(c.type)), ...(ours ?? [])];
}

/** The merge patch that makes the server's status equal ours on the keys the kubelet owns (pure). */
export function buildStatusPatch(uid: string, ours: PodStatus, server: PodStatus | undefined): { metadata: { uid: string }; status: Record<string, unknown> } {
  const status: Record<string, unknown> = {};
  const merged: PodStatus = { ...ours, conditions: mergeConditions(server?.conditions, ours.conditions) };
  for (const k of OWNED_KEYS) status[k] = merged[k] ?? null;
  return { metadata: { uid }, status };
}

function normalize(s: PodStatus | undefined): string {
  if (!s) return '';
  const pick: Record<string, unknown> = {};
  for (const k of OWNED_KEYS) if (s[k] !== undefined && s[k] !== null) pick[k] = s[k];
  // The server drops null lastProbeTime; compare without it.
  return JSON.stringify(pick, (key, v) => (key === 'lastProbeTime' && v === null ? undefined : v));
}

export function statusEqual(ours: PodStatus, server: PodStatus | undefined): boolean {
  if (!server) return false;
  const merged = { ...ours, conditions: mergeConditions(server.conditions, ours.conditions) };
  return normalize(merged) === normalize(server);
}

export class StatusManager {
  private readonly o: StatusManagerOptions;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly warn = new RateLimiter(60_000);
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  sent = 0;

  constructor(o: StatusManagerOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
  }

  start(): void {
    this.timer = setInterval(() => this.reconcile(), this.o.reconcileEveryMs ?? 10_000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const e of this.entries.values()) if (e.retry) clearTimeout(e.retry);
  }

  /** Kubelet status listener: the newest status of a pod (undefined = the pod is gone). */
  set = (uid: string, rec: PodRecord | undefined): void => {
    if (!rec) {
      const e = this.entries.get(uid);
      if (e?.retry) clearTimeout(e.retry);
      this.entries.delete(uid);
      return;
    }
    let e = this.entries.get(uid);
    if (!e) this.entries.set(uid, (e = { rec, sentVersion: 0, inflight: false, backoff: new Backoff(STATUS_RETRY_BACKOFF) }));
    else e.rec = rec;
    this.flush(uid, e);
  };

  /** A pod being deleted is stopped: delete it from the API server once its final status is there. */
  terminated = (pod: Pod, _status: PodStatus): void => {
    const uid = pod.metadata!.uid!;
    const e = this.entries.get(uid);
    if (!e || e.deleted) return;
    e.deleteAfterVersion = e.rec.version;
    this.flush(uid, e);
  };

  /** Re-sends every status the server does not hold (after an outage, or someone else's write). */
  reconcile(): void {
    for (const [uid, e] of this.entries) {
      const ref = this.o.apiPodFor(e.rec.pod);
      if (ref && !statusEqual(e.rec.status, this.o.serverStatus(ref.uid))) e.sentVersion = 0;
      this.flush(uid, e);
    }
  }

  private flush(uid: string, e: Entry): void {
    if (this.stopped || e.inflight || e.retry) return;
    const needStatus = e.rec.version > e.sentVersion;
    const needDelete = e.deleteAfterVersion !== undefined && !e.deleted && e.sentVersion >= e.deleteAfterVersion;
    if (!needStatus && !needDelete) return;
    e.inflight = true;
    void this.send(uid, e, needStatus).then((progressed) => {
      e.inflight = false;
      // Without progress (no API object yet) wait for reconcile(); looping here would starve the event loop.
      if (progressed && this.entries.get(uid) === e) this.flush(uid, e);
    });
  }

  /** One request; resolves true when something was sent or settled, false when there is nothing to send to yet. */
  private async send(uid: string, e: Entry, needStatus: boolean): Promise<boolean> {
    const rec = e.rec;
    const ref = this.o.apiPodFor(rec.pod);
    if (!ref) return false; // no API object (yet): the mirror pod appears later, reconcile sends then
    const log = this.o.log.child({ pod: `${ref.namespace}/${ref.name}`, podUid: uid });
    try {
      if (needStatus) {
        const server = this.o.serverStatus(ref.uid);
        if (!statusEqual(rec.status, server)) {
          await this.o.api.patchStatus(resources.pods, ref.name, buildStatusPatch(ref.uid, rec.status, server), { namespace: ref.namespace, type: 'merge' });
          this.sent++;
        }
        e.sentVersion = rec.version;
      } else if (e.deleteAfterVersion !== undefined && !e.deleted) {
        await this.o.api.delete(resources.pods, ref.name, { namespace: ref.namespace, gracePeriodSeconds: 0, preconditions: { uid: ref.uid } });
        e.deleted = true;
        log.info('pod deleted from the API server after termination');
      }
      e.backoff.reset();
      return true;
    } catch (err) {
      if (hasCode(err, 'NotFound') || hasCode(err, 'Conflict') || hasCode(err, 'Invalid')) {
        // Gone, or replaced by another object with the same name (UID precondition): nothing to update.
        if (hasCode(err, 'Invalid') && this.warn.allow(`invalid:${uid}`)) log.warn({ err: errorMessage(err) }, 'pod status rejected by the API server');
        if (needStatus) e.sentVersion = rec.version;
        else e.deleted = true;
        return true;
      }
      const ms = e.backoff.next();
      if (this.warn.allow(hasCode(err, 'Forbidden') ? `forbidden:${uid}` : 'status')) log.warn({ err: errorMessage(err), retryInMs: ms }, needStatus ? 'pod status update failed' : 'pod delete failed');
      e.retry = setTimeout(() => {
        e.retry = undefined;
        this.flush(uid, e);
      }, ms);
      return false;
    }
  }
}
