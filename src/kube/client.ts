// The API client: one undici Pool per API server (keep-alive, TLS material loaded once, so no handshake per request),
// JSON in and out, per-request timeouts, errors mapped at the boundary (errors.ts), streaming watches (watch.ts).
// Verbs and paths follow k8s.io/client-go/rest (request.go) and the API conventions.
import { Pool, type Dispatcher } from 'undici';
import type { ListMeta, ObjectMeta, Status } from 'kubernetes-types/meta/v1';
import pkg from '../../package.json' with { type: 'json' };
import { type Clock, systemClock, type Logger, silentLogger, errorMessage } from '../lib/index.ts';
import type { ClientConfig } from './kubeconfig.ts';
import { authHeaderSource } from './kubeconfig.ts';
import { errorFromResponse, unavailableError, ApiError, ApiNotFoundError } from './errors.ts';
import { type ResourceRef, resourcePath } from './resources.ts';
import { WatchEventDecoder, WatchDecodeError, type WatchEvent } from './watch.ts';

/** Anything with Kubernetes object metadata. */
export interface KubeObject {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata?: ObjectMeta | undefined;
}

/** A list response (`PodList`, `NodeList`, ...). */
export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: ListMeta;
  items: T[];
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export const PATCH_CONTENT_TYPES: Readonly<Record<PatchType, string>> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

type Query = Record<string, string | number | boolean | undefined>;

interface CommonOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the client's request timeout for this call (0 = none). */
  timeoutMs?: number | undefined;
}
export interface GetOptions extends CommonOptions {
  namespace?: string | undefined;
  subresource?: string | undefined;
}
export interface ListOptions extends CommonOptions {
  /** Absent on a namespaced resource: all namespaces. */
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  limit?: number | undefined;
  continue?: string | undefined;
  /** '' (absent) = consistent read from etcd; '0' = any (watch cache); other = not older than. */
  resourceVersion?: string | undefined;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan' | undefined;
}
export interface WriteOptions extends CommonOptions {
  /** Defaults to the object's metadata.namespace. */
  namespace?: string | undefined;
  subresource?: string | undefined;
  fieldManager?: string | undefined;
  dryRun?: boolean | undefined;
}
export interface PatchOptions extends WriteOptions {
  type: PatchType;
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean | undefined;
}
export interface DeleteOptions extends CommonOptions {
  namespace?: string | undefined;
  gracePeriodSeconds?: number | undefined;
  /** Delete only if the object still has this uid / resourceVersion (409 Conflict otherwise). */
  preconditions?: { uid?: string | undefined; resourceVersion?: string | undefined } | undefined;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground' | undefined;
  dryRun?: boolean | undefined;
}
export interface WatchOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Start after this version (from a list or a previous event). Absent: current state as ADDED events, then changes. */
  resourceVersion?: string | undefined;
  allowWatchBookmarks?: boolean | undefined;
  /** Server-side end of the watch. Default: random in [300, 600) s, as client-go's reflector. */
  timeoutSeconds?: number | undefined;
  /** Aborting ends the iteration quietly. */
  signal?: AbortSignal | undefined;
}

/** An open watch. Iterate once. Ends when the server closes it (timeout) or on close()/abort. */
export interface WatchStream<T> extends AsyncIterable<WatchEvent<T>> {
  /** Idempotent. Ends the iteration (quietly) and releases the connection. */
  close(): void;
}

export interface RequestOptions extends CommonOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API path (`/api/v1/nodes`), without the server's base path. */
  path: string;
  query?: Query | undefined;
  /** Serialised as JSON unless a string. */
  body?: unknown;
  contentType?: string | undefined;
}

/**
 * What consumers need of an API client. Consumers declare the slice they use:
 * `type NodeApi = Pick<KubeApi, 'get' | 'create' | 'patch'>`. Every method throws mapped errors: NotFound (404),
 * AlreadyExists / Conflict (409), Gone (410), Forbidden (403, server message names the permission), Unauthorized
 * (401), Invalid (400/422...), ApiUnavailable (5xx, 429, connection failure, timeout). None retries by itself.
 */
