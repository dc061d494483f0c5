// The kubelet core: merges pod sources into the desired set, runs one serialized worker per pod UID
// (pkg/kubelet/pod_workers.go), each sync reading the pod's observed state from the PLEG cache newer
// than its previous sync, planning, applying, and publishing the pod's status. Pods that are no longer
// desired are stopped with their grace period and removed once every source has synced.
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import type { ImageService, RuntimeService } from '../cri/index.ts';
import { L } from '../cri/index.ts';
import { errorMessage, redactValues, systemClock, type Clock, type Logger } from '../lib/index.ts';
import { DEFAULT_CRASH_BACKOFF, type BackoffPolicy } from './pod/crash-loop-backoff.ts';
import type { NodeFacts } from './runtime/container-config.ts';
import type { ConfigDataSource } from './runtime/env.ts';
import { MemoryRecorder, podObjectRef } from './status/events.ts';
import { ImageManager } from './runtime/images.ts';
import { FILE_SOURCE, type ManifestError } from './sources/manifest-source.ts';
import type { ObservedPod } from './pod/observed.ts';
import { Pleg } from './runtime/pleg.ts';
import { computePodStatus, type WaitingReason } from './pod/pod-status.ts';
import { killPod, removePod, syncPod, type PodSyncDeps } from './runtime/pod-sync.ts';
import { teardownPodVolumes, type TokenSource } from './volumes/index.ts';
import { ProbeManager } from './prober/prober.ts';
import type { AdmitResult } from './pod/admission.ts';
import { checkActiveDeadline, earliestStart, DEADLINE_MESSAGE, DEADLINE_REASON } from './pod/active-deadline.ts';

export interface PodRecord {
  pod: Pod;
  status: PodStatus;
  /** Increases with every status change (status manager versioning). */
  version: number;
  source: string;
}

export interface KubeletOptions {
  runtime: RuntimeService;
  images: ImageService;
  log: Logger;
  node: NodeFacts;
  hostIP: () => string;
  clock?: Clock;
  backoff?: BackoffPolicy;
  imageBackoff?: BackoffPolicy;
  data?: ConfigDataSource;
  /** Service-account tokens for projected serviceAccountToken volumes (cluster mode); see volumes/projected.ts. */
  tokens?: TokenSource & {
    /** Drops the cached tokens bound to a pod whose volumes were torn down (upstream DeleteServiceAccountToken). */
    deleteServiceAccountToken?(podUid: string): void;
  };
  recorder?: MemoryRecorder;
  /** Periodic re-sync of every pod (upstream --sync-frequency, 1 min). */
  syncFrequencyMs?: number;
  relistPeriodMs?: number;
  /** Names of the pod sources that must report before orphans are removed. */
  sources: string[];
  nodeAllocatable?: () => { cpuMillis: number; memoryBytes: number };
  serviceEnv?: (namespace: string) => Record<string, string>;
  /**
   * Admission of pods from the API server (pkg/kubelet/lifecycle): called once per new pod, in creation
   * order, with the pods already admitted and not terminal. Static pods are always admitted.
   */
  admit?: (pod: Pod, admitted: Pod[]) => AdmitResult;
  /**
   * Admission every new pod goes through, static pods included, before `admit` (upstream's sysctl and
   * AppArmor admit handlers): pure, called once per new pod.
   */
  admitAny?: (pod: Pod) => AdmitResult;
  /** A pod being deleted has no running container left: the API layer may now delete it for good. */
  onPodTerminated?: (pod: Pod, status: PodStatus) => void;
}

interface Worker {
  busy: boolean;
  dirty: boolean;
  /** When the last sync finished: the next one waits for a relist that started after it (pod_workers.go). */
  lastSyncEnd: number;
  requeue?: NodeJS.Timeout;
  /** The last desired version of the pod seen (used for grace periods once it is gone). */
  lastPod?: Pod;
}

export type StatusListener = (uid: string, rec: PodRecord | undefined) => void;

/** An object a pod source will not hand over as a pod: `pod` carries its identity only (name, namespace, uid). */
export interface SourceRejection {
  pod: Pod;
  reason: string;
  message: string;
}

