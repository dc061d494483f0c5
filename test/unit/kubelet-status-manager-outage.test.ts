// The status manager after an API server outage (issue 9, scenario 3): a status that failed during the outage reaches
// the server within one reconcile period of the server's return, as upstream's syncBatch retries every 10 s, however
// long the outage lasted (a per-pod back-off growing to 30 s held it back for up to 36 s).
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/kube/index.ts';
import { StatusManager } from '../../src/kubelet/index.ts';
import { createLogger } from '../../src/lib/index.ts';

const pod: Pod = { metadata: { name: 'p', namespace: 'ns', uid: 'u1' }, spec: { containers: [{ name: 'app' }] } };
const status: PodStatus = { phase: 'Failed', containerStatuses: [] };

describe('status manager after an outage', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // no jitter: the retry times are exact
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  for (const outageMs of [45_000, 62_000, 300_000]) {
    it(`sends a status that failed during a ${outageMs / 1000} s outage within one reconcile period (10 s) of the server's return`, async () => {
      let serverUp = false;
      const sentAt: number[] = [];
      const api = {
        patchStatus: async <T>(): Promise<T> => {
          if (!serverUp) throw new ApiError('ApiUnavailable', 'connect ECONNREFUSED 127.0.0.1:6443', { statusCode: 0 });
          sentAt.push(Date.now());
          return {} as T;
        },
        delete: async <T>(): Promise<T> => ({}) as T,
      };
      const sm = new StatusManager({
        api,
        log: createLogger({ level: 'silent' }),
        apiPodFor: () => ({ namespace: 'ns', name: 'p', uid: 'u1' }),
        serverStatus: () => undefined,
        reconcileEveryMs: 10_000,
      });
      sm.start();
      const t0 = Date.now();
      sm.set('u1', { pod, status, version: 1, source: 'api' });
      await vi.advanceTimersByTimeAsync(outageMs);
      serverUp = true;
      const backAt = Date.now();
      await vi.advanceTimersByTimeAsync(60_000);
      sm.stop();
      expect(sentAt.length, `sent ${outageMs} ms after ${t0}`).toBeGreaterThanOrEqual(1);
      expect(sentAt[0]! - backAt).toBeLessThanOrEqual(10_000);
    });
  }
});