export interface KubeApi {
  /** GET one object (or its subresource). */
  get<T = unknown>(ref: ResourceRef, name: string, opts?: GetOptions): Promise<T>;
  /** GET a collection, one page when `limit` is set (follow `metadata.continue`). */
  list<T = unknown>(ref: ResourceRef, opts?: ListOptions): Promise<ObjectList<T>>;
  /** POST. Namespace from opts or the object. */
  create<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT (optimistic concurrency on metadata.resourceVersion: Conflict when stale). */
  update<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: WriteOptions): Promise<T>;
  /** PATCH with the given patch type ('apply' needs fieldManager). */
  patch<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: PatchOptions): Promise<T>;
  /** DELETE. Resolves with the server's answer (the object while graceful deletion runs, or a Status). */
  delete<T = unknown>(ref: ResourceRef, name: string, opts?: DeleteOptions): Promise<T | Status>;
  /** Opens a watch; rejects with a mapped error when the server refuses it (e.g. Gone for an expired version). */
  watch<T = unknown>(ref: ResourceRef, opts?: WatchOptions): Promise<WatchStream<T>>;
  /** PUT …/status. */
  updateStatus<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: Omit<WriteOptions, 'subresource'>): Promise<T>;
  /** PATCH …/status. */
  patchStatus<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: Omit<PatchOptions, 'subresource'>): Promise<T>;
  /** Any JSON request (discovery, /version, /healthz...). */
  request<T = unknown>(opts: RequestOptions): Promise<T>;
}

