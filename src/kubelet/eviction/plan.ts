// The eviction manager's decision, as a pure function of thresholds, observations, pods and the state carried
// from the previous synchronize. Follows pkg/kubelet/eviction/eviction_manager.go synchronize and helpers.go
// (thresholdsMet, mergeThresholds, thresholdsFirstObservedAt, nodeConditionsLastObservedAt,
// nodeConditionsObservedSince, thresholdsMetGracePeriod, thresholdsUpdatedStats, byEvictionPriority,
// buildSignalToNodeReclaimFuncs) and the manager's Admit.
import type { Pod, Toleration } from 'kubernetes-types/core/v1';
import type { AdmitResult } from '../pod/admission.ts';
import { getQOSClass } from '../pod/pod-status.ts';
import { evictionMessage, isCriticalPod, rankForSignal, type ActivePod } from './rank.ts';
import { makeSignalObservations, type EvictionStats, type Observations, type PodUsage } from './signals.ts';
import {
  isHardThreshold,
  SIGNAL_CONDITION,
  SIGNAL_RESOURCE,
  thresholdKey,
  thresholdQuantity,
  type NodeConditionType,
  type Signal,
  type Threshold,
} from './thresholds.ts';

/** What synchronize remembers between runs (all of it rebuilt from nothing after a restart, as upstream). */
export interface EvictionState {
  /** thresholdKey → when that threshold was first met (for soft grace periods). */
  thresholdsFirstObservedAt: ReadonlyMap<string, number>;
  /** When each pressure condition was last observed (for the transition period). */
  nodeConditionsLastObservedAt: ReadonlyMap<NodeConditionType, number>;
  /** Thresholds met (grace included) and not yet resolved by their minimum reclaim. */
  thresholdsMet: readonly Threshold[];
  lastObservations: Observations;
}

export const INITIAL_EVICTION_STATE: EvictionState = Object.freeze({
  thresholdsFirstObservedAt: new Map(),
  nodeConditionsLastObservedAt: new Map(),
  thresholdsMet: [],
  lastObservations: {},
});

export type NodeReclaim = 'containers' | 'images';

export interface EvictionPlanInput {
  thresholds: readonly Threshold[];
  stats: EvictionStats;
  pods: readonly ActivePod[];
  now: number;
  state: EvictionState;
  /** --eviction-pressure-transition-period (5 min). */
  pressureTransitionPeriodMs: number;
  /** --eviction-max-pod-grace-period, used for soft thresholds (0 = none given; hard evictions use 0). */
  maxPodGracePeriodSeconds: number;
  /** imagefs is on another device than nodefs. */
  dedicatedImageFs: boolean;
}

export interface PodEviction {
  pod: Pod;
  gracePeriodSeconds: number;
  message: string;
  annotations: Record<string, string>;
}

export interface EvictionPlan {
  state: EvictionState;
  observations: Observations;
  /** Pressure conditions to report now (transition period applied). */
  conditions: NodeConditionType[];
  /** The threshold to act on now (grace met, fresh stats), if any. */
  reclaim?: {
    threshold: Threshold;
    resource: string;
    /** Node-level reclaim to try before evicting (container GC, image GC), in order. */
    nodeLevel: NodeReclaim[];
    /** Active pods in eviction order. */
    ranked: ActivePod[];
    /** The first of them that may be evicted (critical pods are skipped), with its grace and message. */
    evict?: PodEviction | undefined;
  };
}

/** thresholdsMet: thresholds whose observed available is below the threshold (+ minimum reclaim when enforced). */
export function thresholdsMet(thresholds: readonly Threshold[], obs: Observations, enforceMinReclaim: boolean): Threshold[] {
  return thresholds.filter((t) => {
    const o = obs[t.signal];
    if (!o) return false;
    let q = thresholdQuantity(t.value, o.capacity);
    if (enforceMinReclaim && t.minReclaim) q += thresholdQuantity(t.minReclaim, o.capacity);
    return q > o.available;
  });
}

function mergeThresholds(a: readonly Threshold[], b: readonly Threshold[]): Threshold[] {
  const keys = new Set(a.map(thresholdKey));
  return [...a, ...b.filter((t) => !keys.has(thresholdKey(t)))];
}

/** buildSignalToNodeReclaimFuncs. */
export function nodeReclaimFor(signal: Signal, dedicatedImageFs: boolean): NodeReclaim[] {
  if (signal === 'memory.available' || signal === 'pid.available') return [];
  if (dedicatedImageFs && signal.startsWith('nodefs.')) return [];
  return ['containers', 'images'];
}

