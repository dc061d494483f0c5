// Sync rate limit as upstream's BoundedFrequencyRunner (pkg/util/async): a token bucket refilled with one token
// per minIntervalMs, holding at most `burst`. A burst of changes after a quiet period syncs at once; a storm of
// changes syncs at most once per minIntervalMs.
import { type Clock, systemClock } from '../lib/index.ts';

export class SyncThrottle {
  private tokens: number;
  private last: number;
  private readonly minIntervalMs: number;
  private readonly burst: number;
  private readonly clock: Clock;

  constructor(opts: { minIntervalMs: number; burst: number; clock?: Clock }) {
    this.minIntervalMs = opts.minIntervalMs;
    this.burst = Math.max(1, opts.burst);
    this.clock = opts.clock ?? systemClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    if (this.minIntervalMs > 0) this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.minIntervalMs);
    this.last = now;
  }

  /** How long a caller would wait now (0 = a token is available). */
  delayMs(): number {
    if (this.minIntervalMs <= 0) return 0;
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.minIntervalMs);
  }

  /** Waits for a token and takes it. Rejects when the signal aborts. */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.minIntervalMs <= 0) return;
    const wait = this.delayMs();
    if (wait > 0) {
      await this.clock.sleep(wait, signal);
      this.refill();
    }
    this.tokens = Math.max(0, this.tokens - 1);
  }
}
