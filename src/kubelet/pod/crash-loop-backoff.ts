// Crash-loop back-off, derived from Docker labels alone so it survives a berth restart.
// Semantics of k8s.io/client-go/util/flowcontrol.Backoff (src/lib/backoff.ts) as used by kuberuntime's doBackOff,
// with the entry (duration d, lastUpdate u) read from the latest exited container's labels:
//   - no exited container yet → start now, no entry;
//   - an entry older than 2·max by now is gone (the kubelet's backOff.GC());
//   - in back-off while now - finishedAt < d (IsInBackOffSince(key, finishedAt));
//   - when it ends: Next(key, finishedAt), so d = initial if finishedAt - u > 2·max else min(2d, max), u = now (the restart).
// With the defaults (10 s, 300 s) that is 10 s, 20 s, 40 s … 5 min, reset after 10 min of clean running.
import type { ContainerStatus } from '../../cri/index.ts';
import { A } from '../../cri/index.ts';
import { computeNextBackoff, isBackoffExpired, isInBackoffSince, type BackoffEntry, type BackoffPolicy } from '../../lib/index.ts';

export type { BackoffPolicy } from '../../lib/index.ts';

export const DEFAULT_CRASH_BACKOFF: BackoffPolicy = { initialMs: 10_000, maxMs: 300_000 };

export type BackoffDecision =
  | { inBackoff: true; remainingMs: number; durationMs: number }
  | { inBackoff: false; next?: BackoffEntry };

export function backoffEntryOf(c: ContainerStatus): BackoffEntry | undefined {
  const d = Number(c.annotations[A.backoffMs]);
  const u = Number(c.annotations[A.backoffUpdatedAt]);
  if (!Number.isFinite(d) || d <= 0 || !Number.isFinite(u)) return undefined;
  return { durationMs: d, updatedAt: u };
}

/** Decides whether a container whose latest instance exited may start now (pure). */
export function computeBackoff(lastExited: ContainerStatus | undefined, now: number, policy: BackoffPolicy): BackoffDecision {
  if (!lastExited) return { inBackoff: false };
  const finishedAt = lastExited.finishedAt || lastExited.createdAt;
  const labelled = backoffEntryOf(lastExited);
  const entry = labelled && !isBackoffExpired(labelled, now, policy) ? labelled : undefined;
  if (entry && isInBackoffSince(entry, finishedAt, now, policy)) {
    return { inBackoff: true, remainingMs: entry.durationMs - (now - finishedAt), durationMs: entry.durationMs };
  }
  return { inBackoff: false, next: computeNextBackoff(entry, finishedAt, now, policy) };
}

/** Go's time.Duration.String() for whole seconds/ms, as upstream prints back-off ("10s", "1m20s", "5m0s"). */
export function formatGoDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const totalS = ms / 1000;
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS - h * 3600 - m * 60;
  const sStr = Number.isInteger(s) ? String(s) : String(Number(s.toFixed(3)));
  if (h > 0) return `${h}h${m}m${sStr}s`;
  if (m > 0) return `${m}m${sStr}s`;
  if (totalS < 1) return `${ms}ms`;
  return `${sStr}s`;
}
