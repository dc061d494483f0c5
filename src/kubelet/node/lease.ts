// The node Lease (kube-node-lease/<node>, coordination.k8s.io/v1): the node's cheap heartbeat (KEP-589). Ported from
// k8s.io/component-helpers/apimachinery/lease/controller.go (pkg/kubelet/nodelease in 1.20): renew every
// 0.25 × leaseDurationSeconds from the last Lease written (no GET when nothing else touched it); when that fails, get
// or create it with back-off (200 ms doubling up to 7 s, until it works), then update it up to 5 times, re-getting it
// after a conflict. The owner reference to the Node (pkg/kubelet/util/nodelease.go SetNodeOwnerFunc) is added as soon
// as the Node's uid is known, so the garbage collector deletes the Lease with the Node.
import type { Lease } from 'kubernetes-types/coordination/v1';
import { resources, apiErrorDetails, type KubeApi } from '../../kube/index.ts';
import { Backoff, errorMessage, hasCode, isNotFound, RateLimiter, systemClock, type BackoffPolicy, type Clock, type Logger } from '../../lib/index.ts';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
export const DEFAULT_LEASE_DURATION_SECONDS = 40;
/** renewInterval = leaseDuration × 0.25 (nodeLeaseRenewIntervalFraction). */
export const LEASE_RENEW_FRACTION = 0.25;
const MAX_UPDATE_RETRIES = 5;
/** Retries of ensuring the Lease: 100 ms doubled before each sleep, so 200 ms, 400 ms … capped at 7 s. */
const ENSURE_LEASE_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 7000 };

/** The API slice the lease controller uses. */
export type LeaseApi = Pick<KubeApi, 'get' | 'create' | 'update'>;

/** metav1.MicroTime on the wire: `2006-01-02T15:04:05.000000Z`. */
export function formatMicroTime(ms: number): string {
  return new Date(Math.floor(ms)).toISOString().replace(/Z$/, '000Z');
}

export interface LeaseIdentity {
  nodeName: string;
  leaseDurationSeconds: number;
  /** The Node's uid, when known. */
  nodeUid: string | undefined;
}

/**
 * The Lease to write at `now` (controller.go newLease): a copy of `base` (or a fresh object) held by the node, renewed
 * now, owned by the Node when its uid is known. An owner reference to an older incarnation of the Node (deleted and
 * registered again) is replaced: it would let the garbage collector delete the Lease.
 */
export function buildLease(base: Lease | undefined, id: LeaseIdentity, now: number): Lease {
  const lease: Lease = base
    ? structuredClone(base)
    : { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: id.nodeName, namespace: NODE_LEASE_NAMESPACE } };
  lease.spec = {
    ...lease.spec,
    holderIdentity: id.nodeName,
    leaseDurationSeconds: id.leaseDurationSeconds,
    renewTime: formatMicroTime(now),
  };
  if (id.nodeUid) {
    const meta = (lease.metadata ??= {});
    const refs = meta.ownerReferences ?? [];
    const ours = refs.find((r) => r.kind === 'Node' && r.name === id.nodeName);
    if (refs.length === 0 || (ours && ours.uid !== id.nodeUid)) {
      meta.ownerReferences = [
        ...refs.filter((r) => r !== ours),
        { apiVersion: 'v1', kind: 'Node', name: id.nodeName, uid: id.nodeUid },
      ];
    }
  }
  return lease;
}

export interface NodeLeaseControllerOptions {
  api: LeaseApi;
  nodeName: string;
  leaseDurationSeconds?: number | undefined;
  /** Default leaseDuration × 0.25 (10 s). */
  renewIntervalMs?: number | undefined;
  /** The Node's uid once registered (read at every renewal). */
  nodeUid: () => string | undefined;
  /** Timeout of one API call (default: the renew interval, as upstream's leaseClient timeout). */
  requestTimeoutMs?: number | undefined;
  log: Logger;
  clock?: Clock | undefined;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    clock.sleep(ms, signal).then(done, done);
  });
}

export class NodeLeaseController {
  private readonly o: NodeLeaseControllerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly leaseDurationSeconds: number;
  readonly renewIntervalMs: number;
  private readonly limiter: RateLimiter;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** The Lease as last written or read. */
  private latest: Lease | undefined;
  /** When the Lease was last written successfully (0 = never). */
  lastRenewAt = 0;
  private readonly startedAt: number;

  constructor(opts: NodeLeaseControllerOptions) {
    this.o = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.leaseDurationSeconds = opts.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS;
    this.renewIntervalMs = opts.renewIntervalMs ?? Math.round(this.leaseDurationSeconds * 1000 * LEASE_RENEW_FRACTION);
    this.limiter = new RateLimiter(5 * 60_000, () => this.clock.now());
    this.startedAt = this.clock.now();
  }

  /** Starts renewing. Idempotent. */
  start(): void {
    this.loop ??= this.run(this.abort.signal);
  }

