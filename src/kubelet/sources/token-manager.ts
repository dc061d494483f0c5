// Service-account tokens for projected volumes, from the TokenRequest API
// (POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token, the pod as bound object), cached and refreshed as
// upstream's pkg/kubelet/token/token_manager.go does: a cached token is served until 80 % of its lifetime (minus up
// to 10 s of jitter) or 24 h after it was issued; then a new one is requested. When that request fails the old
// token is still served while it is valid; an expired token is never served. A token is never logged: only the
// cache key (service account, namespace, audiences, expiration, bound pod), which upstream also deems safe to log.
import type { Pod } from 'kubernetes-types/core/v1';
import type { KubeApi } from '../../kube/index.ts';
import { resources } from '../../kube/index.ts';
import type { TokenSource } from '../volumes/index.ts';
import { BerthError, errorMessage, silentLogger, systemClock, type Clock, type ErrorCode, type Logger } from '../../lib/index.ts';

/** What a projected `serviceAccountToken` source asks for. */
export interface TokenOptions {
  /** The pod's `spec.serviceAccountName`. */
  serviceAccountName: string;
  /** The source's `audience`; absent or '' = the API server's own audiences (`--api-audiences`). */
  audience?: string | undefined;
  /** The source's `expirationSeconds` (the API requires at least 600). */
  expirationSeconds: number;
}

/** The TokenRequest (authentication.k8s.io/v1) fields berth sends and reads. */
export interface TokenRequest {
  apiVersion: 'authentication.k8s.io/v1';
  kind: 'TokenRequest';
  metadata?: { name?: string; namespace?: string };
  spec: {
    audiences: string[];
    expirationSeconds: number;
    boundObjectRef: { kind: 'Pod'; apiVersion: 'v1'; name: string; uid: string };
  };
  status?: { token?: string; expirationTimestamp?: string };
}

/** The API slice the manager uses: POST to the `token` subresource of a ServiceAccount. */
export type TokenApi = Pick<KubeApi, 'create'>;

export type TokenFailure =
  /** No token was cached and the request failed (upstream: "failed to fetch token: <this message>"). */
  | 'FetchFailed'
  /** The cached token has expired and its refresh failed (upstream: "token … expired and refresh failed: …"). */
  | 'ExpiredRefreshFailed'
  /** The API server answered without a token or a usable expiration. */
  | 'InvalidResponse'
  /** The pod has no name, namespace or uid to bind the token to. */
  | 'InvalidPod';

/**
 * A token could not be had. `code` is the underlying API error's code (Forbidden, NotFound, ApiUnavailable, …)
 * so callers can tell "not allowed" from "try later"; `failure` says which step failed. The message never holds a token.
 */
export class ServiceAccountTokenError extends BerthError {
  readonly failure: TokenFailure;
  constructor(failure: TokenFailure, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.failure = failure;
    this.name = 'ServiceAccountTokenError';
  }
}

interface Cached {
  token: string;
  /** status.expirationTimestamp (ms). */
  expiresAt: number;
  /** spec.expirationSeconds of the answer (the server may have lowered it to its maximum). */
  ttlSeconds: number;
  podUid: string;
}

export interface TokenManagerOptions {
  api: TokenApi;
  clock?: Clock | undefined;
  log?: Logger | undefined;
  /** Jitter source in [0, 1) (upstream: up to 10 s earlier refresh). Tests pass `() => 0`. */
  random?: (() => number) | undefined;
}

/** Upstream's maxTTL: a token older than this is refreshed whatever its expiration. */
export const MAX_TOKEN_TTL_MS = 24 * 3600 * 1000;
const MAX_JITTER_MS = 10_000;
const GC_PERIOD_MS = 60_000;

/** Cache key, safe to log (upstream keyFunc: name, namespace, audiences, expiration, bound object). */
export function tokenCacheKey(namespace: string, tr: TokenRequest): string {
  const ref = tr.spec.boundObjectRef;
  return JSON.stringify([tr.metadata?.name ?? '', namespace, tr.spec.audiences, tr.spec.expirationSeconds, ref.kind, ref.name, ref.uid]);
}

/** The TokenRequest upstream's projected volume sends for `pod` (pkg/volume/projected/projected.go). */
export function buildTokenRequest(pod: Pod, opts: TokenOptions): TokenRequest {
  const m = pod.metadata;
  if (!m?.name || !m.namespace || !m.uid) {
    throw new ServiceAccountTokenError('InvalidPod', 'InvalidPod', 'a token can only be bound to a pod with a name, namespace and uid');
  }
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    metadata: { name: opts.serviceAccountName, namespace: m.namespace },
    spec: {
      audiences: opts.audience ? [opts.audience] : [],
      expirationSeconds: opts.expirationSeconds,
      boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: m.name, uid: m.uid },
    },
  };
}

