// The iptables boundary: iptables-restore / iptables-save / iptables of one backend (legacy or nft), optionally in a
// network namespace. Backend choice follows upstream's iptables-wrapper: the KUBE-IPTABLES-HINT / kubelet canary
// chain first, else the variant that already holds more rules, ties to nft.
import type { Logger } from '../lib/index.ts';
import { RestoreFailedError, errorMessage } from '../lib/index.ts';
import { InputRejectedError, applyInput, inNetns, runCommand } from './exec.ts';
import type { Table } from './rules.ts';

export type IptablesBackend = 'legacy' | 'nft';
export type BackendChoice = IptablesBackend | 'auto';

/** Consumer-side contract of what the proxy needs from iptables. */
export interface IptablesExecutor {
  readonly backend: IptablesBackend;
  /**
   * Applies restore input with `--noflush --counters` (only chains declared in the input are flushed). Each table
   * commits atomically. Throws IptablesRestoreError (code RestoreFailed) with the failing line when rejected.
   */
  restore(text: string, signal?: AbortSignal): Promise<void>;
  /** iptables-save output of all tables (or the given one). Throws RestoreFailedError when it fails. */
  save(table?: Table, signal?: AbortSignal): Promise<string>;
  /** Whether `chain` exists in `table` (the canary check). Throws RestoreFailedError on other failures. */
  chainExists(table: Table, chain: string, signal?: AbortSignal): Promise<boolean>;
  /** The `iptables --version` line, e.g. "iptables v1.8.9 (nf_tables)". */
  version(): Promise<string>;
}

/** iptables-restore rejected its input. `line` is 1-based in the input; `context` holds the lines around it. */
export class IptablesRestoreError extends InputRejectedError {}

