// Runs an external tool (iptables-restore, conntrack, sysctl) with stdin, a timeout and an abort signal, optionally
// inside a network namespace (`nsenter --net`), so tests and benchmarks use exactly the production code path.
import { spawn } from 'node:child_process';
import { RestoreFailedError, TimeoutError, errorMessage } from '../lib/index.ts';

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

/** A tool rejected the input it read on stdin. `line` is 1-based in the input; `context` holds the lines around it. */
export class InputRejectedError extends RestoreFailedError {
  readonly line: number | undefined;
  readonly context: string[];
  readonly stderr: string;
  constructor(message: string, opts: { line: number | undefined; context: string[]; stderr: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.line = opts.line;
    this.context = opts.context;
    this.stderr = opts.stderr;
  }
}

/** Lines `line`±`around` of `text`, prefixed with their numbers (the log shows what the tool rejected). */
export function extractLines(text: string, line: number, around = 3): string[] {
  const lines = text.split('\n');
  const from = Math.max(1, line - around);
  const to = Math.min(lines.length, line + around);
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${i === line ? '>' : ' '}${i}: ${lines[i - 1]}`);
  return out;
}

export interface ApplyInputOptions<E extends InputRejectedError> {
  /** The command as error messages name it, e.g. "iptables-restore" or "nft -f". */
  label: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** The failing input line as the tool's stderr reports it, if it does. */
  parseErrorLine: (stderr: string) => number | undefined;
  /** The mode's error class (callers check it with instanceof). */
  newError: (message: string, opts: { line: number | undefined; context: string[]; stderr: string; cause?: unknown }) => E;
}

/**
 * Runs argv with `text` on stdin (iptables-restore, `nft -f -`: one atomic transaction each). Resolves on exit 0.
 * Throws opts.newError when the tool cannot be run, times out or is aborted (no line, `cause` attached), or when it
 * exits non-zero (its first stderr line in the message; the failing line and the lines around it, if known).
 */
export async function applyInput<E extends InputRejectedError>(argv: readonly string[], text: string, opts: ApplyInputOptions<E>): Promise<void> {
  let r: RunResult;
  try {
    r = await runCommand(argv, { input: text, timeoutMs: opts.timeoutMs, signal: opts.signal });
  } catch (err: unknown) {
    throw opts.newError(`${opts.label} failed: ${errorMessage(err)}`, { line: undefined, context: [], stderr: '', cause: err });
  }
  if (r.code === 0) return;
  const stderr = r.stderr.trim();
  const line = opts.parseErrorLine(stderr);
  throw opts.newError(`${opts.label} exited ${r.code}: ${stderr.split('\n')[0] ?? ''}`, { line, context: line ? extractLines(text, line) : [], stderr });
}
