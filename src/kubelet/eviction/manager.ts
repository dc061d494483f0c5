// The eviction manager's loop (pkg/kubelet/eviction/eviction_manager.go Start/synchronize/evictPod): every
// monitoring interval (10 s) it reads stats, computes the plan (plan.ts), reports pressure conditions, and when a
// threshold is met first reclaims node-level resources (container and image GC), then evicts at most one pod and
// waits (up to 30 s) for it to be cleaned up. Effects only; the decisions are in plan.ts.
import type { Pod } from 'kubernetes-types/core/v1';
import { errorMessage, RateLimiter, SyncRunner, systemClock, type Clock, type Logger } from '../../lib/index.ts';
import type { AdmitResult } from '../pod/admission.ts';
import { podObjectRef, type EventRecorder, type ObjectRef } from '../status/events.ts';
import { admitUnderPressure, computeEvictionPlan, INITIAL_EVICTION_STATE, thresholdsMet, type EvictionState, type NodeReclaim } from './plan.ts';
import type { ActivePod } from './rank.ts';
import { makeSignalObservations, type EvictionStats } from './signals.ts';
import { describeThreshold, type NodeConditionType, type Threshold } from './thresholds.ts';

/** Upstream's evictionMonitoringPeriod. */
export const EVICTION_MONITORING_PERIOD_MS = 10_000;
const POD_CLEANUP_TIMEOUT_MS = 30_000;
const POD_CLEANUP_POLL_MS = 1000;
/** A lasting pressure logs its "attempting to reclaim" at info once per this period (debug in between). */
const LOG_REPEAT_MS = 5 * 60_000;

export interface EvictionManagerOptions {
  thresholds: readonly Threshold[];
  pressureTransitionPeriodMs: number;
  maxPodGracePeriodSeconds: number;
  /** Fresh stats for one synchronize. May reject (the run is then skipped and retried). */
  stats: () => Promise<EvictionStats>;
  /** Whether imagefs is on another device than nodefs; asked once. */
  dedicatedImageFs: () => Promise<boolean>;
  /** Pods running or about to run here, not terminal. */
  activePods: () => ActivePod[];
  /**
   * Kills the pod with `gracePeriodSeconds` and reports it Failed with `reason`/`message` (the kubelet's
   * eviction path). Resolves once the kill was started; the manager then polls `podCleanedUp`.
   */
  evictPod: (pod: Pod, o: { gracePeriodSeconds: number; reason: string; message: string }) => Promise<void>;
  /** No container of the pod runs any more. */
  podCleanedUp: (uid: string) => boolean;
  /** Node-level reclaim: remove every dead container / unused image (DeleteAllUnusedContainers, DeleteUnusedImages). */
  reclaim: Record<NodeReclaim, () => Promise<void>>;
  recorder: EventRecorder;
  nodeRef: ObjectRef;
  /** Called when the set of pressure conditions changed (e.g. to post the node status now). */
  onConditionsChanged?: (conditions: readonly NodeConditionType[]) => void;
  monitoringPeriodMs?: number;
  log: Logger;
  clock?: Clock;
}

export class EvictionManager {
  private readonly o: EvictionManagerOptions;
  private readonly clock: Clock;
  private readonly runner: SyncRunner;
  private state: EvictionState = INITIAL_EVICTION_STATE;
  private current: NodeConditionType[] = [];
  private dedicated: boolean | undefined;
  private readonly limiter: RateLimiter;

  constructor(o: EvictionManagerOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.limiter = new RateLimiter(LOG_REPEAT_MS, () => this.clock.now());
    const period = o.monitoringPeriodMs ?? EVICTION_MONITORING_PERIOD_MS;
    this.runner = new SyncRunner({
      name: 'eviction',
      run: (signal) => this.synchronize(signal),
      periodMs: period,
      minIntervalMs: period,
      unhealthyAfterMs: 0,
      log: o.log,
      clock: this.clock,
    });
  }

  start(): void {
    if (this.o.thresholds.length === 0) {
      this.o.log.info('no eviction thresholds configured; eviction manager idle');
      return;
    }
    this.o.log.info({ thresholds: this.o.thresholds.map(describeThreshold) }, 'eviction manager started');
    this.runner.start();
  }

  stop(): void {
    this.runner.stop();
  }

  /** Pressure conditions as last computed (transition period applied). Never blocks. */
  conditions(): readonly NodeConditionType[] {
    return this.current;
  }