export class Kubelet {
  /** Called after each pod sync with its duration (kubelet_pod_worker_duration_seconds); must not throw. */
  onPodSync?: (durationMs: number) => void;
  readonly recorder: MemoryRecorder;
  readonly pleg: Pleg;
  private readonly o: KubeletOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly deps: PodSyncDeps;
  private readonly imageManager: ImageManager;
  readonly probes: ProbeManager;
  private readonly sourcePods = new Map<string, Pod[]>();
  private readonly sourceErrors = new Map<string, ManifestError[]>();
  private readonly sourceRejections = new Map<string, SourceRejection[]>();
  private desired = new Map<string, { pod: Pod; source: string }>();
  private readonly records = new Map<string, PodRecord>();
  private readonly reasons = new Map<string, Map<string, WaitingReason>>();
  private readonly workers = new Map<string, Worker>();
  /** UID → when its termination finished (so a stale relist does not terminate it twice). */
  private readonly terminated = new Map<string, number>();
  /** Secret values each pod's containers were started with: no status message may show them (see redactStatus). */
  private readonly secretValues = new Map<string, Set<string>>();
  /** API pods rejected by admission: never run, reported Failed. */
  private readonly rejected = new Map<string, { reason: string; message: string }>();
  /** Pods killed for spec.activeDeadlineSeconds: reported Failed / DeadlineExceeded, never restarted. */
  private readonly deadlineExceeded = new Set<string>();
  /** Pods evicted by the eviction manager: killed with the given grace, reported Failed / Evicted, never restarted. */
  private readonly evicted = new Map<string, { reason: string; message: string; gracePeriodSeconds: number }>();
  private readonly listeners: StatusListener[] = [];
  private housekeeping: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  private version = 0;
  lastSyncError: string | undefined;

  constructor(o: KubeletOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
    this.recorder = o.recorder ?? new MemoryRecorder({ log: o.log.child({ component: 'events' }) });
    this.imageManager = new ImageManager({
      images: o.images,
      recorder: this.recorder,
      clock: this.clock,
      initialBackoffMs: o.imageBackoff?.initialMs,
      maxBackoffMs: o.imageBackoff?.maxMs,
    });
    this.probes = new ProbeManager({
      runtime: o.runtime,
      recorder: this.recorder,
      log: o.log.child({ component: 'prober' }),
      clock: this.clock,
      onChange: (uid) => this.kick(uid),
    });
    this.pleg = new Pleg({
      runtime: o.runtime,
      log: o.log.child({ component: 'pleg' }),
      relistPeriodMs: o.relistPeriodMs,
      clock: this.clock,
      labelSelector: { [L.node]: o.node.nodeName },
    });
    this.deps = {
      runtime: o.runtime,
      images: this.imageManager,
      recorder: this.recorder,
      log: o.log,
      clock: this.clock,
      node: o.node,
      hostIP: o.hostIP,
      backoff: o.backoff ?? DEFAULT_CRASH_BACKOFF,
      data: o.data,
      tokens: o.tokens,
      serviceEnv: o.serviceEnv ?? (() => ({})),
      nodeAllocatable: o.nodeAllocatable ?? (() => ({ cpuMillis: 0, memoryBytes: o.node.memoryCapacityBytes })),
      liveness: this.probes.livenessFailed,
      startup: this.probes.startupFailed,
      podIP: (c) => this.records.get(c.labels['io.kubernetes.pod.uid'] ?? '')?.status.podIP ?? '',
      sensitive: (uid, values) => {
        const s = this.secretValues.get(uid) ?? new Set<string>();
        for (const v of values) s.add(v);
        this.secretValues.set(uid, s);
      },
    };
    this.pleg.onPodChanged((uid) => this.kick(uid));
  }

  start(): void {
    this.pleg.start();
    this.housekeeping = setInterval(() => this.cleanupOrphans(), 2000);
    this.resync = setInterval(() => {
      for (const uid of this.desired.keys()) this.kick(uid);
    }, this.o.syncFrequencyMs ?? 60_000);
  }

