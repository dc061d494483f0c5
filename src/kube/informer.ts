// A reusable informer: list (paginated), then watch from the list's resourceVersion with bookmarks, keeping a local
// cache keyed by namespace/name and telling handlers what changed. Follows client-go's Reflector (tools/cache/
// reflector.go: ListAndWatch, relistResourceVersion) and sharedIndexInformer/DeltaFIFO.Replace (deletes synthesized
// for objects that vanished across a relist). Never treats a watch as permanent: the server ends watches every 5–10
// min, a silent watch (no event nor bookmark for `stallTimeoutMs`) is replaced, errors back off with jitter, 410 Gone
// relists, and `lastSyncAgeMs()` / `healthy()` tell how current the cache is.
import { type Clock, systemClock, Backoff, type Logger, NotFoundError, RateLimiter, errorMessage, hasCode } from '../lib/index.ts';
import type { KubeApi, KubeObject } from './client.ts';
import { errorFromStatus, apiErrorDetails } from './errors.ts';
import { type ResourceRef, objectKey } from './resources.ts';
import { WatchDecodeError } from './watch.ts';

/** Called after the cache reflects the change. May be async; exceptions and rejections are logged, never fatal. */
export interface EventHandlers<T> {
  onAdd?(obj: T): void | Promise<void>;
  onUpdate?(oldObj: T, newObj: T): void | Promise<void>;
  /** `obj` is the last state seen (the DELETED event's object, or the cached one when a relist found it gone). */
  onDelete?(obj: T): void | Promise<void>;
}

export interface InformerOptions {
  api: Pick<KubeApi, 'list' | 'watch'>;
  ref: ResourceRef;
  /** Namespaced resources: one namespace; absent = all namespaces. */
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** List page size (`limit`). Default 500. */
  pageSize?: number | undefined;
  /** No event nor bookmark for this long → the watch is replaced. Servers send a bookmark about every minute. Default 120 s. */
  stallTimeoutMs?: number | undefined;
  /** Back-off after failures: starts here, doubles, capped, ±20 % jitter. Defaults 800 ms → 30 s (client-go). */
  initialBackoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /** Watches ask the server to end them after [min, 2·min) seconds. Default 300. */
  minWatchTimeoutSeconds?: number | undefined;
  /** If > 0, relist at least this often even when watches are healthy. Default 0 (never). */
  relistPeriodMs?: number | undefined;
  /** healthy() is false when the last sign of being current is older than this. Default 2·stall + max back-off. */
  unhealthyAfterMs?: number | undefined;
  /** For logs. Default the resource name. */
  name?: string | undefined;
  log: Logger;
  clock?: Clock | undefined;
  random?: (() => number) | undefined;
}

export interface InformerStats {
  lists: number;
  watches: number;
  stalls: number;
  gone: number;
  failures: number;
}

type WatchOutcome = 'ended' | 'stalled' | 'gone' | 'relist' | 'stopped';

/** A list/watch at a version the server has not reached (client-go: isTooLargeResourceVersionError): read fresh. */
function isResourceVersionTooLarge(err: unknown): boolean {
  const d = apiErrorDetails(err);
  if (!d) return false;
  if (d.status?.details?.causes?.some((c) => c.reason === 'ResourceVersionTooLarge')) return true;
  return hasCode(err, 'ApiUnavailable') && /too large resource version/i.test(d.status?.message ?? '');
}

/** Races clock.sleep with an abort signal (a FakeClock's sleep ignores signals). Resolves either way. */
function sleepUnlessAborted(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    clock.sleep(ms, signal).then(done, done);
  });
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (an API call that ignores its signal must not
 * keep stop() waiting). */