  pressure(): { memory: boolean; disk: boolean; pid: boolean } {
    const c = this.current;
    return { memory: c.includes('MemoryPressure'), disk: c.includes('DiskPressure'), pid: c.includes('PIDPressure') };
  }

  /** Pod admission under pressure (lifecycle.PodAdmitHandler). */
  admit(pod: Pod, isStatic: boolean): AdmitResult {
    return admitUnderPressure({ pod, isStatic }, this.current);
  }

  /** Resolves when no synchronize is running or pending (tests). */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  private async synchronize(signal: AbortSignal): Promise<void> {
    const log = this.o.log;
    if (this.dedicated === undefined) this.dedicated = await this.o.dedicatedImageFs();
    const stats = await this.o.stats();
    const plan = computeEvictionPlan({
      thresholds: this.o.thresholds,
      stats,
      pods: this.o.activePods(),
      now: this.clock.now(),
      state: this.state,
      pressureTransitionPeriodMs: this.o.pressureTransitionPeriodMs,
      maxPodGracePeriodSeconds: this.o.maxPodGracePeriodSeconds,
      dedicatedImageFs: this.dedicated,
    });
    this.state = plan.state;
    this.setConditions(plan.conditions);
    const r = plan.reclaim;
    if (!r || signal.aborted) return;
    const level = this.limiter.allow(`reclaim:${r.resource}:${r.evict ? 'pod' : 'none'}`) ? 'info' : 'debug';
    log[level]({ resource: r.resource, threshold: describeThreshold(r.threshold) }, 'eviction manager: attempting to reclaim');
    this.o.recorder.event(this.o.nodeRef, 'Warning', 'EvictionThresholdMet', `Attempting to reclaim ${r.resource}`);
    if (r.nodeLevel.length > 0 && (await this.reclaimNodeLevel(r.nodeLevel, r.resource))) return;
    if (!r.evict) {
      log[level === 'info' ? 'warn' : 'debug']({ resource: r.resource, active: r.ranked.length }, 'eviction manager: unable to evict any pods from the node');
      return;
    }
    const e = r.evict;
    const ref = podObjectRef(e.pod);
    log.warn({ pod: `${ref.namespace}/${ref.name}`, podUid: ref.uid, gracePeriodSeconds: e.gracePeriodSeconds, detail: e.message }, 'eviction manager: evicting pod');
    this.o.recorder.event(ref, 'Warning', 'Evicted', e.message);
    try {
      await this.o.evictPod(e.pod, { gracePeriodSeconds: e.gracePeriodSeconds, reason: 'Evicted', message: e.message });
    } catch (err: unknown) {
      log.error({ err, pod: `${ref.namespace}/${ref.name}` }, 'eviction manager: pod failed to evict');
      return;
    }
    await this.waitForCleanup(ref.uid ?? '', signal);
  }

  /** reclaimNodeLevelResources: true when, after the reclaim, no threshold (with minimum reclaim) is met any more. */
  private async reclaimNodeLevel(order: NodeReclaim[], resource: string): Promise<boolean> {
    for (const what of order) {
      try {
        await this.o.reclaim[what]();
      } catch (err: unknown) {
        this.o.log.info({ err: errorMessage(err), resource, reclaim: what }, 'eviction manager: unexpected error when attempting to reduce resource pressure');
      }
    }
    const obs = makeSignalObservations(await this.o.stats());
    if (thresholdsMet(this.o.thresholds, obs, true).length === 0) {
      this.o.log.info({ resource }, 'eviction manager: able to reduce resource pressure without evicting pods');
      return true;
    }
    return false;
  }

  private async waitForCleanup(uid: string, signal: AbortSignal): Promise<void> {
    const deadline = this.clock.now() + POD_CLEANUP_TIMEOUT_MS;
    while (!signal.aborted && this.clock.now() < deadline) {
      if (this.o.podCleanedUp(uid)) return;
      await this.clock.sleep(POD_CLEANUP_POLL_MS);
    }
    if (!signal.aborted) this.o.log.info({ podUid: uid }, 'eviction manager: timed out waiting for pods to be cleaned up');
  }

  private setConditions(next: NodeConditionType[]): void {
    const prev = this.current;
    this.current = next;
    if (prev.length === next.length && prev.every((c) => next.includes(c))) return;
    this.o.log.info({ conditions: next }, 'eviction manager: node pressure conditions changed');
    this.o.onConditionsChanged?.(next);
  }
}