  /** Stops renewing (the Lease then expires on its own). Resolves when the loop has ended. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('node lease controller stopped'));
    await this.loop;
  }

  /** The Lease was renewed within its duration (or the controller started less than one duration ago). */
  healthy(): boolean {
    const durationMs = this.leaseDurationSeconds * 1000;
    const since = this.lastRenewAt || this.startedAt;
    return this.clock.now() - since < durationMs;
  }

  /** The Lease as last written, if any. */
  lease(): Lease | undefined {
    return this.latest;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.sync(signal);
      await pause(this.clock, this.renewIntervalMs, signal);
    }
  }

  /** One renewal (controller.go sync). Never rejects; returns whether the Lease was written. */
  async sync(signal: AbortSignal): Promise<boolean> {
    if (this.latest) {
      // Optimistic: nobody else writes this Lease, so update the last version written without a GET.
      if (await this.retryUpdate(this.latest, signal)) return true;
    }
    if (signal.aborted) return false;
    const ensured = await this.backoffEnsureLease(signal);
    if (!ensured) return false;
    if (ensured.created) return true;
    return this.retryUpdate(ensured.lease, signal);
  }

  private identity(): LeaseIdentity {
    return { nodeName: this.o.nodeName, leaseDurationSeconds: this.leaseDurationSeconds, nodeUid: this.o.nodeUid() };
  }

  private timeoutMs(): number {
    return this.o.requestTimeoutMs ?? this.renewIntervalMs;
  }

  /** Gets or creates the Lease, retrying with back-off until it works or `signal` aborts. */
  private async backoffEnsureLease(signal: AbortSignal): Promise<{ lease: Lease; created: boolean } | undefined> {
    const backoff = new Backoff(ENSURE_LEASE_BACKOFF);
    while (!signal.aborted) {
      try {
        return await this.ensureLease(signal);
      } catch (err: unknown) {
        if (signal.aborted) return undefined;
        const sleepMs = backoff.next();
        this.logFailure(err, 'failed to ensure node lease exists, will retry', { retryInMs: sleepMs });
        await pause(this.clock, sleepMs, signal);
      }
    }
    return undefined;
  }

  private async ensureLease(signal: AbortSignal): Promise<{ lease: Lease; created: boolean }> {
    const opts = { namespace: NODE_LEASE_NAMESPACE, signal, timeoutMs: this.timeoutMs() };
    try {
      const lease = await this.o.api.get<Lease>(resources.leases, this.o.nodeName, opts);
      this.latest = lease;
      return { lease, created: false };
    } catch (err: unknown) {
      if (!isNotFound(err)) throw err;
    }
    const now = this.clock.now();
    const lease = await this.o.api.create<Lease>(resources.leases, buildLease(undefined, this.identity(), now), opts);
    this.log.info({ lease: `${NODE_LEASE_NAMESPACE}/${this.o.nodeName}`, renewTime: lease.spec?.renewTime }, 'node lease created');
    this.renewed(lease, now, true);
    return { lease, created: true };
  }

  /** Writes a renewed copy of `base`, up to 5 attempts; a conflict re-reads the Lease first. */
  private async retryUpdate(base: Lease, signal: AbortSignal): Promise<boolean> {
    let current = base;
    for (let i = 0; i < MAX_UPDATE_RETRIES && !signal.aborted; i++) {
      const now = this.clock.now();
      try {
        const lease = await this.o.api.update<Lease>(resources.leases, buildLease(current, this.identity(), now), {
          namespace: NODE_LEASE_NAMESPACE,
          signal,
          timeoutMs: this.timeoutMs(),
        });
        this.renewed(lease, now);
        return true;
      } catch (err: unknown) {
        if (signal.aborted) return false;
        this.logFailure(err, 'failed to update node lease', { attempt: i + 1 });
        if (hasCode(err, 'Conflict') || isNotFound(err)) {
          const ensured = await this.backoffEnsureLease(signal);
          if (!ensured) return false;
          if (ensured.created) return true;
          current = ensured.lease;
        }
      }
    }
    return false;
  }

  private renewed(lease: Lease, at: number, quiet = false): void {
    this.latest = lease;
    // Log the first renewal and the recovery after a lapse, not every renewal.
    if (!quiet && (this.lastRenewAt === 0 || !this.healthy())) this.log.info({ renewTime: lease.spec?.renewTime }, 'node lease renewed');
    this.lastRenewAt = at;
  }

  private logFailure(err: unknown, msg: string, fields: Record<string, unknown>): void {
    const d = apiErrorDetails(err);
    const key = `${d?.statusCode ?? 0}:${errorMessage(err)}`;
    if (this.limiter.allow(key)) this.log.warn({ err, statusCode: d?.statusCode, ...fields }, msg);
    else this.log.debug({ err, ...fields }, msg);
  }
}
