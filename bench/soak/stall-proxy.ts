// A unix-socket proxy between berth and the private dockerd (scenario 2) that can be switched to stall: a hung
// Docker API. Forwarding, it pipes each connection to the daemon's socket (a connection the daemon refuses is closed
// at once, so berth sees the daemon down). Stalled, it accepts and reads every connection but answers nothing and
// holds what the daemon sends on open ones; it records how long each stalled request was held before berth gave up
// on it (closed its end: the caller's timeout). resume() delivers everything held, as a daemon coming back would.
import net from 'node:net';
import { rmSync } from 'node:fs';

interface Conn {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes from the client not yet sent upstream (no upstream yet, or stalled). */
  pending: Buffer[];
  /** When this connection was first stalled (0 = not stalled). */
  stalledAt: number;
  /** Opened while stalled: a request berth made to the hung daemon (not a stream it held open before). */
  openedStalled: boolean;
  /** berth sent bytes the daemon has not answered yet: a call in flight (an idle keep-alive socket is not one). */
  awaiting: boolean;
}

export interface StallFigures {
  /** Connections that were open or opened while stalled. */
  stalled: number;
  /** Of those with a call in flight, how many berth closed before resume (timed out and gave up). */
  closedByClientWhileStalled: number;
  /** How long the longest one was held before berth closed it (ms). */
  maxHeldBeforeClientCloseMs: number;
  /** Each one's hold before berth closed it (ms), sorted. */
  heldBeforeClientCloseMs: number[];
  /** Requests made during the stall that berth still waited for at resume, and the oldest one's age (ms). */
  openAtResume: number;
  oldestOpenAtResumeMs: number;
}

function emptyFigures(): StallFigures {
  return { stalled: 0, closedByClientWhileStalled: 0, maxHeldBeforeClientCloseMs: 0, heldBeforeClientCloseMs: [], openAtResume: 0, oldestOpenAtResumeMs: 0 };
}

export class StallProxy {
  private readonly server: net.Server;
  private readonly conns = new Set<Conn>();
  private stalled = false;
  private figures: StallFigures = emptyFigures();

  readonly socketPath: string;
  private readonly upstreamPath: string;

  constructor(socketPath: string, upstreamPath: string) {
    this.socketPath = socketPath;
    this.upstreamPath = upstreamPath;
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => resolve());
    });
  }

  /** From now on nothing is answered; returns the figures of this stall when resume() is called. */
  stall(): void {
    this.stalled = true;
    this.figures = emptyFigures();
    const now = performance.now();
    for (const c of this.conns) {
      c.stalledAt = now;
      this.figures.stalled++;
      c.upstream?.pause();
    }
  }

  /** Answers again: held connections are connected or resumed. Returns what the stall did to berth's calls. */
  resume(): StallFigures {
    this.stalled = false;
    const now = performance.now();
    for (const c of this.conns) {
      if (c.openedStalled && c.stalledAt && c.awaiting) {
        this.figures.openAtResume++;
        this.figures.oldestOpenAtResumeMs = Math.max(this.figures.oldestOpenAtResumeMs, Math.round(now - c.stalledAt));
      }
      c.stalledAt = 0;
      if (c.upstream) {
        c.upstream.resume();
        this.flush(c);
      } else this.connect(c);
    }
    this.figures.heldBeforeClientCloseMs.sort((a, b) => a - b);
    return this.figures;
  }

  async close(): Promise<void> {
    for (const c of this.conns) {
      c.client.destroy();
      c.upstream?.destroy();
    }
    await new Promise((r) => this.server.close(r));
    rmSync(this.socketPath, { force: true });
  }

  private accept(client: net.Socket): void {
    const c: Conn = { client, upstream: undefined, pending: [], stalledAt: 0, openedStalled: this.stalled, awaiting: false };
    this.conns.add(c);
    if (this.stalled) {
      c.stalledAt = performance.now();
      this.figures.stalled++;
    }
    client.on('data', (d: Buffer) => {
      c.awaiting = true;
      if (c.upstream && !this.stalled) c.upstream.write(d);
      else c.pending.push(d);
    });
    const end = (): void => {
      if (!this.conns.delete(c)) return;
      if (c.stalledAt && c.awaiting) {
        const held = Math.round(performance.now() - c.stalledAt);
        this.figures.closedByClientWhileStalled++;
        this.figures.heldBeforeClientCloseMs.push(held);
        this.figures.maxHeldBeforeClientCloseMs = Math.max(this.figures.maxHeldBeforeClientCloseMs, held);
      }
      c.upstream?.destroy();
    };
    client.on('close', end);
    client.on('error', end);
    if (!this.stalled) this.connect(c);
  }

  private connect(c: Conn): void {
    const up = net.connect(this.upstreamPath);
    c.upstream = up;
    up.on('connect', () => this.flush(c));
    up.on('data', (d: Buffer) => {
      c.awaiting = false;
      c.client.write(d);
    });
    // The daemon is down or closed the connection: so does the proxy (berth sees a reset or an end, as without it).
    up.on('error', () => c.client.destroy());
    up.on('end', () => c.client.end());
    up.on('close', () => c.client.destroy());
  }

  private flush(c: Conn): void {
    if (this.stalled || !c.upstream || c.upstream.connecting) return;
    for (const d of c.pending.splice(0)) c.upstream.write(d);
  }
}
