import { describe, it, expect, afterEach } from 'vitest';
import { Writable } from 'node:stream';
import type { Pod } from 'kubernetes-types/core/v1';
import { ApiError, KubeClient, resources, type ClientConfig, type ResourceRef, type WriteOptions } from '../../src/kube/index.ts';
import { FakeClock, createLogger, hasCode } from '../../src/lib/index.ts';
import {
  TokenManager,
  ServiceAccountTokenError,
  shouldRefreshToken,
  type TokenApi,
  type TokenRequest,
} from '../../src/kubelet/sources/token-manager.ts';
import { startFixture, sendJson, status } from './kube-fixture.ts';

const pod = (name = 'web', uid = 'uid-1', namespace = 'ns'): Pod => ({ metadata: { name, namespace, uid }, spec: { containers: [] } });
const opts = { serviceAccountName: 'default', expirationSeconds: 3600 };

/** A fake TokenRequest API: issues `tok-<n>` valid for the requested (or capped) seconds from the fake clock. */
class FakeTokenApi {
  calls: { ref: ResourceRef; body: TokenRequest; opts: WriteOptions | undefined }[] = [];
  fail: Error | undefined;
  maxSeconds = Infinity;
  private readonly clock: FakeClock;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }
  readonly api: TokenApi = {
    create: async <T,>(ref: ResourceRef, obj: T, o?: WriteOptions): Promise<T> => {
      const body = structuredClone(obj) as unknown as TokenRequest;
      this.calls.push({ ref, body, opts: o });
      await Promise.resolve();
      if (this.fail) throw this.fail;
      const secs = Math.min(body.spec.expirationSeconds, this.maxSeconds);
      const out: TokenRequest = {
        ...body,
        spec: { ...body.spec, expirationSeconds: secs },
        status: { token: `tok-${this.calls.length}`, expirationTimestamp: new Date(this.clock.now() + secs * 1000).toISOString() },
      };
      return out as unknown as T;
    },
  };
}

function setup(): { clock: FakeClock; fake: FakeTokenApi; tm: TokenManager; logs: string[] } {
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const fake = new FakeTokenApi(clock);
  const logs: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ level: 'trace', destination: dest });
  const tm = new TokenManager({ api: fake.api, clock, log, random: () => 0 });
  return { clock, fake, tm, logs };
}

const apiError = (code: 'Forbidden' | 'ApiUnavailable'): Error => new ApiError(code, `simulated ${code}`, { statusCode: code === 'Forbidden' ? 403 : 503 });