/** byEvictionPriority: memory first; thresholds with a resource to reclaim before those without. */
function byEvictionPriority(ts: readonly Threshold[]): Threshold[] {
  return [...ts].sort((a, b) => (a.signal === 'memory.available' ? 0 : 1) - (b.signal === 'memory.available' ? 0 : 1));
}

/** One synchronize, without effects. */
export function computeEvictionPlan(i: EvictionPlanInput): EvictionPlan {
  const observations = makeSignalObservations(i.stats);
  let met = thresholdsMet(i.thresholds, observations, false);
  if (i.state.thresholdsMet.length > 0) met = mergeThresholds(met, thresholdsMet(i.state.thresholdsMet, observations, true));

  const firstObservedAt = new Map<string, number>();
  for (const t of met) firstObservedAt.set(thresholdKey(t), i.state.thresholdsFirstObservedAt.get(thresholdKey(t)) ?? i.now);

  const lastObservedAt = new Map(i.state.nodeConditionsLastObservedAt);
  for (const t of met) lastObservedAt.set(SIGNAL_CONDITION[t.signal], i.now);
  const conditions = (['MemoryPressure', 'DiskPressure', 'PIDPressure'] as const).filter((c) => {
    const at = lastObservedAt.get(c);
    return at !== undefined && i.now - at < i.pressureTransitionPeriodMs;
  });

  const graceMet = met.filter((t) => i.now - firstObservedAt.get(thresholdKey(t))! >= t.gracePeriodMs);
  const state: EvictionState = {
    thresholdsFirstObservedAt: firstObservedAt,
    nodeConditionsLastObservedAt: lastObservedAt,
    thresholdsMet: graceMet,
    lastObservations: observations,
  };
  // thresholdsUpdatedStats: act only on signals whose stats are newer than at the previous synchronize.
  const fresh = graceMet.filter((t) => {
    const last = i.state.lastObservations[t.signal];
    return !last || observations[t.signal]!.timeMs > last.timeMs;
  });
  const plan: EvictionPlan = { state, observations, conditions };
  const threshold = byEvictionPriority(fresh)[0];
  if (!threshold) return plan;

  const resource = SIGNAL_RESOURCE[threshold.signal];
  const usage = new Map<string, PodUsage>(i.stats.pods.map((p) => [p.uid, p]));
  const stats = (uid: string): PodUsage | undefined => usage.get(uid);
  const ranked = rankForSignal(threshold.signal, i.pods, stats, i.dedicatedImageFs);
  const victim = ranked.find((p) => !isCriticalPod(p));
  let evict: PodEviction | undefined;
  if (victim) {
    const m = evictionMessage(resource, victim.pod, stats(victim.pod.metadata?.uid ?? ''), fresh, observations);
    evict = {
      pod: victim.pod,
      gracePeriodSeconds: isHardThreshold(threshold) ? 0 : i.maxPodGracePeriodSeconds,
      message: m.message,
      annotations: m.annotations,
    };
  }
  plan.reclaim = { threshold, resource, nodeLevel: nodeReclaimFor(threshold.signal, i.dedicatedImageFs), ranked, evict };
  return plan;
}

/** TolerationsTolerateTaint for one taint with an empty value. */
function toleratesTaint(tolerations: readonly Toleration[] | undefined, key: string, effect: string): boolean {
  return (tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== effect) return false;
    const op = t.operator ?? 'Equal';
    if (!t.key) return op === 'Exists';
    if (t.key !== key) return false;
    return op === 'Exists' || (t.value ?? '') === '';
  });
}

/**
 * The eviction manager's pod admission (managerImpl.Admit): under pressure, critical pods are admitted; under
 * memory pressure alone, pods that are not BestEffort or that tolerate the memory-pressure taint; otherwise the
 * pod is rejected with reason Evicted and "The node had condition: [MemoryPressure]. ".
 */
export function admitUnderPressure(p: ActivePod, conditions: readonly NodeConditionType[]): AdmitResult {
  if (conditions.length === 0 || isCriticalPod(p)) return { admit: true };
  if (conditions.length === 1 && conditions[0] === 'MemoryPressure') {
    if (getQOSClass(p.pod) !== 'BestEffort') return { admit: true };
    if (toleratesTaint(p.pod.spec?.tolerations, 'node.kubernetes.io/memory-pressure', 'NoSchedule')) return { admit: true };
  }
  return { admit: false, reason: 'Evicted', message: `The node had condition: [${conditions.join(' ')}]. ` };
}
