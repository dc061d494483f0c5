// Crash-loop back-off against k8s.io/client-go/util/flowcontrol/backoff.go as kuberuntime's doBackOff uses it
// (key per container, eventTime = FinishedAt of the latest exited instance, lastUpdate = the clock when Next
// ran, i.e. the restart) plus the kubelet's periodic backOff.GC() (entries older than 2·max are dropped).
// The entry lives in the labels of the instance that was started, so the fake clock below plays the kubelet:
// every instance carries the decision (`next`) returned when it was started.
import { describe, expect, it } from 'vitest';
import { computeBackoff, DEFAULT_CRASH_BACKOFF, formatGoDuration, backoffEntryOf } from '../../src/kubelet/pod/crash-loop-backoff.ts';
import type { ContainerStatus } from '../../src/cri/index.ts';
import { exited, min, sec, T0 } from './helpers/kubelet-fixtures.ts';

interface Instance {
  startedAt: number;
  backoff?: { durationMs: number; updatedAt: number };
}

/**
 * Fake clock driving one container through crashes. Each instance runs `runMs[i]` and exits non-zero; the
 * kubelet then polls computeBackoff every second until it may start the next instance. Returns how long each
 * restart waited after the crash, and the back-off recorded on each new instance.
 */
function crashLoop(runMs: number[]): { waits: number[]; recorded: (number | undefined)[] } {
  let now = T0;
  let inst: Instance = { startedAt: now };
  const waits: number[] = [];
  const recorded: (number | undefined)[] = [];
  runMs.forEach((run, i) => {
    now = inst.startedAt + run;
    const crashedAt = now;
    const dead: ContainerStatus = exited('app', {
      exitCode: 1,
      restartCount: i,
      createdAt: inst.startedAt - 10,
      startedAt: inst.startedAt,
      finishedAt: crashedAt,
      backoff: inst.backoff,
    });
    for (;;) {
      const d = computeBackoff(dead, now, DEFAULT_CRASH_BACKOFF);
      if (!d.inBackoff) {
        waits.push(now - crashedAt);
        recorded.push(d.next?.durationMs);
        inst = { startedAt: now, backoff: d.next };
        break;
      }
      now += 1000;
    }
  });
  return { waits, recorded };
}

describe('computeBackoff with a fake clock', () => {
  it('first restart is immediate, then 10s, 20s, 40s … capped at 5 min', () => {
    const { waits, recorded } = crashLoop(Array(9).fill(sec(1)));
    expect(waits).toEqual([0, 10, 20, 40, 80, 160, 300, 300, 300].map(sec));
    expect(recorded).toEqual([10, 20, 40, 80, 160, 300, 300, 300, 300].map(sec));
  });

  it('resets to the initial back-off after 10 min (2×max) of clean running', () => {
    // Get to the cap, then run 10 min + 1 s before crashing again.
    const runs = [...Array(7).fill(sec(1)), min(10) + sec(1), sec(1)];
    const { waits } = crashLoop(runs);
    expect(waits.slice(0, 7)).toEqual([0, 10, 20, 40, 80, 160, 300].map(sec));
    expect(waits[7]).toBe(0); // entry expired: restart at once
    expect(waits[8]).toBe(sec(10)); // and the next crash starts again from 10s
  });

  it('no instance exited yet → start now, no entry', () => {
    expect(computeBackoff(undefined, T0, DEFAULT_CRASH_BACKOFF)).toEqual({ inBackoff: false });
  });

  it('reports the remaining time and the current duration while backing off', () => {
    const dead = exited('app', { exitCode: 1, finishedAt: T0, backoff: { durationMs: 40_000, updatedAt: T0 - sec(5) } });
    expect(computeBackoff(dead, T0 + sec(15), DEFAULT_CRASH_BACKOFF)).toEqual({ inBackoff: true, remainingMs: 25_000, durationMs: 40_000 });
  });

  it('a restart records the time of the restart as the entry update time (flowcontrol: lastUpdate = Clock.Now())', () => {
    const dead = exited('app', { exitCode: 1, finishedAt: T0, backoff: { durationMs: 10_000, updatedAt: T0 - sec(5) } });
    const d = computeBackoff(dead, T0 + sec(12), DEFAULT_CRASH_BACKOFF);
    expect(d).toEqual({ inBackoff: false, next: { durationMs: 20_000, updatedAt: T0 + sec(12) } });
  });

  it('keeps backing off when the container ran 8 min since its last restart (< 2×max since lastUpdate)', () => {
    // At the cap: the last crash waited 5 min, the new instance ran 8 min. Upstream: 8 min since lastUpdate
    // (the restart) ≤ 10 min → still in back-off (until the entry is garbage-collected 10 min after the restart).
    const runs = [...Array(7).fill(sec(1)), min(8), sec(1)];
    const { waits, recorded } = crashLoop(runs);
    // GC drops the entry once more than 10 min passed since the restart: 2 min after the crash (1 s polling).
    expect(waits[7]).toBeGreaterThanOrEqual(min(2));
    expect(waits[7]).toBeLessThanOrEqual(min(2) + sec(1));
    expect(recorded[7]).toBe(sec(10)); // a dropped entry starts again from the initial back-off
  });

  it('ignores labels that do not hold a back-off entry', () => {
    expect(backoffEntryOf(exited('app'))).toBeUndefined();
    expect(backoffEntryOf(exited('app', { backoff: { durationMs: 0, updatedAt: T0 } }))).toBeUndefined();
    expect(backoffEntryOf(exited('app', { backoff: { durationMs: 10_000, updatedAt: T0 } }))).toEqual({ durationMs: 10_000, updatedAt: T0 });
  });
});

describe('formatGoDuration (time.Duration.String)', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [1500, '1.5s'],
    [10_000, '10s'],
    [59_000, '59s'],
    [60_000, '1m0s'],
    [80_000, '1m20s'],
    [160_000, '2m40s'],
    [300_000, '5m0s'],
    [3_600_000, '1h0m0s'],
    [90_061_000, '25h1m1s'],
  ])('%i ms → %s', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });
});