export interface KubeClientOptions {
  config: ClientConfig;
  /** Default `berth/<version> (linux/amd64) kubelet`. */
  userAgent?: string | undefined;
  /** Whole-request timeout for everything but watches. Default 30 s. */
  requestTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /** Idle pooled sockets are closed after this. Default 30 s. */
  keepAliveTimeoutMs?: number | undefined;
  /** Max sockets (each open watch holds one over HTTP/1.1). Default unlimited. */
  connections?: number | undefined;
  /** HTTP/2 via ALPN (all watches multiplexed on one connection). Default off. */
  allowH2?: boolean | undefined;
  tokenRefreshMs?: number | undefined;
  log?: Logger | undefined;
  clock?: Clock | undefined;
  random?: (() => number) | undefined;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

/** `berth/0.1.0 (linux/amd64) kubelet`, as client-go's DefaultKubernetesUserAgent. */
export function buildUserAgent(opts: { version?: string; component?: string } = {}): string {
  const arch = GO_ARCH[process.arch] ?? process.arch;
  return `berth/${opts.version ?? pkg.version} (${process.platform}/${arch}) ${opts.component ?? 'kubelet'}`;
}

function buildQuery(q: Query | undefined): string {
  if (!q) return '';
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export class KubeClient implements KubeApi {
  readonly config: ClientConfig;
  readonly userAgent: string;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly requestTimeoutMs: number;
  private readonly authHeader: () => Promise<string | undefined>;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly openWatches = new Set<AbortController>();
  private closed = false;

  constructor(opts: KubeClientOptions) {
    this.config = opts.config;
    this.userAgent = opts.userAgent ?? buildUserAgent();
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.log = opts.log ?? silentLogger;
    this.random = opts.random ?? Math.random;
    const url = new URL(opts.config.server);
    this.basePath = url.pathname.replace(/\/+$/, '');
    const { tls } = opts.config;
    const connect: Record<string, unknown> = {
      rejectUnauthorized: !tls.insecureSkipTlsVerify,
      keepAlive: true,
      keepAliveInitialDelay: 30_000,
      timeout: opts.connectTimeoutMs ?? 10_000,
    };
    if (tls.ca) connect.ca = tls.ca;
    if (tls.cert) connect.cert = tls.cert;
    if (tls.key) connect.key = tls.key;
    if (tls.serverName) connect.servername = tls.serverName;
    this.pool = new Pool(url.origin, {
      connect,
      connections: opts.connections ?? null,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: 600_000,
      allowH2: opts.allowH2 ?? false,
      // Timeouts are enforced per request below (watches differ from everything else).
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.authHeader = authHeaderSource(opts.config.auth, {
      tokenRefreshMs: opts.tokenRefreshMs,
      clock: opts.clock ?? systemClock,
      log: this.log,
    });
  }

  /** Aborts open watches and closes pooled connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.openWatches) ac.abort(new Error('client closed'));
    this.openWatches.clear();
    await this.pool.destroy();
  }

  // ------------------------------------------------------------------ verbs
  // All async: a bad argument (TypeError) rejects like any other failure.

  async get<T = unknown>(ref: ResourceRef, name: string, opts: GetOptions = {}): Promise<T> {
    const path = resourcePath(ref, { namespace: opts.namespace, name, subresource: opts.subresource });
    return this.request<T>({ method: 'GET', path, signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  async list<T = unknown>(ref: ResourceRef, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const path = resourcePath(ref, { namespace: opts.namespace });
    const query: Query = {
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      limit: opts.limit,
      continue: opts.continue,
      resourceVersion: opts.resourceVersion,
      resourceVersionMatch: opts.resourceVersionMatch,
    };
    return this.request<ObjectList<T>>({ method: 'GET', path, query, signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  async create<T extends KubeObject>(ref: ResourceRef, obj: T, opts: WriteOptions = {}): Promise<T> {
    const namespace = ref.namespaced ? (opts.namespace ?? obj.metadata?.namespace) : undefined;
    if (ref.namespaced && !namespace) throw new TypeError(`create ${ref.resource}: no namespace`);
    // Subresource creates (binding, eviction) POST to the parent object's subresource.
    const name = opts.subresource ? obj.metadata?.name : undefined;
    const path = resourcePath(ref, { namespace, name, subresource: opts.subresource });
    return this.request<T>({ method: 'POST', path, query: writeQuery(opts), body: obj, signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  async update<T extends KubeObject>(ref: ResourceRef, obj: T, opts: WriteOptions = {}): Promise<T> {
    const name = obj.metadata?.name;
    if (!name) throw new TypeError(`update ${ref.resource}: object has no metadata.name`);
    const namespace = ref.namespaced ? (opts.namespace ?? obj.metadata?.namespace) : undefined;
    const path = resourcePath(ref, { namespace, name, subresource: opts.subresource });
    return this.request<T>({ method: 'PUT', path, query: writeQuery(opts), body: obj, signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  async patch<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: PatchOptions): Promise<T> {
    if (opts.type === 'apply' && !opts.fieldManager) throw new TypeError('server-side apply needs a fieldManager');
    if (opts.type === 'json' && !Array.isArray(patch)) throw new TypeError('a JSON patch is a list of operations');
    const path = resourcePath(ref, { namespace: opts.namespace, name, subresource: opts.subresource });
    const query = { ...writeQuery(opts), force: opts.type === 'apply' && opts.force ? true : undefined };
    return this.request<T>({
      method: 'PATCH',
      path,
      query,
      body: patch,
      contentType: PATCH_CONTENT_TYPES[opts.type],
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
  }

  async delete<T = unknown>(ref: ResourceRef, name: string, opts: DeleteOptions = {}): Promise<T | Status> {
    const path = resourcePath(ref, { namespace: opts.namespace, name });
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.dryRun) body.dryRun = ['All'];
    return this.request<T | Status>({ method: 'DELETE', path, body, signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  async updateStatus<T extends KubeObject>(ref: ResourceRef, obj: T, opts: Omit<WriteOptions, 'subresource'> = {}): Promise<T> {
    return this.update(ref, obj, { ...opts, subresource: 'status' });
  }

  async patchStatus<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: Omit<PatchOptions, 'subresource'>): Promise<T> {
    return this.patch<T>(ref, name, patch, { ...opts, subresource: 'status' });
  }

  async watch<T = unknown>(ref: ResourceRef, opts: WatchOptions = {}): Promise<WatchStream<T>> {
    if (this.closed) throw unavailableError('client closed', undefined);
    const timeoutSeconds = opts.timeoutSeconds ?? Math.floor(300 * (1 + this.random()));
    const path = resourcePath(ref, { namespace: opts.namespace });
    const query: Query = {
      watch: 'true',
      allowWatchBookmarks: opts.allowWatchBookmarks ?? true,
      timeoutSeconds,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
    };
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    this.openWatches.add(ac);
    const release = (): void => {
      this.openWatches.delete(ac);
    };
    let res: Dispatcher.ResponseData;
    try {
      // Headers must come within the request timeout; afterwards the body may stay silent up to the server-side
      // timeout plus a grace minute (a backstop: informers detect stalls much sooner themselves).
      res = await this.dispatch({ method: 'GET', path, query }, signal, {
        headersTimeoutMs: this.requestTimeoutMs,
        bodyTimeoutMs: (timeoutSeconds + 60) * 1000,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        throw errorFromResponse(res.statusCode, text, { method: 'WATCH', path, retryAfter: header(res, 'retry-after') });
      }
    } catch (err: unknown) {
      release();
      ac.abort();
      throw err;
    }
    const body = res.body;
    const decoder = new WatchEventDecoder<T>();
    const iterate = async function* (): AsyncGenerator<WatchEvent<T>> {
      try {
        for await (const chunk of body) {
          yield* decoder.push(chunk as Uint8Array);
          decoder.check();
        }
        yield* decoder.end();
      } catch (err: unknown) {
        if (signal.aborted) return; // close() or the caller's abort: a quiet end
        if (err instanceof WatchDecodeError) throw err;
        throw unavailableError(`watch ${path} broke: ${errorMessage(err)}`, err);
      } finally {
        release();
        if (!body.destroyed) body.destroy();
      }
    };
    let started = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (started) throw new TypeError('a watch stream can be iterated once');
        started = true;
        return iterate();
      },
      close: () => {
        ac.abort(new Error('watch closed'));
        release();
      },
    };
  }

  // ------------------------------------------------------------------ transport

  async request<T = unknown>(opts: RequestOptions): Promise<T> {
    if (this.closed) throw unavailableError('client closed', undefined);
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    // timeoutMs <= 0: no deadline of our own (the caller's signal still applies)
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : new AbortController().signal;
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const what = `${opts.method} ${opts.path}`;
    try {
      const res = await this.dispatch(opts, signal, { headersTimeoutMs: 0, bodyTimeoutMs: 0 });
      const text = await res.body.text();
      if (res.statusCode < 200 || res.statusCode >= 300) {
        throw errorFromResponse(res.statusCode, text, { method: opts.method, path: opts.path, retryAfter: header(res, 'retry-after') });
      }
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (err: unknown) {
        throw new ApiError('ApiUnavailable', `${what}: response is not JSON`, { statusCode: res.statusCode, cause: err });
      }
    } catch (err: unknown) {
      if (err instanceof ApiError || err instanceof ApiNotFoundError) throw err;
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (timeout.aborted) throw unavailableError(`${what}: timed out after ${timeoutMs} ms`, err);
      throw unavailableError(`${what}: ${describeTransportError(err)}`, err);
    }
  }

  private async dispatch(
    opts: Pick<RequestOptions, 'method' | 'path' | 'query' | 'body' | 'contentType'>,
    signal: AbortSignal,
    t: { headersTimeoutMs: number; bodyTimeoutMs: number },
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    const auth = await this.authHeader();
    if (auth) headers.authorization = auth;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    try {
      return await this.pool.request({
        method: opts.method,
        path: this.basePath + opts.path + buildQuery(opts.query),
        headers,
        body,
        signal,
        headersTimeout: t.headersTimeoutMs,
        bodyTimeout: t.bodyTimeoutMs,
      });
    } catch (err: unknown) {
      if (signal.aborted) throw err; // the caller sorts out whose abort it was
      throw unavailableError(`${opts.method} ${opts.path}: ${describeTransportError(err)}`, err);
    }
  }
}

function writeQuery(opts: WriteOptions): Query {
  return { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined };
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function describeTransportError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const inner = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message || String(code ?? 'error')}${inner}`;
  }
  return String(err);
}