/**
 * Whether a cached token must be refreshed at `now` (upstream requiresRefresh): older than 24 h minus jitter, or
 * within 20 % of its TTL plus jitter of its expiration. Pure.
 */
export function shouldRefreshToken(t: Pick<Cached, 'expiresAt' | 'ttlSeconds'>, now: number, jitterMs: number): boolean {
  const issuedAt = t.expiresAt - t.ttlSeconds * 1000;
  if (now > issuedAt + MAX_TOKEN_TTL_MS - jitterMs) return true;
  // Integer division as upstream: (expirationSeconds*20)/100 whole seconds.
  const marginMs = Math.floor((t.ttlSeconds * 20) / 100) * 1000;
  return now > t.expiresAt - marginMs - jitterMs;
}

/**
 * The kubelet's token manager. Implements the volume code's `TokenSource` (getToken) and is told when a pod is gone
 * (deleteServiceAccountToken). One instance per node; safe for concurrent calls (one request per key in flight).
 */
export class TokenManager implements TokenSource {
  private readonly api: TokenApi;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<Cached>>();
  private lastGc = 0;

  constructor(o: TokenManagerOptions) {
    this.api = o.api;
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? silentLogger;
    this.random = o.random ?? Math.random;
  }

  /**
   * A token for `pod`'s service account, bound to the pod, from the cache or a new TokenRequest (upstream
   * GetServiceAccountToken). Throws ServiceAccountTokenError when no valid token can be had. Never logs the token.
   */
  async getToken(pod: Pod, opts: TokenOptions): Promise<string> {
    const tr = buildTokenRequest(pod, opts);
    const ns = pod.metadata!.namespace!;
    const key = tokenCacheKey(ns, tr);
    const cached = this.cache.get(key);
    // After the lookup: an expired token of this key still tells a failed refresh apart from a first fetch.
    this.collectGarbage();
    const now = this.clock.now();
    if (cached && !shouldRefreshToken(cached, now, this.random() * MAX_JITTER_MS)) return cached.token;
    try {
      return (await this.request(key, ns, tr)).token;
    } catch (err: unknown) {
      const code: ErrorCode = err instanceof BerthError ? err.code : 'ApiUnavailable';
      const failure = err instanceof ServiceAccountTokenError ? err.failure : undefined;
      if (!cached) {
        // The API's own message: the volume code prefixes it with upstream's "failed to fetch token: ".
        throw new ServiceAccountTokenError(failure ?? 'FetchFailed', code, errorMessage(err), { cause: err });
      }
      if (this.clock.now() > cached.expiresAt) {
        this.cache.delete(key);
        throw new ServiceAccountTokenError('ExpiredRefreshFailed', code, `token ${key} expired and refresh failed: ${errorMessage(err)}`, { cause: err });
      }
      this.log.error({ err, cacheKey: key }, "couldn't update token");
      return cached.token;
    }
  }

  /** Drops every cached token bound to the pod (its volumes were torn down). Idempotent. */
  deleteServiceAccountToken(podUid: string): void {
    for (const [k, t] of this.cache) if (t.podUid === podUid) this.cache.delete(k);
  }

  /** Number of cached tokens (for tests and metrics). */
  get size(): number {
    return this.cache.size;
  }

  private request(key: string, namespace: string, tr: TokenRequest): Promise<Cached> {
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.create(namespace, tr).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
      p.then((c) => this.cache.set(key, c)).catch(() => undefined);
    }
    return p;
  }

  private async create(namespace: string, tr: TokenRequest): Promise<Cached> {
    const out = await this.api.create<TokenRequest>(resources.serviceaccounts, tr, { namespace, subresource: 'token' });
    const token = out?.status?.token;
    const expiresAt = Date.parse(out?.status?.expirationTimestamp ?? '');
    // The server may lower expirationSeconds to its --service-account-max-token-expiration; the answer's spec is the truth.
    const ttlSeconds = out?.spec?.expirationSeconds ?? tr.spec.expirationSeconds;
    if (!token || !Number.isFinite(expiresAt) || !(ttlSeconds > 0)) {
      throw new ServiceAccountTokenError('InvalidResponse', 'ApiUnavailable', 'the TokenRequest answer has no token or expiration');
    }
    return { token, expiresAt, ttlSeconds, podUid: tr.spec.boundObjectRef.uid };
  }

  /** Upstream's cleanup (every minute): expired tokens leave the cache. */
  private collectGarbage(): void {
    const now = this.clock.now();
    if (now - this.lastGc < GC_PERIOD_MS) return;
    this.lastGc = now;
    for (const [k, t] of this.cache) if (now > t.expiresAt) this.cache.delete(k);
  }
}