function unlessAborted<R>(p: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<R>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class Informer<T extends KubeObject> {
  private readonly o: InformerOptions;
  private readonly name: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly stallMs: number;
  private readonly unhealthyAfterMs: number;
  private readonly warnLimiter: RateLimiter;
  private cache = new Map<string, T>();
  private handlers: EventHandlers<T>[] = [];
  private rv: string | undefined;
  private rvUnavailable = false;
  private synced = false;
  private syncWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private lastSyncAt = 0;
  private lastListAt = 0;
  private readonly retry: Backoff;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly counters: InformerStats = { lists: 0, watches: 0, stalls: 0, gone: 0, failures: 0 };

  constructor(opts: InformerOptions) {
    this.o = opts;
    this.name = opts.name ?? opts.ref.resource;
    this.log = opts.log.child({ informer: this.name });
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.retry = new Backoff({ initialMs: opts.initialBackoffMs ?? 800, maxMs: opts.maxBackoffMs ?? 30_000, jitter: 0.2 }, this.random);
    this.stallMs = opts.stallTimeoutMs ?? 120_000;
    this.unhealthyAfterMs = opts.unhealthyAfterMs ?? 2 * this.stallMs + (opts.maxBackoffMs ?? 30_000);
    this.warnLimiter = new RateLimiter(60_000, () => this.clock.now());
  }

  /**
   * Registers handlers; returns a function that removes them. Handlers added after the first sync get an onAdd
   * for every cached object first (as client-go's AddEventHandler).
   */
  addEventHandler(h: EventHandlers<T>): () => void {
    this.handlers.push(h);
    if (this.synced) for (const obj of this.cache.values()) this.call(h, 'onAdd', obj);
    return () => {
      this.handlers = this.handlers.filter((x) => x !== h);
    };
  }

  /** Starts listing and watching in the background. Idempotent. */
  start(): void {
    if (this.loop || this.stopController.signal.aborted) return;
    this.loop = this.run();
  }

  /** Stops for good: ends the watch, pending waitForSync() calls reject. Resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.stopController.abort(new Error(`informer ${this.name} stopped`));
    const w = this.syncWaiters;
    this.syncWaiters = [];
    for (const x of w) x.reject(this.stopController.signal.reason);
    await this.loop;
  }

  /** True once the first full list has been delivered to the cache and handlers. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves at the first sync; rejects if the informer stops or `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopController.signal.aborted) return Promise.reject(this.stopController.signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.syncWaiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          this.syncWaiters = this.syncWaiters.filter((x) => x !== waiter);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Milliseconds since the cache was last known current (list, watch opened, event or bookmark). Infinity before. */
  lastSyncAgeMs(): number {
    return this.lastSyncAt === 0 ? Number.POSITIVE_INFINITY : this.clock.now() - this.lastSyncAt;
  }

  /** Synced and recently current (see `unhealthyAfterMs`). For /healthz. */
  healthy(): boolean {
    return this.synced && this.lastSyncAgeMs() < this.unhealthyAfterMs;
  }

  /** The cached objects (a snapshot array; objects are shared: do not mutate). */
  list(): T[] {
    return [...this.cache.values()];
  }

  /** The cached object under `namespace/name` (or `name`). Throws NotFoundError. */
  get(key: string): T {
    const v = this.cache.get(key);
    if (v === undefined) throw new NotFoundError(`${this.name} ${key} not in informer cache`);
    return v;
  }

  has(key: string): boolean {
    return this.cache.has(key);
  }

  /** The resourceVersion the cache is at (undefined before the first list). */
  resourceVersion(): string | undefined {
    return this.rv;
  }

  stats(): Readonly<InformerStats> {
    return { ...this.counters };
  }

  // ------------------------------------------------------------------ loop

  private async run(): Promise<void> {
    const stop = this.stopController.signal;
    let needList = true;
    // The next watch starts from the version a list gave just before (the list-loop guard below needs to know).
    let fromFreshList = false;
    while (!stop.aborted) {
      let stage: 'list' | 'watch' = 'list';
      try {
        if (needList) {
          await this.listAndReplace(stop);
          needList = false;
          fromFreshList = true;
        }
        stage = 'watch';
        const startedAt = this.clock.now();
        const fresh = fromFreshList;
        fromFreshList = false;
        const { outcome, events } = await this.watchOnce(stop);
        if (outcome === 'stopped') break;
        // A watch that delivered something or lasted a while ends the failure streak (client-go resets its back-off
        // only after a quiet spell, not on a list that succeeds: a list answered by an instant 410 must keep growing).
        const delivered = outcome === 'gone' ? events - 1 : events; // the 410 itself arrives as an ERROR event
        if (delivered > 0 || this.clock.now() - startedAt >= 1000) this.retry.reset();
        if (outcome === 'gone') {
          // The version we watch from was compacted away: relist from etcd (client-go: isExpiredError).
          this.counters.gone++;
          this.rvUnavailable = true;
          needList = true;
          this.log.info({ resourceVersion: this.rv }, 'watch expired (410); relisting');
          // A fresh list answered by an instant 410 again must not turn into a list loop. A 410 on a watch from an older
          // version (the first one after an outage) relists at once: the outage's back-off is not paid a second time.
          if (fresh && events <= 1 && this.clock.now() - startedAt < 1000) await this.backoff(new Error('watch expired at once'), stage);
          continue;
        }
        if (outcome === 'relist') {
          needList = true;
          continue;
        }
        if (outcome === 'stalled') {
          this.counters.stalls++;
          // Info, not warn: an API server may send no bookmark on a quiet resource (1.20 does not), and re-watching
          // from the same resourceVersion is cheap.
          this.log.info({ stallTimeoutMs: this.stallMs, resourceVersion: this.rv }, 'watch silent too long; reconnecting');
          continue;
        }
        // 'ended': the server closed it (timeoutSeconds). Re-watch at once, unless it ended instantly with
        // nothing: a server that keeps doing that must not be hammered.
        if (events === 0 && this.clock.now() - startedAt < 1000) await this.backoff(new Error('watch ended immediately'), stage);
      } catch (err: unknown) {
        if (stop.aborted) break;
        if (hasCode(err, 'Gone') || isResourceVersionTooLarge(err)) {
          // An expired continue token or resourceVersion while listing/watching: next list is a consistent read.
          this.counters.gone++;
          this.rvUnavailable = true;
          needList = true;
          if (stage === 'list') await this.backoff(err, stage);
          continue;
        }
        if (err instanceof WatchDecodeError) needList = true; // cannot know what we missed
        else if (stage === 'watch' && !hasCode(err, 'ApiUnavailable')) needList = true; // as client-go: relist
        // ApiUnavailable while watching (refused, reset, 5xx): re-watch from our version after the back-off; the
        // server replays what we missed, or answers 410 and we relist.
        await this.backoff(err, stage);
      }
    }
  }

  private async backoff(err: unknown, stage: string): Promise<void> {
    const delay = this.retry.next();
    this.counters.failures++;
    const key = `${stage}:${errorMessage(err)}`;
    if (this.retry.failures <= 3 || this.warnLimiter.allow(key)) {
      this.log.warn({ err, stage, failures: this.retry.failures, retryInMs: delay }, `${stage} failed`);
    }
    await sleepUnlessAborted(this.clock, delay, this.stopController.signal);
  }

  /** Which version to list at: client-go's relistResourceVersion. */
  private listResourceVersion(): string | undefined {
    if (this.rvUnavailable) return undefined; // consistent read from etcd
    return this.rv ?? '0'; // first list: from the watch cache
  }

  private async listAndReplace(signal: AbortSignal): Promise<void> {
    const rv = this.listResourceVersion();
    const items: T[] = [];
    let cont: string | undefined;
    let listRV: string | undefined;
    do {
      const page = await unlessAborted(this.o.api.list<T>(this.o.ref, {
        namespace: this.o.namespace,
        labelSelector: this.o.labelSelector,
        fieldSelector: this.o.fieldSelector,
        limit: this.o.pageSize ?? 500,
        continue: cont,
        resourceVersion: cont ? undefined : rv,
        signal,
      }), signal);
      // A non-object item (a broken server or proxy) cannot be keyed: it is dropped, not allowed to fail every list.
      for (const it of Array.isArray(page.items) ? page.items : []) if (isObject(it)) items.push(it);
      cont = page.metadata?.continue || undefined;
      listRV = page.metadata?.resourceVersion;
    } while (cont && !signal.aborted);
    if (signal.aborted) return;
    this.counters.lists++;
    this.replace(items, listRV);
  }

  /** client-go's Replace: the cache becomes exactly `items`; handlers hear about every difference. */
  private replace(items: T[], listRV: string | undefined): void {
    const next = new Map<string, T>();
    for (const it of items) next.set(objectKey(it), it);
    const old = this.cache;
    this.cache = next;
    this.rv = listRV;
    this.rvUnavailable = false;
    const now = this.clock.now();
    this.lastSyncAt = now;
    this.lastListAt = now;
    for (const [k, prev] of old) if (!next.has(k)) this.notify('onDelete', prev);
    for (const [k, obj] of next) {
      const prev = old.get(k);
      if (prev === undefined) this.notify('onAdd', obj);
      else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.notify('onUpdate', prev, obj);
    }
    if (!this.synced) {
      this.synced = true;
      const w = this.syncWaiters;
      this.syncWaiters = [];
      for (const x of w) x.resolve();
      this.log.debug({ objects: next.size, resourceVersion: listRV }, 'synced');
    }
  }

  private async watchOnce(stop: AbortSignal): Promise<{ outcome: WatchOutcome; events: number }> {
    const ac = new AbortController();
    const onStop = (): void => ac.abort(stop.reason);
    stop.addEventListener('abort', onStop, { once: true });
    let lastActivity = this.clock.now();
    let reason: WatchOutcome | undefined;
    let events = 0;
    const minTimeout = this.o.minWatchTimeoutSeconds ?? 300;
    try {
      const opening = this.o.api.watch<T>(this.o.ref, {
        namespace: this.o.namespace,
        labelSelector: this.o.labelSelector,
        fieldSelector: this.o.fieldSelector,
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds: Math.floor(minTimeout * (1 + this.random())),
        signal: ac.signal,
      });
      // If we give up waiting (stop), a stream that still arrives is closed.
      opening.then((st) => ac.signal.aborted && st.close(), () => undefined);
      const stream = await unlessAborted(opening, ac.signal);
      // Aborting (stall, stop, periodic relist) closes the stream, which ends the iteration below.
      ac.signal.addEventListener('abort', () => stream.close(), { once: true });
      this.counters.watches++;
      lastActivity = this.clock.now();
      this.lastSyncAt = lastActivity; // the server accepted our version: we are current as of now
      // Watchdog: a stalled watch (half-open TCP, a proxy that buffers, a wedged server) is replaced.
      const watchdog = (async (): Promise<void> => {
        while (!ac.signal.aborted) {
          const now = this.clock.now();
          const idle = now - lastActivity;
          if (idle >= this.stallMs) {
            reason ??= 'stalled';
            ac.abort(new Error('watch stalled'));
            return;
          }
          let wait = this.stallMs - idle;
          const period = this.o.relistPeriodMs ?? 0;
          if (period > 0) {
            const due = this.lastListAt + period - now;
            if (due <= 0) {
              reason ??= 'relist';
              ac.abort(new Error('periodic relist'));
              return;
            }
            wait = Math.min(wait, due);
          }
          await sleepUnlessAborted(this.clock, wait, ac.signal);
        }
      })();
      try {
        for await (const ev of stream) {
          lastActivity = this.clock.now();
          this.lastSyncAt = lastActivity;
          events++;
          if (ev.type === 'ERROR') {
            const err = errorFromStatus(ev.object);
            if (hasCode(err, 'Gone')) return { outcome: 'gone', events };
            throw err;
          }
          if (events === 1) this.retry.reset();
          if (isObject(ev.object)) this.apply(ev.type, ev.object);
          else if (this.warnLimiter.allow('non-object-event')) this.log.warn({ type: ev.type }, 'ignoring a watch event without an object');
        }
      } finally {
        stream.close();
        ac.abort();
        await watchdog;
      }
      if (stop.aborted) return { outcome: 'stopped', events };
      return { outcome: reason ?? 'ended', events };
    } finally {
      stop.removeEventListener('abort', onStop);
      ac.abort();
    }
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', obj: T): void {
    const rv = obj.metadata?.resourceVersion;
    if (type === 'BOOKMARK') {
      if (rv) this.rv = rv;
      return;
    }
    const key = objectKey(obj);
    const prev = this.cache.get(key);
    if (type === 'DELETED') {
      this.cache.delete(key);
      if (rv) this.rv = rv;
      this.notify('onDelete', obj);
      return;
    }
    this.cache.set(key, obj);
    if (rv) this.rv = rv;
    if (prev === undefined) this.notify('onAdd', obj);
    else this.notify('onUpdate', prev, obj);
  }

  private notify(kind: 'onAdd' | 'onDelete', obj: T): void;
  private notify(kind: 'onUpdate', prev: T, obj: T): void;
  private notify(kind: keyof EventHandlers<T>, a: T, b?: T): void {
    for (const h of this.handlers) this.call(h, kind, a, b);
  }

  private call(h: EventHandlers<T>, kind: keyof EventHandlers<T>, a: T, b?: T): void {
    const onError = (err: unknown): void => {
      if (this.warnLimiter.allow(`handler:${kind}:${errorMessage(err)}`)) {
        this.log.error({ err, handler: kind, object: objectKey(a) }, 'event handler failed');
      }
    };
    try {
      let r: void | Promise<void> | undefined;
      if (kind === 'onUpdate') r = h.onUpdate?.(a, b as T);
      else if (kind === 'onAdd') r = h.onAdd?.(a);
      else r = h.onDelete?.(a);
      if (r instanceof Promise) r.catch(onError);
    } catch (err: unknown) {
      onError(err);
    }
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
