// Pod lifecycle event generator: relists the runtime (every second, and at once on a runtime event),
// inspects only containers whose state changed, keeps the observed state per pod UID, and tells the
// pod workers which pods changed. Upstream: pkg/kubelet/pleg/generic.go + kubecontainer.Cache.
// Events are hints; the relist is the truth. Inspections run with bounded concurrency, each with the
// runtime's own timeout. A pod with a failed inspect keeps its previous cache entry whole (no partial view: a
// new container missing from it would be created a second time), is not reported as changed, and is
// re-inspected next relist; getNewerThan waits for a complete view (generic.go podsToReinspect).
import { readFile, open } from 'node:fs/promises';
import type { Container, ContainerStatus, PodSandbox, PodSandboxStatus, RuntimeService } from '../../cri/index.ts';
import { A, L } from '../../cri/index.ts';
import { SyncRunner, type Clock, systemClock, type Logger, RateLimiter, isNotFound } from '../../lib/index.ts';
import { emptyObserved, newestFirst, type ObservedPod } from '../pod/observed.ts';

export type PlegRuntime = Pick<RuntimeService, 'listContainers' | 'listPodSandbox' | 'containerStatus' | 'podSandboxStatus' | 'events'>;

export interface PlegOptions {
  runtime: PlegRuntime;
  log: Logger;
  relistPeriodMs?: number;
  inspectConcurrency?: number;
  /** Only objects with these labels are this node's (io.berth.node=<node>). */
  labelSelector?: Record<string, string>;
  /** PLEG is unhealthy when the last successful relist is older than this (upstream: 3 min). */
  relistThresholdMs?: number;
  clock?: Clock;
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  });
  await Promise.all(workers);
}

/** Reads the termination message a container wrote (policy File, or FallbackToLogsOnError from its log). */
async function terminationMessage(c: ContainerStatus): Promise<string> {
  const p = c.annotations[A.terminationMessagePath];
  const m = p ? c.mounts.find((x) => x.containerPath === p) : undefined;
  if (m) {
    try {
      const fh = await open(m.hostPath, 'r');
      try {
        const buf = Buffer.alloc(4096);
        const { bytesRead } = await fh.read(buf, 0, 4096, 0);
        const text = buf.subarray(0, bytesRead).toString('utf8');
        if (text) return text;
      } finally {
        await fh.close();
      }
    } catch {
      // no message file
    }
  }
  if (c.annotations[A.terminationMessagePolicy] === 'FallbackToLogsOnError' && c.exitCode !== 0 && c.logPath) {
    try {
      const raw = await readFile(c.logPath, 'utf8');
      const lines = raw.trimEnd().split('\n').slice(-80);
      const text = lines.map((l) => {
        try {
          return (JSON.parse(l) as { log?: string }).log ?? l;
        } catch {
          return l + '\n';
        }
      });
      return text.join('').slice(-2048);
    } catch {
      return '';
    }
  }
  return '';
}

export class Pleg {
  /** Called after each successful relist with its duration (kubelet_pleg_relist_duration_seconds); must not throw. */
  onRelist?: (durationMs: number) => void;
  private readonly runtime: PlegRuntime;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly thresholdMs: number;
  private readonly runner: SyncRunner;
  private readonly selector: Record<string, string> | undefined;
  private readonly containers = new Map<string, ContainerStatus>();
  private readonly sandboxes = new Map<string, PodSandboxStatus>();
  /** State each object had in the last list: `docker ps` cannot tell created from failed-to-start, so
   * comparing the list with inspected states would re-inspect such containers forever. */
  private readonly listed = new Map<string, string>();
  private pods = new Map<string, ObservedPod>();
  private signatures = new Map<string, string>();
  private listeners: ((uid: string) => void)[] = [];
  private waiters: { uid: string; after: number; resolve: () => void }[] = [];
  /** Pods whose last relist had a failed inspect → start of the last relist that saw them whole (0 = never). */
  private readonly incomplete = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly warnLimiter = new RateLimiter(60_000);
  /** Start time of the last successful relist (data is at least this fresh). */
  lastRelistStart = 0;

  constructor(opts: PlegOptions) {
    this.runtime = opts.runtime;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.concurrency = opts.inspectConcurrency ?? 8;
    this.thresholdMs = opts.relistThresholdMs ?? 180_000;
    this.selector = opts.labelSelector;
    this.runner = new SyncRunner({
      name: 'pleg',
      run: () => this.relist(),
      minIntervalMs: 50,
      periodMs: opts.relistPeriodMs ?? 1000,
      initialBackoffMs: 500,
      maxBackoffMs: 5000,
      log: this.log,
      clock: this.clock,
    });
  }

  onPodChanged(cb: (uid: string) => void): void {
    this.listeners.push(cb);
  }

  start(): void {
    this.runner.start();
    void this.watchEvents();
  }

  stop(): void {
    this.runner.stop();
    this.abort.abort();
  }

  /** Asks for a relist soon (coalesced). */
  trigger(): void {
    this.runner.trigger();
  }

  healthy(): boolean {
    return this.lastRelistStart > 0 && this.clock.now() - this.lastRelistStart < this.thresholdMs;
  }

  /** The pod as last observed (empty if the runtime holds nothing for it). */
  get(uid: string): ObservedPod {
    return this.pods.get(uid) ?? emptyObserved(uid);
  }

  uids(): string[] {
    return [...this.pods.keys()];
  }

  /** Start of the last relist that observed this pod completely (every object inspected). */
  freshness(uid: string): number {
    return this.incomplete.get(uid) ?? this.lastRelistStart;
  }

