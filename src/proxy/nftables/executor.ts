// The nft boundary: one `nft -f -` process per transaction (input on stdin), `nft list table ip kube-proxy` on
// full syncs, `nft list chain` for the canary, optionally inside a network namespace (as the iptables executor).
import { RestoreFailedError, errorMessage } from '../../lib/index.ts';
import { InputRejectedError, applyInput, inNetns, runCommand } from '../exec.ts';
import { CANARY_CHAIN, FAMILY, TABLE } from './names.ts';

/** Consumer-side contract of what the nftables proxier needs from nft. */
export interface NftExecutor {
  /** Applies one transaction atomically. Throws NftError (code RestoreFailed) with the failing line. */
  apply(text: string, signal?: AbortSignal): Promise<void>;
  /** `nft list table ip kube-proxy`; "" when the table does not exist. Throws RestoreFailedError otherwise. */
  listTable(signal?: AbortSignal): Promise<string>;
  /**
   * Whether the canary chain is still there (`nft flush ruleset` or `nft delete table` behind berth's back remove
   * it). Cheap: lists chain names only. Throws RestoreFailedError when nft fails.
   */
  canaryPresent(signal?: AbortSignal): Promise<boolean>;
  /** `nft --version` */
  version(): Promise<string>;
}

/** nft rejected a transaction. `line` is 1-based in the input; `context` holds the lines around it. */
export class NftError extends InputRejectedError {}

/** nft's errors read "/dev/stdin:12:3-10: Error: …" (or "-:12:…"). */
export function parseNftErrorLine(stderr: string): number | undefined {
  const m = /^[^:\n]*:(\d+):\d+(?:-\d+)?: Error/m.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

const NOT_FOUND = /No such file or directory/;

export class CommandNftExecutor implements NftExecutor {
  private readonly netns: string | undefined;
  private readonly bin: string;
  private readonly applyTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(opts: { netns?: string; binary?: string; applyTimeoutMs?: number; commandTimeoutMs?: number } = {}) {
    this.netns = opts.netns;
    this.bin = opts.binary ?? 'nft';
    this.applyTimeoutMs = opts.applyTimeoutMs ?? 300_000;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
  }

  async apply(text: string, signal?: AbortSignal): Promise<void> {
    await applyInput(inNetns(this.netns, [this.bin, '-f', '-']), text, {
      label: 'nft -f',
      timeoutMs: this.applyTimeoutMs,
      signal,
      parseErrorLine: parseNftErrorLine,
      newError: (message, opts) => new NftError(message, opts),
    });
  }

  async listTable(signal?: AbortSignal): Promise<string> {
    const r = await this.run(['list', 'table', FAMILY, TABLE], signal);
    if (r.code === 0) return r.stdout;
    if (NOT_FOUND.test(r.stderr)) return '';
    throw new RestoreFailedError(`nft list table exited ${r.code}: ${r.stderr.trim()}`);
  }

  /**
   * Berth's chains as `nft list chains ip` prints them (names only, no rules): the cheap listing. nft 1.0.6 builds
   * its full cache (every anonymous set with its elements) for `list table`, `list chain` and even `list tables`:
   * seconds of kernel time at 10k Services; listing chains costs ~0.2 s there.
   */
  private async chainNames(signal?: AbortSignal): Promise<Set<string> | undefined> {
    const r = await this.run(['list', 'chains', FAMILY], signal);
    if (r.code !== 0) throw new RestoreFailedError(`nft list chains exited ${r.code}: ${r.stderr.trim()}`);
    let inTable = false;
    let found: Set<string> | undefined;
    for (const raw of r.stdout.split('\n')) {
      const line = raw.trim();
      if (line.startsWith('table ')) {
        inTable = line === `table ${FAMILY} ${TABLE} {`;
        if (inTable) found ??= new Set();
        continue;
      }
      const m = /^chain (\S+) \{$/.exec(line);
      if (inTable && m) found!.add(m[1]!);
    }
    return found;
  }

  /** Whether berth's table exists. */
  async tableExists(signal?: AbortSignal): Promise<boolean> {
    return (await this.chainNames(signal)) !== undefined;
  }

  async canaryPresent(signal?: AbortSignal): Promise<boolean> {
    return (await this.chainNames(signal))?.has(CANARY_CHAIN) ?? false;
  }

  async version(): Promise<string> {
    return (await this.run(['--version'])).stdout.trim();
  }

  private async run(args: string[], signal?: AbortSignal): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      return await runCommand(inNetns(this.netns, [this.bin, ...args]), { timeoutMs: this.commandTimeoutMs, signal });
    } catch (err: unknown) {
      throw new RestoreFailedError(`nft ${args.join(' ')} failed: ${errorMessage(err)}`, { cause: err });
    }
  }
}

/** Whether nft can be run (the nftables mode needs it). */
export async function nftInstalled(bin = 'nft'): Promise<boolean> {
  try {
    return (await runCommand([bin, '--version'], { timeoutMs: 10_000 })).code === 0;
  } catch {
    return false;
  }
}

/** Deletes berth's whole table (upstream CleanupLeftovers). Returns whether it existed. */
export async function deleteTable(opts: { netns?: string; signal?: AbortSignal } = {}): Promise<boolean> {
  const ex = new CommandNftExecutor({ netns: opts.netns });
  if (!(await ex.tableExists(opts.signal))) return false;
  await ex.apply(`delete table ${FAMILY} ${TABLE}\n`, opts.signal);
  return true;
}
