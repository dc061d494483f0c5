// spec.activeDeadlineSeconds, as upstream's pkg/kubelet/active_deadline.go: once a pod has been active on
// the node (since status.startTime) for that long, it is killed and reported Failed / DeadlineExceeded.
// The spec field may be lowered on a running pod; every sync re-reads it, so an update takes effect.
import type { Pod } from 'kubernetes-types/core/v1';

export const DEADLINE_REASON = 'DeadlineExceeded';
export const DEADLINE_MESSAGE = 'Pod was active on the node longer than the specified deadline';

export interface DeadlineCheck {
  exceeded: boolean;
  /** Time left until the deadline (only when not exceeded and a deadline applies). */
  remainingMs?: number;
}

/**
 * Pure. `startTime` is the pod's status.startTime (the kubelet's own record, else the API server's);
 * no start time or no deadline → not exceeded and nothing to wait for.
 */
export function checkActiveDeadline(pod: Pod, startTime: string | undefined, nowMs: number): DeadlineCheck {
  const ads = pod.spec?.activeDeadlineSeconds;
  if (typeof ads !== 'number' || !Number.isFinite(ads) || !startTime) return { exceeded: false };
  const start = Date.parse(startTime);
  if (!Number.isFinite(start)) return { exceeded: false };
  const left = start + ads * 1000 - nowMs;
  return left <= 0 ? { exceeded: true } : { exceeded: false, remainingMs: left };
}

/**
 * The earlier of berth's own status.startTime and the API server's: after a restart of berth its own
 * record starts afresh, and the deadline must still count from when the pod really started.
 */
export function earliestStart(...times: (string | undefined)[]): string | undefined {
  let best: string | undefined;
  for (const t of times) if (t && Number.isFinite(Date.parse(t)) && (!best || Date.parse(t) < Date.parse(best))) best = t;
  return best;
}
