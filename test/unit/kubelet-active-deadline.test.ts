// Issue #13: spec.activeDeadlineSeconds as pkg/kubelet/active_deadline.go, re-read on every sync.
import { describe, expect, it } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1';
import { checkActiveDeadline, earliestStart } from '../../src/kubelet/pod/active-deadline.ts';

const pod = (ads?: number): Pod => ({ metadata: { name: 'p' }, spec: { containers: [], activeDeadlineSeconds: ads } }) as Pod;
const start = '2026-11-30T18:00:00Z';
const t0 = Date.parse(start);

describe('checkActiveDeadline', () => {
  it.each([
    ['no deadline', pod(), start, t0 + 1e9, { exceeded: false }],
    ['no start time yet', pod(5), undefined, t0 + 1e9, { exceeded: false }],
    ['before the deadline', pod(30), start, t0 + 10_000, { exceeded: false, remainingMs: 20_000 }],
    ['exactly at the deadline', pod(30), start, t0 + 30_000, { exceeded: true }],
    ['past the deadline', pod(30), start, t0 + 31_000, { exceeded: true }],
  ])('%s', (_n, p, st, now, want) => {
    expect(checkActiveDeadline(p, st, now)).toEqual(want);
  });

  it('lowering the deadline of a running pod makes it exceeded at the next sync', () => {
    const now = t0 + 60_000;
    expect(checkActiveDeadline(pod(3600), start, now).exceeded).toBe(false);
    expect(checkActiveDeadline(pod(5), start, now).exceeded).toBe(true);
  });
});

describe('earliestStart', () => {
  it('the API server’s start time wins over a fresher record (berth restarted)', () => {
    expect(earliestStart('2026-11-30T18:10:00Z', '2026-11-30T18:00:00Z')).toBe('2026-11-30T18:00:00Z');
    expect(earliestStart(undefined, '2026-11-30T18:00:00Z')).toBe('2026-11-30T18:00:00Z');
    expect(earliestStart('2026-11-30T18:00:00Z', undefined)).toBe('2026-11-30T18:00:00Z');
    expect(earliestStart('garbage', undefined)).toBeUndefined();
  });
});