/** The failing line number from iptables-restore's stderr (both variants), if any. */
export function parseRestoreErrorLine(stderr: string): number | undefined {
  const m = /Error occurred at line: (\d+)/.exec(stderr) ?? /line (\d+) failed/.exec(stderr) ?? /\bline (\d+):/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

export { extractLines } from './exec.ts';

interface Binaries {
  restore: string;
  save: string;
  iptables: string;
}

export interface ExecutorOptions {
  backend: IptablesBackend;
  /** Run every command inside this network namespace (tests, benchmarks). */
  netns?: string;
  /** Restore of a large rule set on nft can take a minute. */
  restoreTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Resolved binary names (default: looked up on PATH). */
  binaries?: Binaries;
}

/** Restore flags as upstream (pkg/util/iptables): wait for the xtables lock 5 s, keep foreign chains, counters. */
const RESTORE_FLAGS = ['-w', '5', '--noflush', '--counters'];

export class CommandIptablesExecutor implements IptablesExecutor {
  readonly backend: IptablesBackend;
  private readonly netns: string | undefined;
  private readonly bin: Binaries;
  private readonly restoreTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(opts: ExecutorOptions & { binaries: Binaries }) {
    this.backend = opts.backend;
    this.netns = opts.netns;
    this.bin = opts.binaries;
    this.restoreTimeoutMs = opts.restoreTimeoutMs ?? 300_000;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
  }

  async restore(text: string, signal?: AbortSignal): Promise<void> {
    await applyInput(inNetns(this.netns, [this.bin.restore, ...RESTORE_FLAGS]), text, {
      label: this.bin.restore,
      timeoutMs: this.restoreTimeoutMs,
      signal,
      parseErrorLine: parseRestoreErrorLine,
      newError: (message, opts) => new IptablesRestoreError(message, opts),
    });
  }

  async save(table?: Table, signal?: AbortSignal): Promise<string> {
    const argv = inNetns(this.netns, table ? [this.bin.save, '-t', table] : [this.bin.save]);
    let r;
    try {
      r = await runCommand(argv, { timeoutMs: this.commandTimeoutMs, signal });
    } catch (err: unknown) {
      throw new RestoreFailedError(`${this.bin.save} failed: ${errorMessage(err)}`, { cause: err });
    }
    if (r.code !== 0) throw new RestoreFailedError(`${this.bin.save} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async chainExists(table: Table, chain: string, signal?: AbortSignal): Promise<boolean> {
    const argv = inNetns(this.netns, [this.bin.iptables, '-w', '5', '-t', table, '-S', chain]);
    let r;
    try {
      r = await runCommand(argv, { timeoutMs: this.commandTimeoutMs, signal });
    } catch (err: unknown) {
      throw new RestoreFailedError(`${this.bin.iptables} -S failed: ${errorMessage(err)}`, { cause: err });
    }
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw new RestoreFailedError(`${this.bin.iptables} -t ${table} -S ${chain} exited ${r.code}: ${r.stderr.trim()}`);
  }

  async version(): Promise<string> {
    const r = await runCommand(inNetns(this.netns, [this.bin.iptables, '--version']), { timeoutMs: this.commandTimeoutMs });
    return r.stdout.trim();
  }
}

/** Whether the tool can be started (spawn resolves it on PATH; ENOENT means it is not installed). */
async function installed(name: string): Promise<boolean> {
  try {
    return (await runCommand([name, '--version'], { timeoutMs: 10_000 })).code === 0;
  } catch {
    return false;
  }
}

/** iptables-<variant>-restore when installed, else the plain names when `iptables --version` says that variant. */
export async function resolveBinaries(backend: IptablesBackend): Promise<Binaries | undefined> {
  const v = `iptables-${backend}`;
  if ((await installed(`${v}-restore`)) && (await installed(`${v}-save`)) && (await installed(v))) {
    return { restore: `${v}-restore`, save: `${v}-save`, iptables: v };
  }
  if (!(await installed('iptables-restore'))) return undefined;
  try {
    const r = await runCommand(['iptables', '--version'], { timeoutMs: 10_000 });
    const isNft = r.stdout.includes('nf_tables');
    if ((backend === 'nft') === isNft) return { restore: 'iptables-restore', save: 'iptables-save', iptables: 'iptables' };
  } catch {
    // not usable
  }
  return undefined;
}

const HINT = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m;

function countRules(save: string): number {
  let n = 0;
  for (let i = save.indexOf('\n-'); i >= 0; i = save.indexOf('\n-', i + 1)) n++;
  if (save.startsWith('-')) n++;
  return n;
}

/** iptables-wrapper's choice. Pure. `undefined` = variant not installed or its save failed. */
export function chooseBackend(saves: { legacy: string | undefined; nft: string | undefined }): { backend: IptablesBackend; reason: string } {
  if (saves.nft !== undefined && HINT.test(saves.nft)) return { backend: 'nft', reason: 'hint chain found in nft tables' };
  if (saves.legacy !== undefined && HINT.test(saves.legacy)) return { backend: 'legacy', reason: 'hint chain found in legacy tables' };
  if (saves.nft === undefined && saves.legacy !== undefined) return { backend: 'legacy', reason: 'only legacy iptables is installed' };
  if (saves.legacy === undefined) return { backend: 'nft', reason: 'legacy iptables is not installed' };
  const legacy = countRules(saves.legacy);
  const nft = countRules(saves.nft ?? '');
  if (legacy > nft) return { backend: 'legacy', reason: `legacy tables hold more rules (${legacy} > ${nft})` };
  return { backend: 'nft', reason: `nft tables hold at least as many rules (${nft} >= ${legacy})` };
}

export interface CreateExecutorOptions extends Omit<ExecutorOptions, 'backend' | 'binaries'> {
  backend: BackendChoice;
  log: Logger;
}

/**
 * Picks the backend (detecting when `auto`), resolves its binaries and logs which one is used.
 * Throws RestoreFailedError when the requested variant is not installed.
 */
export async function createIptablesExecutor(opts: CreateExecutorOptions): Promise<CommandIptablesExecutor> {
  let backend: IptablesBackend;
  let reason: string;
  if (opts.backend === 'auto') {
    const saves: { legacy: string | undefined; nft: string | undefined } = { legacy: undefined, nft: undefined };
    for (const b of ['legacy', 'nft'] as const) {
      const bin = await resolveBinaries(b);
      if (!bin) continue;
      try {
        const r = await runCommand(inNetns(opts.netns, [bin.save]), { timeoutMs: 30_000 });
        if (r.code === 0) saves[b] = r.stdout;
      } catch (err: unknown) {
        opts.log.debug({ err, backend: b }, 'iptables-save failed during backend detection');
      }
    }
    ({ backend, reason } = chooseBackend(saves));
  } else {
    backend = opts.backend;
    reason = 'configured';
  }
  const binaries = await resolveBinaries(backend);
  if (!binaries) throw new RestoreFailedError(`iptables ${backend} variant is not installed`);
  opts.log.info({ backend, reason, restore: binaries.restore, netns: opts.netns }, 'using iptables backend');
  return new CommandIptablesExecutor({ ...opts, backend, binaries });
}

/** --random-fully needs iptables ≥ 1.6.2 (upstream checks the version the same way). Pure. */
export function supportsRandomFully(versionLine: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj !== 1) return maj > 1;
  if (min !== 6) return min > 6;
  return patch >= 2;
}