describe('TokenManager requests', () => {
  it('posts a TokenRequest bound to the pod to the service account token subresource', async () => {
    const { fake, tm } = setup();
    expect(await tm.getToken(pod(), { ...opts, audience: 'vault' })).toBe('tok-1');
    expect(fake.calls).toHaveLength(1);
    const c = fake.calls[0]!;
    expect(c.ref).toBe(resources.serviceaccounts);
    expect(c.opts).toMatchObject({ namespace: 'ns', subresource: 'token' });
    expect(c.body).toMatchObject({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: 'default' },
      spec: { audiences: ['vault'], expirationSeconds: 3600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'web', uid: 'uid-1' } },
    });
  });

  it('sends no audiences when the source has none (the API server then uses its own)', async () => {
    const { fake, tm } = setup();
    await tm.getToken(pod(), { ...opts, audience: '' });
    expect(fake.calls[0]!.body.spec.audiences).toEqual([]);
  });

  it('goes through the real client to POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token', async () => {
    const exp = new Date(Date.now() + 3600_000).toISOString();
    const fx = await startFixture((req, res) => {
      const body = JSON.parse(req.body) as TokenRequest;
      sendJson(res, 201, { ...body, status: { token: 'real-token', expirationTimestamp: exp } });
    });
    const config: ClientConfig = { server: fx.url, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth: { type: 'token', token: 'node' } };
    const api = new KubeClient({ config, requestTimeoutMs: 2000 });
    try {
      const tm = new TokenManager({ api });
      expect(await tm.getToken(pod('p', 'u-9', 'team-a'), { serviceAccountName: 'builder', expirationSeconds: 600 })).toBe('real-token');
      expect(fx.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /api/v1/namespaces/team-a/serviceaccounts/builder/token']);
      expect(JSON.parse(fx.requests[0]!.body)).toMatchObject({ spec: { expirationSeconds: 600, boundObjectRef: { name: 'p', uid: 'u-9' } } });
    } finally {
      await api.close();
      await fx.close();
    }
  });

  it('maps the server refusal onto a typed error with its code (node not allowed: Forbidden)', async () => {
    const fx = await startFixture((_req, res) =>
      sendJson(res, 403, status(403, 'Forbidden', 'serviceaccounts "x" is forbidden: node requested token bound to a pod scheduled on a different node')),
    );
    const config: ClientConfig = { server: fx.url, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth: { type: 'token', token: 'node' } };
    const api = new KubeClient({ config, requestTimeoutMs: 2000 });
    try {
      const err = await new TokenManager({ api }).getToken(pod(), opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceAccountTokenError);
      expect(hasCode(err, 'Forbidden')).toBe(true);
      expect((err as ServiceAccountTokenError).failure).toBe('FetchFailed');
      expect((err as Error).message).toBe(
        'serviceaccounts "x" is forbidden: node requested token bound to a pod scheduled on a different node',
      );
    } finally {
      await api.close();
      await fx.close();
    }
  });

  it('refuses a pod without uid (a token must be bound) without calling the API', async () => {
    const { fake, tm } = setup();
    const err = await tm.getToken({ metadata: { name: 'p', namespace: 'ns' } }, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceAccountTokenError);
    expect((err as ServiceAccountTokenError).failure).toBe('InvalidPod');
    expect(fake.calls).toHaveLength(0);
  });

  it('treats an answer without token or expiration as invalid', async () => {
    const { tm } = setup();
    const bad = new TokenManager({ api: { create: async <T,>(_r: ResourceRef, obj: T) => obj }, clock: new FakeClock() });
    const err = await bad.getToken(pod(), opts).catch((e: unknown) => e);
    expect((err as ServiceAccountTokenError).failure).toBe('InvalidResponse');
    expect(tm.size).toBe(0);
  });
});

