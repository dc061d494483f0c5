// src/lib/backoff.ts, the one exponential back-off: each user's policy gives the delays it had before the
// back-offs were unified, per-key entries follow client-go flowcontrol.Backoff on a fake clock.
import { describe, expect, it } from 'vitest';
import {
  Backoff,
  FakeClock,
  KeyedBackoff,
  computeBackoffDelay,
  computeNextBackoff,
  isBackoffExpired,
  isInBackoffSince,
  type BackoffPolicy,
} from '../../src/lib/index.ts';

const delays = (policy: BackoffPolicy, n: number, random?: () => number): number[] => {
  const b = new Backoff(policy, random);
  return Array.from({ length: n }, () => b.next());
};

describe('consecutive failures of a retry loop', () => {
  it.each<[string, BackoffPolicy, number[]]>([
    ['sync runner: 1 s doubling to 30 s', { initialMs: 1000, maxMs: 30_000 }, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]],
    ['informer: 800 ms doubling to 30 s', { initialMs: 800, maxMs: 30_000 }, [800, 1600, 3200, 6400, 12_800, 25_600, 30_000]],
    ['status manager: 500 ms doubling to 30 s', { initialMs: 500, maxMs: 30_000 }, [500, 1000, 2000, 4000, 8000, 16_000, 30_000]],
    ['node registration and Lease: 200 ms doubling to 7 s', { initialMs: 200, maxMs: 7000 }, [200, 400, 800, 1600, 3200, 6400, 7000]],
    ['housekeeping events stream: 1 s doubling to 30 s', { initialMs: 1000, maxMs: 30_000 }, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]],
    ['a factor other than 2', { initialMs: 100, maxMs: 1000, factor: 3 }, [100, 300, 900, 1000, 1000, 1000, 1000]],
  ])('%s', (_name, policy, want) => {
    expect(delays(policy, want.length)).toEqual(want);
  });

  it('a success resets: the next failure waits the initial delay again', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000 });
    b.next();
    b.next();
    expect(b.failures).toBe(2);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(100);
  });

  it.each([
    [0, 800],
    [0.5, 1000],
    [1, 1200],
  ])('jitter 0.2 with random() = %d spreads 1 s to %d ms', (r, want) => {
    expect(delays({ initialMs: 1000, maxMs: 30_000, jitter: 0.2 }, 1, () => r)).toEqual([want]);
  });

  it('a huge failure count stays at the maximum (no Infinity, no NaN)', () => {
    expect(computeBackoffDelay({ initialMs: 800, maxMs: 30_000 }, 5000)).toBe(30_000);
  });
});

describe('per-key entries (flowcontrol.Backoff)', () => {
  const policy: BackoffPolicy = { initialMs: 10_000, maxMs: 300_000 };

  it('grows 10 s, 20 s, 40 s … capped at 5 min, the update time being now', () => {
    let e = computeNextBackoff(undefined, 0, 0, policy);
    const got = [e.durationMs];
    for (let t = 1; t < 7; t++) {
      e = computeNextBackoff(e, t * 1000, t * 1000, policy);
      got.push(e.durationMs);
    }
    expect(got).toEqual([10, 20, 40, 80, 160, 300, 300].map((s) => s * 1000));
    expect(e.updatedAt).toBe(6000);
  });

  it.each([
    ['2·max after the last update is not yet expired', 600_000, false],
    ['just past 2·max is expired', 600_001, true],
  ])('%s', (_name, at, expired) => {
    expect(isBackoffExpired({ durationMs: 300_000, updatedAt: 0 }, at, policy)).toBe(expired);
  });

  it('an expired entry starts again at the initial duration; resetAfterMs overrides 2·max', () => {
    expect(computeNextBackoff({ durationMs: 300_000, updatedAt: 0 }, 600_001, 600_001, policy).durationMs).toBe(10_000);
    expect(computeNextBackoff({ durationMs: 40_000, updatedAt: 0 }, 60_001, 60_001, { ...policy, resetAfterMs: 60_000 }).durationMs).toBe(10_000);
  });

  it.each([
    ['inside the window', 0, 9_999, true],
    ['at its end', 0, 10_000, false],
    ['no entry', undefined, 0, false],
  ])('IsInBackOffSince: %s', (_name, eventTime, now, want) => {
    const entry = eventTime === undefined ? undefined : { durationMs: 10_000, updatedAt: 0 };
    expect(isInBackoffSince(entry, eventTime ?? 0, now, policy)).toBe(want);
  });

  it('KeyedBackoff on a fake clock: windows per key, reset, remaining time, GC of stale keys', () => {
    const clock = new FakeClock(0);
    const b = new KeyedBackoff(policy, clock);
    b.next('pod_a');
    expect(b.isInBackOffSinceUpdate('pod_a')).toBe(true);
    expect(b.isInBackOffSinceUpdate('pod_b')).toBe(false);
    clock.advance(4000);
    expect(b.remainingMs('pod_a')).toBe(6000);
    clock.advance(6000);
    expect(b.isInBackOffSinceUpdate('pod_a')).toBe(false);
    b.next('pod_a');
    expect(b.remainingMs('pod_a')).toBe(20_000);
    b.reset('pod_a');
    expect(b.remainingMs('pod_a')).toBe(0);
    b.next('pod_a');
    b.next('other_x');
    clock.advance(600_001);
    b.next('pod_b'); // next() collects keys older than 2·max
    expect(b.size).toBe(1);
    b.gcPrefix('pod_');
    expect(b.size).toBe(0);
  });
});