  /** Stops the loops. Pods keep running (a restart of berth must not touch them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pleg.stop();
    this.probes.stopAll();
    if (this.housekeeping) clearInterval(this.housekeeping);
    if (this.resync) clearInterval(this.resync);
    for (const w of this.workers.values()) if (w.requeue) clearTimeout(w.requeue);
    const deadline = this.clock.now() + 5000;
    while ([...this.workers.values()].some((w) => w.busy) && this.clock.now() < deadline) await this.clock.sleep(20);
  }

  onStatus(l: StatusListener): void {
    this.listeners.push(l);
  }

  /**
   * Replaces the full set of pods from one source (level-triggered). `rejections` are objects of the source berth
   * will not run (e.g. an API pod that fails validation): each is reported once, Failed with its reason and a
   * Warning Event, and forgotten when the source no longer lists it.
   */
  updateSource(source: string, pods: Pod[], errors: ManifestError[] = [], rejections: SourceRejection[] = []): void {
    this.sourcePods.set(source, pods);
    this.sourceErrors.set(source, errors);
    this.sourceRejections.set(source, rejections);
    const next = new Map<string, { pod: Pod; source: string }>();
    const fresh: { pod: Pod; source: string }[] = [];
    for (const [src, list] of this.sourcePods)
      for (const p of list) {
        const uid = p.metadata!.uid!;
        if (this.rejected.has(uid)) continue;
        const known = this.desired.get(uid);
        // A new object with the same desired content (e.g. only its status changed) is not a change.
        if (known && sameDesired(known.pod, p)) next.set(uid, known);
        else if (!known && this.o.admitAny && !this.admitAny(p, src)) continue;
        else if (known || !this.o.admit || src === FILE_SOURCE) next.set(uid, { pod: p, source: src });
        else fresh.push({ pod: p, source: src });
      }
    // New API pods are admitted one by one, oldest first, against what already runs (HandlePodAdditions).
    fresh.sort((a, b) => String(a.pod.metadata?.creationTimestamp ?? '').localeCompare(String(b.pod.metadata?.creationTimestamp ?? '')));
    for (const f of fresh) {
      if (f.pod.metadata?.deletionTimestamp) {
        next.set(f.pod.metadata.uid!, f);
        continue;
      }
      const admitted = [...next.values()].map((d) => d.pod).filter((p) => !this.isTerminal(p));
      const r = this.o.admit!(f.pod, admitted);
      if (r.admit) next.set(f.pod.metadata!.uid!, f);
      else this.reject(f.pod, f.source, r.reason, r.message);
    }
    for (const r of rejections) {
      const uid = r.pod.metadata!.uid!;
      if (!this.rejected.has(uid) && !next.has(uid)) this.reject(r.pod, source, r.reason, r.message);
    }
    const changed = new Set<string>();
    for (const [uid, d] of next) {
      const old = this.desired.get(uid);
      if (!old || old.pod !== d.pod) changed.add(uid);
    }
    for (const uid of this.desired.keys()) if (!next.has(uid)) changed.add(uid);
    const inSources = new Set([...[...this.sourcePods.values()].flat(), ...[...this.sourceRejections.values()].flat().map((r) => r.pod)].map((p) => p.metadata!.uid!));
    for (const uid of [...this.rejected.keys()])
      if (!inSources.has(uid)) {
        this.rejected.delete(uid);
        this.publish(uid, undefined);
      }
    this.desired = next;
    for (const uid of changed) this.kick(uid);
  }