  /**
   * Resolves with the pod's observed state from a relist that started after `minTime` and inspected every object
   * of the pod (cache.GetNewerThan). While the pod's inspects keep failing this does not resolve: acting on a
   * partial view could start a container that already exists.
   */
  async getNewerThan(uid: string, minTime: number): Promise<ObservedPod> {
    if (this.freshness(uid) > minTime) return this.get(uid);
    await new Promise<void>((resolve) => {
      this.waiters.push({ uid, after: minTime, resolve });
      this.runner.trigger();
    });
    return this.get(uid);
  }

  private async watchEvents(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        for await (const _ev of this.runtime.events(this.abort.signal)) this.runner.trigger();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (this.warnLimiter.allow('events')) this.log.warn({ err }, 'runtime event stream failed; relying on periodic relist');
      }
      if (this.abort.signal.aborted) return;
      await this.clock.sleep(1000, this.abort.signal).catch(() => undefined);
    }
  }

  private async relist(): Promise<void> {
    const start = this.clock.now();
    const f = this.selector ? { labelSelector: this.selector } : undefined;
    const [sbList, ctrList] = await Promise.all([this.runtime.listPodSandbox(f), this.runtime.listContainers(f)]);
    const stale: (PodSandbox | Container)[] = [];
    for (const o of [...sbList, ...ctrList]) {
      const known = 'podSandboxId' in o ? this.containers.has(o.id) : this.sandboxes.has(o.id);
      if (!known || this.listed.get(o.id) !== o.state) stale.push(o);
    }
    const sbIds = new Set(sbList.map((s) => s.id));
    const cIds = new Set(ctrList.map((c) => c.id));
    const failed = new Set<string>();
    await mapLimit(stale, this.concurrency, async (o) => {
      const isSandbox = 'metadata' in o && !('podSandboxId' in o);
      const uid = o.labels[L.podUid] ?? ('uid' in o.metadata ? o.metadata.uid : undefined);
      try {
        if (isSandbox) this.sandboxes.set(o.id, await this.runtime.podSandboxStatus(o.id));
        else {
          const st = await this.runtime.containerStatus(o.id);
          if (st.state === 'CONTAINER_EXITED' && !st.message) st.message = await terminationMessage(st);
          this.containers.set(o.id, st);
        }
        this.listed.set(o.id, o.state);
      } catch (err) {
        // Removed between list and inspect: it is simply gone (the next list agrees).
        if (isNotFound(err)) {
          if (isSandbox) sbIds.delete(o.id);
          else cIds.delete(o.id);
          return;
        }
        // Keep what we had and hold the whole pod back until an inspect succeeds.
        if (uid) failed.add(uid);
        if (this.warnLimiter.allow(`inspect:${o.id}`)) this.log.warn({ err, id: o.id, podUid: uid }, 'inspect failed; pod not updated until it succeeds');
      }
    });
    for (const id of this.sandboxes.keys()) if (!sbIds.has(id)) this.sandboxes.delete(id);
    for (const id of this.containers.keys()) if (!cIds.has(id)) this.containers.delete(id);
    for (const id of this.listed.keys()) if (!sbIds.has(id) && !cIds.has(id)) this.listed.delete(id);

    const pods = new Map<string, ObservedPod>();
    const podOf = (uid: string): ObservedPod => {
      let p = pods.get(uid);
      if (!p) pods.set(uid, (p = emptyObserved(uid)));
      return p;
    };
    for (const s of this.sandboxes.values()) {
      const uid = s.labels[L.podUid] ?? s.metadata.uid;
      if (uid) podOf(uid).sandboxes.push(s);
    }
    for (const c of this.containers.values()) {
      const uid = c.labels[L.podUid];
      if (uid) podOf(uid).containers.push(c);
    }
    const signatures = new Map<string, string>();
    for (const [uid, p] of pods) {
      p.sandboxes.sort(newestFirst);
      p.containers.sort(newestFirst);
      signatures.set(uid, [...p.sandboxes.map((s) => `${s.id}:${s.state}:${s.network.ip ?? ''}`), ...p.containers.map((c) => `${c.id}:${c.state}`)].join(','));
    }
    // A pod with a failed inspect keeps its previous entry and signature (upstream: the cache is not updated).
    for (const uid of failed) {
      const prev = this.pods.get(uid);
      if (prev) pods.set(uid, prev);
      else pods.delete(uid);
      const prevSig = this.signatures.get(uid);
      if (prevSig !== undefined) signatures.set(uid, prevSig);
      else signatures.delete(uid);
      if (!this.incomplete.has(uid)) this.incomplete.set(uid, this.lastRelistStart);
    }
    for (const uid of this.incomplete.keys()) if (!failed.has(uid)) this.incomplete.delete(uid);
    const changed: string[] = [];
    for (const [uid, sig] of signatures) if (this.signatures.get(uid) !== sig) changed.push(uid);
    for (const uid of this.signatures.keys()) if (!signatures.has(uid) && !failed.has(uid)) changed.push(uid);
    this.pods = pods;
    this.signatures = signatures;
    this.lastRelistStart = start;
    this.onRelist?.(this.clock.now() - start);
    const ready = this.waiters.filter((w) => this.freshness(w.uid) > w.after);
    this.waiters = this.waiters.filter((w) => this.freshness(w.uid) <= w.after);
    for (const w of ready) w.resolve();
    // Waiters on a pod whose inspect failed wait for the periodic relist (no hot retry loop against a sick daemon).
    if (this.waiters.some((w) => !this.incomplete.has(w.uid))) this.runner.trigger();
    for (const uid of changed) for (const l of this.listeners) l(uid);
  }
}
