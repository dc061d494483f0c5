// Samplers for scenario 2: the Node's Ready condition as the API server shows it (every 500 ms, each change kept
// with its time), and berth's own status endpoints (/healthz, /berth/pods on the read-only port) with their latency.
import type { KubeClient } from '../../src/kube/index.ts';
import { resources, sleep } from './common.ts';

export interface ReadySample {
  /** performance.now() of the sample. */
  at: number;
  status: string;
  reason: string;
  message: string;
}

interface NodeLike {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

export class NodeWatch {
  /** Every sample of the Ready condition, oldest first. */
  private readonly samples: ReadySample[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  private readonly admin: KubeClient;
  private readonly node: string;

  constructor(admin: KubeClient, node: string) {
    this.admin = admin;
    this.node = node;
  }

  start(): void {
    this.loop ??= (async () => {
      while (!this.stopped) {
        try {
          const n = await this.admin.get<NodeLike>(resources.nodes, this.node);
          const c = n.status?.conditions?.find((x) => x.type === 'Ready');
          const s: ReadySample = { at: performance.now(), status: c?.status ?? 'none', reason: c?.reason ?? '', message: c?.message ?? '' };
          this.samples.push(s);
        } catch {
          // the shared API server restarts now and then: the next sample will tell
        }
        await sleep(500);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Each change of the Ready condition (status, reason or message), oldest first. */
  changes(): ReadySample[] {
    return this.samples.filter((s, i) => {
      const p = this.samples[i - 1];
      return !p || p.status !== s.status || p.reason !== s.reason || p.message !== s.message;
    });
  }

  /** The first sample taken at or after `since` that satisfies `pred`. */
  first(since: number, pred: (s: ReadySample) => boolean): ReadySample | undefined {
    return this.samples.find((s) => s.at >= since && pred(s));
  }

  /** The Ready condition as last sampled. */
  current(): ReadySample | undefined {
    return this.samples.at(-1);
  }

  /** Waits for a sample taken at or after `since` satisfying `pred`; undefined after `timeoutMs`. */
  async waitFor(since: number, pred: (s: ReadySample) => boolean, timeoutMs: number): Promise<ReadySample | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = this.first(since, pred);
      if (s || performance.now() > deadline) return s;
      await sleep(200);
    }
  }
}

export interface StatusFigures {
  samples: number;
  /** Answers within the per-request timeout (any HTTP status). */
  answered: number;
  maxLatencyMs: number;
  /** HTTP status (or 'timeout'/'error') → count, per path. */
  codes: Record<string, Record<string, number>>;
}

/** Polls berth's /healthz and /berth/pods every second, each with a 2 s timeout, until stop(). */
export class StatusSampler {
  private readonly figures: StatusFigures = { samples: 0, answered: 0, maxLatencyMs: 0, codes: {} };
  private stopped = false;
  private loop: Promise<void> | undefined;

  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  start(): void {
    this.loop ??= (async () => {
      while (!this.stopped) {
        await Promise.all(['/healthz', '/berth/pods'].map((p) => this.probe(p)));
        await sleep(1000);
      }
    })();
  }

  async stop(): Promise<StatusFigures> {
    this.stopped = true;
    await this.loop;
    return this.figures;
  }

  private async probe(p: string): Promise<void> {
    const t0 = performance.now();
    let code: string;
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}${p}`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      code = String(res.status);
      this.figures.answered++;
      this.figures.maxLatencyMs = Math.max(this.figures.maxLatencyMs, Math.round(performance.now() - t0));
    } catch (err: unknown) {
      code = (err as Error).name === 'TimeoutError' ? 'timeout' : 'error';
    }
    this.figures.samples++;
    const per = (this.figures.codes[p] ??= {});
    per[code] = (per[code] ?? 0) + 1;
  }
}
