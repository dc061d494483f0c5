// Authentication of kubelet API requests, as the kubelet builds it (pkg/kubelet/server/auth.go with
// k8s.io/apiserver's union authenticator): an x509 client certificate verified against --client-ca-file
// (user = CN, groups = O), a bearer token checked with a TokenReview (authentication.k8s.io/v1) and cached (valid
// answers for cacheTTL, 2 min; invalid ones for 30 s), and, only with --anonymous-auth, system:anonymous for a request
// that no other authenticator accepted.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { KubeApi } from '../../kube/index.ts';

export interface UserInfo {
  name: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface Authenticator {
  /**
   * The request's user, or undefined when no credential was accepted (the server answers 401). Rejects when a
   * credential could not be checked (TokenReview unreachable): the server also answers 401 and logs the error.
   */
  authenticate(req: http.IncomingMessage): Promise<UserInfo | undefined>;
}

export const ANONYMOUS: UserInfo = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

/** Pure: the user of a verified client certificate's subject (x509 request authenticator: CN and O). */
export function userFromSubject(subject: { CN?: string | string[]; O?: string | string[] } | undefined): UserInfo | undefined {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const cn = first(subject?.CN);
  if (!cn) return undefined;
  const o = subject?.O;
  return { name: cn, groups: o === undefined ? [] : Array.isArray(o) ? o : [o] };
}

/** Pure: the token of `Authorization: Bearer …` (case-insensitive scheme), undefined when absent or empty. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export type TokenReviewApi = Pick<KubeApi, 'request'>;

interface CacheEntry<T> {
  value: T;
  expiresAt: number;
}

/** A bounded TTL cache (oldest entries dropped first), shared by the token and SubjectAccessReview caches. */
export class TtlCache<T> {
  private readonly map = new Map<string, CacheEntry<T>>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  constructor(maxEntries = 4096, now: () => number = Date.now) {
    this.maxEntries = maxEntries;
    this.now = now;
  }

  get(key: string): T | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, { value, expiresAt: this.now() + ttlMs });
  }
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

/** Bearer tokens via TokenReview (k8s.io/apiserver webhook token authenticator + its cache). */
export class WebhookTokenAuthenticator {
  private readonly cache: TtlCache<UserInfo | null>;
  private readonly o: { api: TokenReviewApi; cacheTtlMs: number; invalidTtlMs?: number; now?: () => number };
  constructor(o: { api: TokenReviewApi; cacheTtlMs: number; invalidTtlMs?: number; now?: () => number }) {
    this.o = o;
    this.cache = new TtlCache<UserInfo | null>(4096, o.now);
  }

  /** The token's user, undefined when the API server says it is not valid; rejects when the review failed. */
  async authenticateToken(token: string): Promise<UserInfo | undefined> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const review = await this.o.api.request<{ status?: TokenReviewStatus }>({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    });
    const s = review?.status;
    const user: UserInfo | null =
      s?.authenticated && s.user?.username
        ? { name: s.user.username, uid: s.user.uid, groups: s.user.groups ?? [], ...(s.user.extra ? { extra: s.user.extra } : {}) }
        : null;
    this.cache.set(key, user, user ? this.o.cacheTtlMs : (this.o.invalidTtlMs ?? 30_000));
    return user ?? undefined;
  }
}

export interface AuthenticatorOptions {
  /** Client certificates are checked by the TLS layer (requestCert with --client-ca-file); this only reads them. */
  x509: boolean;
  tokens?: WebhookTokenAuthenticator;
  anonymous: boolean;
}

/** The union authenticator the kubelet builds: x509, then bearer token, then anonymous. */
export function buildAuthenticator(o: AuthenticatorOptions): Authenticator {
  return {
    async authenticate(req) {
      if (o.x509) {
        const sock = req.socket as TLSSocket;
        if (sock.authorized && typeof sock.getPeerCertificate === 'function') {
          const user = userFromSubject(sock.getPeerCertificate()?.subject as { CN?: string; O?: string | string[] } | undefined);
          if (user) return user;
        }
      }
      const token = bearerToken(req.headers.authorization);
      let failure: unknown;
      if (token && o.tokens) {
        try {
          const user = await o.tokens.authenticateToken(token);
          if (user) return user;
        } catch (err) {
          failure = err;
        }
      }
      if (o.anonymous) return ANONYMOUS;
      if (failure) throw failure;
      return undefined;
    },
  };
}
