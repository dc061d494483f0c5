// Every loop in berth runs under a SyncRunner: triggers coalesce, runs never overlap, a minimum interval
// between runs, a periodic full resync, failures back off with jitter, and `healthy()` says whether the
// last success is recent. Modelled on upstream's BoundedFrequencyRunner (pkg/util/async).
import { type Clock, systemClock } from './clock.ts';
import { Backoff } from './backoff.ts';
import type { Logger } from './logger.ts';
import { errorMessage } from './errors.ts';

export interface SyncRunnerOptions {
  name: string;
  /** The work. Receives an abort signal that fires on stop(). */
  run: (signal: AbortSignal) => Promise<void>;
  /** Minimum time between the starts of two runs. */
  minIntervalMs?: number;
  /** A run happens at least this often even without triggers (0 = never). */
  periodMs?: number;
  /** Back-off after a failure starts here and doubles up to maxBackoffMs, ±20 % jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** healthy() is false when the last success is older than this. */
  unhealthyAfterMs?: number;
  log: Logger;
  clock?: Clock;
}

export class SyncRunner {
  private readonly o: Required<Omit<SyncRunnerOptions, 'clock'>> & { clock: Clock };
  private pending = false;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = 0;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  lastSuccessAt = 0;
  lastError: string | undefined;
  runs = 0;
  /** When the runner was made (healthy() grace before the first success), on the injected clock. */
  private readonly createdAt: number;

  constructor(opts: SyncRunnerOptions) {
    this.o = {
      minIntervalMs: 0,
      periodMs: 0,
      initialBackoffMs: 1000,
      maxBackoffMs: 30_000,
      unhealthyAfterMs: 0,
      clock: systemClock,
      ...opts,
    };
    this.createdAt = this.o.clock.now();
    this.backoff = new Backoff({ initialMs: this.o.initialBackoffMs, maxMs: this.o.maxBackoffMs, jitter: 0.2 });
  }

  /** Starts periodic runs (and one immediate run). */
  start(): void {
    this.trigger();
  }

  /** Asks for a run soon; many triggers before the run starts make one run. */
  trigger(): void {
    if (this.stopped) return;
    this.pending = true;
    this.schedule(0);
  }

  /** Resolves when no run is in progress and none is pending (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.running && !this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort(new Error(`${this.o.name} stopped`));
  }

  healthy(): boolean {
    if (!this.o.unhealthyAfterMs) return true;
    if (this.lastSuccessAt === 0) return this.o.clock.now() - this.createdAt < this.o.unhealthyAfterMs;
    return this.o.clock.now() - this.lastSuccessAt < this.o.unhealthyAfterMs;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.running) return;
    const sinceLast = this.o.clock.now() - this.lastStart;
    const wait = Math.max(delayMs, this.o.minIntervalMs - sinceLast, 0);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), wait);
  }

  private async loop(): Promise<void> {
    if (this.running || this.stopped) return;
    this.timer = undefined;
    this.running = true;
    this.pending = false;
    this.lastStart = this.o.clock.now();
    let nextDelay = this.o.periodMs;
    try {
      await this.o.run(this.abort.signal);
      this.runs++;
      this.backoff.reset();
      this.lastSuccessAt = this.o.clock.now();
      this.lastError = undefined;
    } catch (err: unknown) {
      this.lastError = errorMessage(err);
      nextDelay = this.backoff.next();
      this.pending = true;
      if (!this.stopped) this.o.log.warn({ err, runner: this.o.name, failures: this.backoff.failures, retryInMs: nextDelay }, 'sync failed');
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.pending && this.backoff.failures === 0) this.schedule(0);
    else if (this.pending || nextDelay > 0) this.schedule(nextDelay);
    if (!this.pending) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }
}
