// The netlink transport: one python3 process (nfnl-helper.py, standard library only) that owns a NETLINK_NETFILTER
// socket, started on first use inside the proxier's network namespace (`nsenter --net`, as every other tool of the
// proxy). It receives already-encoded netlink bytes and answers with the kernel's replies; it knows nothing of
// nf_tables. One exchange at a time; a helper that died or timed out is killed and started again on the next call.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RestoreFailedError, TimeoutError } from '../../../lib/index.ts';
import { inNetns } from '../../exec.ts';
import { type NlMessage, splitMessages } from './nlmsg.ts';

/** python3 cannot be started (or the helper file is missing): the nft text path is used instead. */
export class NetlinkUnavailableError extends RestoreFailedError {}

/**
 * Where the helper is: next to this module — the sources, or the bundle (scripts/build.ts copies it next to
 * dist/cli/main.mjs) — else under the repository's src/ seen from dist/cli/ (a bundle built before the copy existed).
 */
export function helperPath(): string | undefined {
  for (const rel of ['./nfnl-helper.py', '../../src/proxy/nftables/netlink/nfnl-helper.py']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  return undefined;
}

export interface NetlinkTransportOptions {
  netns?: string;
  /** Default `python3`. */
  python?: string;
  /** One exchange (a batch with its commit, or a dump); default 300 s like `nft -f`. */
  timeoutMs?: number;
}

/** Answer statuses of nfnl-helper.py. */
const OK = 0;
const NO_TERMINAL = 1;
const OS_ERROR = 2;

export class NetlinkTransport {
  private child: ChildProcessWithoutNullStreams | undefined;
  private starting: Promise<void> | undefined;
  private pending: { resolve: (b: { status: number; data: Buffer }) => void; reject: (e: unknown) => void } | undefined;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly opts: NetlinkTransportOptions;
  /** Set once python3 or the helper turned out to be missing: never tried again. */
  unavailable: string | undefined;

  constructor(opts: NetlinkTransportOptions = {}) {
    this.opts = opts;
  }

  /** Starts the helper if it is not running. Throws NetlinkUnavailableError when it cannot run at all. */
  start(): Promise<void> {
    if (this.unavailable) return Promise.reject(new NetlinkUnavailableError(this.unavailable));
    if (this.child) return Promise.resolve();
    this.starting ??= this.spawnHelper().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private spawnHelper(): Promise<void> {
    const script = helperPath();
    if (!script) {
      this.unavailable = 'nfnl-helper.py not found';
      return Promise.reject(new NetlinkUnavailableError(this.unavailable));
    }
    const argv = inNetns(this.opts.netns, [this.opts.python ?? 'python3', '-u', '-S', script]);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      let ready = false;
      child.stderr.on('data', (b: Buffer) => {
        stderr = (stderr + b.toString('utf8')).slice(-4000);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (!ready) {
          if (err.code === 'ENOENT') this.unavailable = `${argv[0]} not found`;
          reject(new NetlinkUnavailableError(`cannot start the netlink helper: ${err.message}`, { cause: err }));
        }
        this.died(err);
      });
      child.on('exit', (code, sig) => {
        const err = new RestoreFailedError(`netlink helper exited (${code ?? sig}): ${stderr.trim()}`);
        if (!ready) {
          // No python3 (nsenter's exec failed) or no AF_NETLINK: nothing to retry.
          if (code === 127 || /No such file|not found|Address family not supported/.test(stderr)) this.unavailable = err.message;
          reject(new NetlinkUnavailableError(err.message));
        }
        this.died(err);
      });
      child.stdin.on('error', () => {});
      child.stdout.on('data', (b: Buffer) => {
        this.buffered.push(b);
        this.bufferedBytes += b.length;
        this.drain((frame) => {
          if (!ready) {
            ready = true;
            this.child = child;
            resolve();
            return;
          }
          const p = this.pending;
          this.pending = undefined;
          p?.resolve(frame);
        });
      });
    });
  }

  private drain(onFrame: (f: { status: number; data: Buffer }) => void): void {
    while (this.bufferedBytes >= 4) {
      const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
      this.buffered = [all];
      const len = all.readUInt32LE(0);
      if (all.length < 4 + len) return;
      const frame = { status: all[4]!, data: Buffer.from(all.subarray(5, 4 + len)) };
      const rest = all.subarray(4 + len);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.bufferedBytes = rest.length;
      onFrame(frame);
    }
  }

  private died(err: unknown): void {
    this.child = undefined;
    this.buffered = [];
    this.bufferedBytes = 0;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  /**
   * Sends `bytes` (one or more netlink messages) and returns the kernel's replies up to the NLMSG_ERROR/NLMSG_DONE
   * with sequence number `terminalSeq`. Rejects with RestoreFailedError when the helper fails or the terminal
   * message does not come, TimeoutError after timeoutMs; the helper is killed then (restarted on the next call).
   */
  exchange(bytes: Buffer, terminalSeq: number, signal?: AbortSignal): Promise<NlMessage[]> {
    const run = this.queue.catch(() => {}).then(() => this.exchangeNow(bytes, terminalSeq, signal));
    this.queue = run;
    return run;
  }

  private async exchangeNow(bytes: Buffer, terminalSeq: number, signal?: AbortSignal): Promise<NlMessage[]> {
    if (signal?.aborted) throw signal.reason;
    await this.start();
    const child = this.child!;
    const timeoutMs = this.opts.timeoutMs ?? 300_000;
    const frame = await new Promise<{ status: number; data: Buffer }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        reject(new TimeoutError(`netlink exchange timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.kill();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        resolve: (f) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const head = Buffer.alloc(9);
      head.writeUInt32LE(bytes.length + 5, 0);
      head.writeUInt8(0x78, 4);
      head.writeUInt32LE(terminalSeq >>> 0, 5);
      child.stdin.write(head);
      child.stdin.write(bytes);
    });
    if (frame.status === OS_ERROR) throw new RestoreFailedError(`netlink: ${frame.data.toString('utf8')}`);
    const messages = splitMessages(frame.data);
    if (frame.status === NO_TERMINAL) throw new RestoreFailedError(`netlink: no reply to message ${terminalSeq} (${messages.length} messages received)`);
    if (frame.status !== OK) throw new RestoreFailedError(`netlink helper: unknown status ${frame.status}`);
    return messages;
  }

  private kill(): void {
    const c = this.child;
    if (!c) return;
    this.died(new RestoreFailedError('netlink helper stopped'));
    c.kill('SIGKILL');
  }

  /** Stops the helper (idempotent). */
  close(): void {
    const c = this.child;
    if (!c) return;
    this.child = undefined;
    c.stdin.end();
    setTimeout(() => c.kill('SIGKILL'), 1000).unref();
  }
}
