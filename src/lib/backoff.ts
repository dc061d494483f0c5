// Exponential back-off, written once for every loop that retries. One policy, two shapes:
//  - `Backoff` counts a retry loop's consecutive failures: the n-th failure waits min(initial·factor^(n-1), max),
//    ± jitter; a success resets it (sync runner, informer, status manager, node registration, Lease, housekeeping).
//  - per-key entries { durationMs, updatedAt } as k8s.io/client-go/util/flowcontrol.Backoff keeps them: Next grows
//    the key's duration (or starts it again once the entry is older than resetAfterMs, flowcontrol's hasExpired),
//    IsInBackOffSince asks whether a time lies inside the window, GC drops stale keys. The steps are pure functions
//    over an entry, so an entry kept elsewhere (the crash-loop entry in Docker labels) follows the same rules;
//    `KeyedBackoff` keeps entries in memory on an injected clock (image pulls).
import { type Clock, systemClock, jitter } from './clock.ts';

export interface BackoffPolicy {
  /** The first delay. */
  initialMs: number;
  /** No delay grows beyond this. */
  maxMs: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Each delay is drawn uniformly within ± this fraction of itself (default 0: none). */
  jitter?: number;
  /** Per-key: an entry not updated for longer than this is stale and starts again at initialMs (default 2·maxMs). */
  resetAfterMs?: number;
}

/** One back-off entry: the current duration and when it was last grown (flowcontrol's backoffEntry). */
export interface BackoffEntry {
  durationMs: number;
  updatedAt: number;
}

const withJitter = (p: BackoffPolicy, ms: number, random: () => number): number => (p.jitter ? jitter(ms, p.jitter, random) : ms);

/** The delay after the `failures`-th consecutive failure (1 = the first): min(initial·factor^(failures-1), max), jittered. Pure. */
export function computeBackoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const grown = policy.initialMs * (policy.factor ?? 2) ** Math.max(0, failures - 1);
  return withJitter(policy, Math.min(Number.isFinite(grown) ? grown : policy.maxMs, policy.maxMs), random);
}

/** Consecutive failures of one retry loop. Not shared between loops; no clock needed (the caller sleeps). */
export class Backoff {
  private count = 0;
  private readonly policy: BackoffPolicy;
  private readonly random: () => number;
  constructor(policy: BackoffPolicy, random: () => number = Math.random) {
    this.policy = policy;
    this.random = random;
  }
  /** Consecutive failures since the last reset(). */
  get failures(): number {
    return this.count;
  }
  /** Counts one more failure and returns how long to wait before the next attempt. */
  next(): number {
    this.count++;
    return computeBackoffDelay(this.policy, this.count, this.random);
  }
  /** After a success: the next failure waits initialMs again. */
  reset(): void {
    this.count = 0;
  }
}

/** flowcontrol's hasExpired: the entry was last updated more than resetAfterMs before `atMs`. */
export function isBackoffExpired(entry: BackoffEntry, atMs: number, policy: BackoffPolicy): boolean {
  return atMs - entry.updatedAt > (policy.resetAfterMs ?? 2 * policy.maxMs);
}

/**
 * flowcontrol's Next(id, eventTime), pure: a missing entry, or one expired by `eventTimeMs`, starts at initialMs;
 * otherwise the duration grows by the factor up to maxMs. The entry's update time is `nowMs`.
 */
export function computeNextBackoff(
  entry: BackoffEntry | undefined,
  eventTimeMs: number,
  nowMs: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): BackoffEntry {
  const base = !entry || isBackoffExpired(entry, eventTimeMs, policy) ? policy.initialMs : entry.durationMs * (policy.factor ?? 2);
  return { durationMs: Math.min(withJitter(policy, base, random), policy.maxMs), updatedAt: nowMs };
}

/** flowcontrol's IsInBackOffSince(id, eventTime), pure: `nowMs` is less than the entry's duration after `eventTimeMs`. */
export function isInBackoffSince(entry: BackoffEntry | undefined, eventTimeMs: number, nowMs: number, policy: BackoffPolicy): boolean {
  if (!entry || isBackoffExpired(entry, eventTimeMs, policy)) return false;
  return nowMs - eventTimeMs < entry.durationMs;
}

/** Per-key back-off in memory on an injected clock (flowcontrol.Backoff). Stale keys are dropped by gc(), which next() runs. */
export class KeyedBackoff {
  private readonly entries = new Map<string, BackoffEntry>();
  private readonly policy: BackoffPolicy;
  private readonly clock: Clock;
  private readonly random: () => number;
  constructor(policy: BackoffPolicy, clock: Clock = systemClock, random: () => number = Math.random) {
    this.policy = policy;
    this.clock = clock;
    this.random = random;
  }
  /** Records a failure of `key` now: its window starts now and is longer than the last one (up to maxMs). */
  next(key: string): void {
    const now = this.clock.now();
    this.gc();
    this.entries.set(key, computeNextBackoff(this.entries.get(key), now, now, this.policy, this.random));
  }
  /** IsInBackOffSinceUpdate: now lies inside the window that started at the key's last failure. */
  isInBackOffSinceUpdate(key: string): boolean {
    const e = this.entries.get(key);
    return e !== undefined && isInBackoffSince(e, e.updatedAt, this.clock.now(), this.policy);
  }
  /** Time until the key's window ends (0 = not backing off). */
  remainingMs(key: string): number {
    const e = this.entries.get(key);
    return e ? Math.max(0, e.durationMs - (this.clock.now() - e.updatedAt)) : 0;
  }
  /** After a success: the key starts again at initialMs. */
  reset(key: string): void {
    this.entries.delete(key);
  }
  /** Drops entries not updated for longer than resetAfterMs (they would start again at initialMs anyway). */
  gc(): void {
    const now = this.clock.now();
    for (const [k, e] of this.entries) if (isBackoffExpired(e, now, this.policy)) this.entries.delete(k);
  }
  /** Drops every key starting with `prefix` (all of one pod's keys when it goes). */
  gcPrefix(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }
  /** Keys held (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }
}