describe('TokenManager cache and refresh schedule (fake clock)', () => {
  it('serves the cached token until 80 % of its lifetime, then requests a new one', async () => {
    const { clock, fake, tm } = setup();
    expect(await tm.getToken(pod(), opts)).toBe('tok-1');
    clock.advance(2880_000); // exactly 80 % of 3600 s: not yet "after"
    expect(await tm.getToken(pod(), opts)).toBe('tok-1');
    clock.advance(1);
    expect(await tm.getToken(pod(), opts)).toBe('tok-2');
    expect(fake.calls).toHaveLength(2);
  });

  it('counts the 20 % margin in whole seconds, as upstream ((601*20)/100 = 120 s)', () => {
    const t = { expiresAt: 601_000, ttlSeconds: 601 };
    expect(shouldRefreshToken(t, 481_000, 0)).toBe(false);
    expect(shouldRefreshToken(t, 481_001, 0)).toBe(true);
  });

  it('refreshes up to 10 s early with jitter, as upstream', () => {
    const t = { expiresAt: 3600_000, ttlSeconds: 3600 };
    expect(shouldRefreshToken(t, 2880_000 - 5_000, 0)).toBe(false);
    expect(shouldRefreshToken(t, 2880_000 - 5_000, 9_999)).toBe(true);
  });

  it('refreshes a token older than 24 h even when it would live longer', async () => {
    const { clock, fake, tm } = setup();
    const week = { ...opts, expirationSeconds: 7 * 86400 };
    expect(await tm.getToken(pod(), week)).toBe('tok-1');
    clock.advance(86400_000);
    expect(await tm.getToken(pod(), week)).toBe('tok-1');
    clock.advance(1);
    expect(await tm.getToken(pod(), week)).toBe('tok-2');
    expect(fake.calls).toHaveLength(2);
  });

  it('uses the expiration the server granted (capped by its maximum), not the one asked for', async () => {
    const { clock, fake, tm } = setup();
    fake.maxSeconds = 1000;
    await tm.getToken(pod(), opts); // asked 3600, granted 1000
    clock.advance(800_000);
    expect(await tm.getToken(pod(), opts)).toBe('tok-1');
    clock.advance(1);
    expect(await tm.getToken(pod(), opts)).toBe('tok-2');
  });

  it('keys the cache by namespace, service account, audience, expiration and bound pod uid', async () => {
    const { fake, tm } = setup();
    await tm.getToken(pod(), opts);
    await tm.getToken(pod(), opts);
    expect(fake.calls).toHaveLength(1);
    const variants: [Pod, typeof opts & { audience?: string }][] = [
      [pod('web', 'uid-1', 'other-ns'), opts],
      [pod(), { ...opts, serviceAccountName: 'builder' }],
      [pod(), { ...opts, audience: 'vault' }],
      [pod(), { ...opts, expirationSeconds: 7200 }],
      [pod('web', 'uid-2'), opts], // same name, recreated pod
    ];
    for (const [p, o] of variants) await tm.getToken(p, o);
    expect(fake.calls).toHaveLength(1 + variants.length);
    expect(tm.size).toBe(1 + variants.length);
  });

  it('sends one request for concurrent callers of the same key', async () => {
    const { fake, tm } = setup();
    const got = await Promise.all([tm.getToken(pod(), opts), tm.getToken(pod(), opts), tm.getToken(pod(), opts)]);
    expect(got).toEqual(['tok-1', 'tok-1', 'tok-1']);
    expect(fake.calls).toHaveLength(1);
  });

  it('keeps serving a still-valid token when its refresh fails, and logs the failure without the token', async () => {
    const { clock, fake, tm, logs } = setup();
    await tm.getToken(pod(), opts);
    clock.advance(3000_000); // past 80 %
    fake.fail = apiError('ApiUnavailable');
    expect(await tm.getToken(pod(), opts)).toBe('tok-1');
    expect(fake.calls).toHaveLength(2);
    expect(logs.join('')).toMatch(/couldn't update token/);
    fake.fail = undefined;
    expect(await tm.getToken(pod(), opts)).toBe('tok-3');
    expect(logs.join('')).not.toMatch(/tok-\d/);
  });

  it('never serves an expired token: refresh failure after expiry is an ExpiredRefreshFailed error', async () => {
    const { clock, fake, tm, logs } = setup();
    await tm.getToken(pod(), opts);
    clock.advance(3600_001);
    fake.fail = apiError('Forbidden');
    const err = await tm.getToken(pod(), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceAccountTokenError);
    expect((err as ServiceAccountTokenError).failure).toBe('ExpiredRefreshFailed');
    expect(hasCode(err, 'Forbidden')).toBe(true);
    expect((err as Error).message).toMatch(/^token .* expired and refresh failed: simulated Forbidden$/);
    expect((err as Error).message).not.toMatch(/tok-1/);
    expect(tm.size).toBe(0);
    expect(logs.join('')).not.toMatch(/tok-\d/);
  });

  it('fails with FetchFailed when nothing is cached and the request fails', async () => {
    const { fake, tm } = setup();
    fake.fail = apiError('ApiUnavailable');
    const err = await tm.getToken(pod(), opts).catch((e: unknown) => e);
    expect((err as ServiceAccountTokenError).failure).toBe('FetchFailed');
    expect(hasCode(err, 'ApiUnavailable')).toBe(true);
    expect(tm.size).toBe(0);
  });

  it('drops the tokens of a deleted pod (and only those)', async () => {
    const { fake, tm } = setup();
    await tm.getToken(pod('a', 'uid-a'), opts);
    await tm.getToken(pod('a', 'uid-a'), { ...opts, audience: 'vault' });
    await tm.getToken(pod('b', 'uid-b'), opts);
    tm.deleteServiceAccountToken('uid-a');
    expect(tm.size).toBe(1);
    await tm.getToken(pod('b', 'uid-b'), opts);
    expect(fake.calls).toHaveLength(3);
    await tm.getToken(pod('a', 'uid-a'), opts);
    expect(fake.calls).toHaveLength(4);
  });

  it('garbage-collects expired tokens of pods that stopped asking', async () => {
    const { clock, tm } = setup();
    await tm.getToken(pod('a', 'uid-a'), { ...opts, expirationSeconds: 600 });
    clock.advance(601_000);
    await tm.getToken(pod('b', 'uid-b'), opts);
    expect(tm.size).toBe(1);
  });
});