  /** HandlePodAdditions: pods being deleted or already terminated are not admitted again. */
  private admitAny(p: Pod, source: string): boolean {
    if (p.metadata?.deletionTimestamp || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return true;
    const r = this.o.admitAny!(p);
    if (!r.admit) this.reject(p, source, r.reason, r.message);
    return r.admit;
  }

  private isTerminal(p: Pod): boolean {
    const ph = this.records.get(p.metadata!.uid!)?.status.phase;
    return ph === 'Succeeded' || ph === 'Failed';
  }

  private reject(pod: Pod, source: string, reason: string, message: string): void {
    const uid = pod.metadata!.uid!;
    this.rejected.set(uid, { reason, message });
    this.recorder.event(podObjectRef(pod), 'Warning', reason, message);
    this.log.warn({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, podUid: uid, reason, detail: message }, 'pod rejected by admission');
    // rejectPod: phase, reason and "Pod <message>" only; the pod never ran here.
    const status: PodStatus = { phase: 'Failed', reason, message: `Pod ${message}` };
    this.publish(uid, { pod, status, version: ++this.version, source });
  }

  sourcesReady(): boolean {
    return this.o.sources.every((s) => this.sourcePods.has(s));
  }

  /** Snapshot of every pod berth runs, with status. */
  pods(): PodRecord[] {
    return [...this.records.values()];
  }

  pod(uid: string): PodRecord | undefined {
    return this.records.get(uid);
  }

  /**
   * Evicts a pod (the eviction manager's killPodNow): its containers are stopped with `gracePeriodSeconds` (at
   * least 2 s, as every kill), then it is reported phase Failed with `reason` and `message`, and never runs again
   * here. Returns at once; podCleanedUp() tells when nothing of it runs. Idempotent; unknown pods are ignored.
   */
  evictPod(uid: string, o: { gracePeriodSeconds: number; reason: string; message: string }): void {
    if (!this.desired.has(uid) || this.evicted.has(uid)) return;
    this.evicted.set(uid, o);
    this.kick(uid);
  }

  /** The pod was evicted and its final Failed status is published (nothing of it runs any more), or it is gone. */
  podCleanedUp(uid: string): boolean {
    if (!this.desired.has(uid)) return true;
    return this.evicted.has(uid) && this.records.get(uid)?.status.phase === 'Failed';
  }

  /** Desired pods that are not terminal nor evicted, with their source (the eviction manager's activePods). */
  activePods(): { pod: Pod; source: string }[] {
    return [...this.desired.values()].filter((d) => !this.evicted.has(d.pod.metadata!.uid!) && !this.isTerminal(d.pod));
  }

  private evictedReason(uid: string): { phase: 'Failed'; reason: string; message: string } | undefined {
    const e = this.evicted.get(uid);
    return e ? { phase: 'Failed', reason: e.reason, message: e.message } : undefined;
  }

  /** An evicted pod: killed once with the eviction's grace, then reported Failed (killPodNow + the status it set). */
  private async syncEvicted(pod: Pod, w: Worker, seen: ObservedPod, reasons: Map<string, WaitingReason>, source: string, log: Logger): Promise<boolean> {
    const e = this.evicted.get(pod.metadata!.uid!)!;
    const running = seen.containers.some((c) => c.state === 'CONTAINER_RUNNING') || seen.sandboxes.some((s) => s.state === 'SANDBOX_READY');
    if (running) {
      try {
        await killPod({ ...this.deps, log }, pod, seen, e.gracePeriodSeconds);
      } finally {
        w.lastSyncEnd = this.clock.now();
      }
      this.pleg.trigger();
      w.dirty = true;
      return false;
    }
    const uid = pod.metadata!.uid!;
    this.probes.removePod(uid);
    // killPodNow's status (1.20) carries no container statuses, so `kubectl get pods` shows STATUS Evicted as operators
    // know it; the conditions (not ready: PodFailed), IPs and start time are kept.
    const prev = this.records.get(uid);
    const status = redactStatus(
      computePodStatus({
        pod,
        seen,
        reasons,
        hostIP: this.o.hostIP(),
        previous: prev?.status,
        now: this.clock.now(),
        podReason: { phase: 'Failed', reason: e.reason, message: e.message },
      }),
      this.secretValues.get(uid),
    );
    delete status.containerStatuses;
    delete status.initContainerStatuses;
    if (!prev || prev.pod !== pod || !sameStatus(prev.status, status)) this.publish(uid, { pod, status, version: ++this.version, source });
    return false;
  }

  desiredPod(uid: string): Pod | undefined {
    return this.desired.get(uid)?.pod;
  }

  errors(): ManifestError[] {
    return [...this.sourceErrors.values()].flat();
  }

  healthy(): boolean {
    return this.pleg.healthy();
  }

  /** Schedules a sync of one pod (coalesced per UID). */
  kick(uid: string): void {
    if (this.stopped) return;
    let w = this.workers.get(uid);
    if (!w) this.workers.set(uid, (w = { busy: false, dirty: false, lastSyncEnd: 0 }));
    w.dirty = true;
    if (!w.busy) void this.work(uid, w);
  }

  private async work(uid: string, w: Worker): Promise<void> {
    w.busy = true;
    try {
      while (w.dirty && !this.stopped) {
        w.dirty = false;
        if (w.requeue) {
          clearTimeout(w.requeue);
          w.requeue = undefined;
        }
        let done = false;
        try {
          done = await this.syncOne(uid, w);
          this.lastSyncError = undefined;
        } catch (err) {
          this.lastSyncError = errorMessage(err);
          const d = this.desired.get(uid)?.pod ?? w.lastPod;
          this.log.warn({ err, pod: d ? `${d.metadata?.namespace}/${d.metadata?.name}` : undefined, podUid: uid }, 'pod sync failed');
          if (!this.stopped) w.requeue = setTimeout(() => this.kick(uid), 2000);
        }
        if (done) {
          this.workers.delete(uid);
          return;
        }
      }
    } finally {
      w.busy = false;
    }
  }

  private publish(uid: string, rec: PodRecord | undefined): void {
    if (rec) this.records.set(uid, rec);
    else {
      this.records.delete(uid);
      this.secretValues.delete(uid);
    }
    for (const l of this.listeners) {
      try {
        l(uid, rec);
      } catch (err) {
        this.log.error({ err }, 'status listener failed');
      }
    }
  }

  private statusFor(pod: Pod, seen: ObservedPod, reasons: Map<string, WaitingReason>, source: string, terminal = false, restarting?: ReadonlySet<string>): PodStatus {
    const uid = pod.metadata!.uid!;
    const prev = this.records.get(uid);
    const status = computePodStatus({
      pod,
      seen,
      reasons,
      hostIP: this.o.hostIP(),
      ready: this.probes.readiness,
      started: this.probes.startup,
      previous: prev?.status,
      now: this.clock.now(),
      terminal,
      restarting,
      podReason: this.evictedReason(uid) ?? (this.deadlineExceeded.has(uid) ? { phase: 'Failed', reason: DEADLINE_REASON, message: DEADLINE_MESSAGE } : undefined),
    });
    redactStatus(status, this.secretValues.get(uid));
    if (prev && prev.pod === pod && sameStatus(prev.status, status)) return status;
    this.publish(uid, { pod, status, version: ++this.version, source });
    return status;
  }

  /** One sync of one pod; returns true when the pod is gone for good (worker can be dropped). */
  private async syncOne(uid: string, w: Worker): Promise<boolean> {
    const seen = await this.pleg.getNewerThan(uid, w.lastSyncEnd);
    const d = this.desired.get(uid);
    if (!d) return this.terminate(uid, w, seen);
    const pod = d.pod;
    w.lastPod = pod;
    let reasons = this.reasons.get(uid);
    if (!reasons) this.reasons.set(uid, (reasons = new Map()));
    const log = this.log.child({ pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`, podUid: uid });
    if (pod.metadata?.deletionTimestamp) return this.syncTerminating(pod, w, seen, reasons, d.source, log);
    if (this.evicted.has(uid)) return this.syncEvicted(pod, w, seen, reasons, d.source, log);
    // active_deadline.go: re-read on every sync, so lowering the deadline of a running pod takes effect.
    const deadline = checkActiveDeadline(pod, earliestStart(this.records.get(uid)?.status.startTime, pod.status?.startTime), this.clock.now());
    if (deadline.exceeded || this.deadlineExceeded.has(uid)) return this.syncDeadlineExceeded(pod, w, seen, reasons, d.source, log);
    let res;
    const syncStart = this.clock.now();
    try {
      res = await syncPod({ ...this.deps, log }, pod, seen, reasons);
    } finally {
      w.lastSyncEnd = this.clock.now();
      this.onPodSync?.(w.lastSyncEnd - syncStart);
    }
    const a = res.actions;
    if (a.createSandbox || a.killPod || a.start.length || a.kill.length) this.pleg.trigger();
    this.statusFor(pod, seen, reasons, d.source, false, new Set(res.started));
    this.probes.sync(pod, seen, this.records.get(uid)?.status.podIP ?? '');
    const deadlineMs = checkActiveDeadline(pod, earliestStart(this.records.get(uid)?.status.startTime, pod.status?.startTime), this.clock.now()).remainingMs;
    const requeueMs = Math.min(res.requeueAfterMs ?? Infinity, deadlineMs ?? Infinity);
    if (Number.isFinite(requeueMs)) {
      const ms = Math.max(requeueMs, 50);
      if (w.requeue) clearTimeout(w.requeue);
      w.requeue = setTimeout(() => this.kick(uid), ms);
    }
    return false;
  }

  /**
   * Stops whatever of the pod still runs (containers with their grace, then ready sandboxes) and asks for a relist;
   * true when there was something to stop (the worker syncs again once the relist shows it stopped).
   */
  private async killIfRunning(pod: Pod, w: Worker, seen: ObservedPod, log: Logger): Promise<boolean> {
    const running = seen.containers.some((c) => c.state === 'CONTAINER_RUNNING') || seen.sandboxes.some((s) => s.state === 'SANDBOX_READY');
    if (!running) return false;
    try {
      await killPod({ ...this.deps, log }, pod, seen);
    } finally {
      w.lastSyncEnd = this.clock.now();
    }
    this.pleg.trigger();
    w.dirty = true;
    return true;
  }

  /** A pod past spec.activeDeadlineSeconds: killed once, then reported Failed / DeadlineExceeded. */
  private async syncDeadlineExceeded(pod: Pod, w: Worker, seen: ObservedPod, reasons: Map<string, WaitingReason>, source: string, log: Logger): Promise<boolean> {
    const uid = pod.metadata!.uid!;
    if (!this.deadlineExceeded.has(uid)) {
      this.deadlineExceeded.add(uid);
      this.recorder.event(podObjectRef(pod), 'Normal', DEADLINE_REASON, DEADLINE_MESSAGE);
      // As upstream (the active-deadline handler makes generateAPIPodStatus report Failed, then syncPod kills): the
      // pod reads Failed / DeadlineExceeded at once, not only after its containers' grace period has run out.
      this.statusFor(pod, seen, reasons, source);
    }
    if (await this.killIfRunning(pod, w, seen, log)) return false;
    this.probes.removePod(uid);
    this.statusFor(pod, seen, reasons, source);
    return false;
  }

  /** A pod being deleted through the API: stop it with its deletion grace, report the final status, hand it back. */
  private async syncTerminating(pod: Pod, w: Worker, seen: ObservedPod, reasons: Map<string, WaitingReason>, source: string, log: Logger): Promise<boolean> {
    if (await this.killIfRunning(pod, w, seen, log)) return false;
    const status = this.statusFor(pod, seen, reasons, source, true);
    this.probes.removePod(pod.metadata!.uid!);
    this.o.onPodTerminated?.(pod, status);
    return false;
  }

  private async terminate(uid: string, w: Worker, seen: ObservedPod): Promise<boolean> {
    if (!this.sourcesReady()) return false;
    const last = w.lastPod ?? this.records.get(uid)?.pod;
    if (seen.containers.length || seen.sandboxes.length) {
      const log = this.log.child({ pod: last ? `${last.metadata?.namespace}/${last.metadata?.name}` : seen.containers[0]?.labels['io.kubernetes.pod.name'], podUid: uid });
      log.info({ containers: seen.containers.length }, 'stopping pod that is no longer desired');
      try {
        await killPod({ ...this.deps, log }, last, seen);
        await removePod({ ...this.deps, log }, seen);
      } finally {
        w.lastSyncEnd = this.clock.now();
      }
      if (last) this.recorder.event(podObjectRef(last), 'Normal', 'Killing', 'Pod removed from its source; containers stopped');
    }
    await teardownPodVolumes(this.o.node.rootDir, uid);
    this.o.data?.releasePod?.(uid);
    this.o.tokens?.deleteServiceAccountToken?.(uid);
    this.reasons.delete(uid);
    this.deadlineExceeded.delete(uid);
    this.evicted.delete(uid);
    this.probes.removePod(uid);
    this.imageManager.forgetPod(uid);
    if (this.records.has(uid)) this.publish(uid, undefined);
    this.terminated.set(uid, this.clock.now());
    this.pleg.trigger();
    return true;
  }

  /** Housekeeping: pods the runtime holds that no source wants are terminated. */
  private cleanupOrphans(): void {
    if (!this.sourcesReady()) return;
    for (const uid of this.pleg.uids()) {
      const t = this.terminated.get(uid);
      if (!this.desired.has(uid) && (t === undefined || t < this.pleg.lastRelistStart)) this.kick(uid);
    }
    for (const [uid, t] of this.terminated) if (t < this.pleg.lastRelistStart - 60_000) this.terminated.delete(uid);
  }
}

function sameDesired(a: Pod, b: Pod): boolean {
  if (a === b) return true;
  // config.seen is stamped on every read of a manifest; it says nothing about what should run.
  const key = (p: Pod): string => {
    const { 'kubernetes.io/config.seen': _seen, ...annotations } = p.metadata?.annotations ?? {};
    return JSON.stringify([p.spec, p.metadata?.deletionTimestamp, p.metadata?.deletionGracePeriodSeconds, p.metadata?.labels, annotations]);
  };
  return key(a) === key(b);
}

function sameStatus(a: PodStatus, b: PodStatus): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * `status` (changed in place, and returned) with the pod's Secret values cut out of every message: the runtime's
 * State.Error of a container that could not start quotes its program, which a $(VAR) may have taken from a Secret.
 */
function redactStatus(status: PodStatus, values: ReadonlySet<string> | undefined): PodStatus {
  if (!values?.size) return status;
  const r = (m: string | undefined): string | undefined => (m === undefined ? m : redactValues(m, values));
  if (status.message !== undefined) status.message = r(status.message);
  for (const s of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    if (s.state?.waiting?.message !== undefined) s.state.waiting.message = r(s.state.waiting.message);
    if (s.state?.terminated?.message !== undefined) s.state.terminated.message = r(s.state.terminated.message);
    if (s.lastState?.terminated?.message !== undefined) s.lastState.terminated.message = r(s.lastState.terminated.message);
  }
  return status;
}
