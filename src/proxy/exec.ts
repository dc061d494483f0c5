// Runs an external tool (iptables-restore, conntrack, sysctl) with stdin, a timeout and an abort signal, optionally
// inside a network namespace (`nsenter --net`), so tests and benchmarks use exactly the production code path.
import { spawn } from 'node:child_process';
import { TimeoutError } from '../lib/index.ts';

export interface RunOptions {
  input?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Prefixes argv with `nsenter --net=/run/netns/<netns>` when a (named, `ip netns add`) namespace is given. Only the
 * network namespace is entered: everything run this way (iptables, conntrack, sysctl net.*) is per network
 * namespace. `ip netns exec` would also unshare the mount namespace and remount /sys, a few ms per command that a
 * node (which runs in its own namespace) never pays.
 */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns ? ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv] : [...argv];
}

/**
 * Runs argv to completion. Resolves with the exit code (non-zero is not an error here: callers interpret it).
 * Rejects when the program cannot be started (err.code ENOENT …), on timeout (TimeoutError) or abort.
 */
export function runCommand(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new TimeoutError(`${argv.join(' ')} timed out after ${opts.timeoutMs} ms`)));
    }, opts.timeoutMs);
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => reject(opts.signal?.reason));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => finish(() => reject(e)));
    child.on('close', (code, sig) =>
      finish(() =>
        resolve({
          code: code ?? (sig ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        }),
      ),
    );
    // EPIPE when the tool exits before reading all input: the exit code tells the story.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
