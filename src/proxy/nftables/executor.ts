// The nft boundary: one `nft -f -` process per transaction (input on stdin), `nft list table ip kube-proxy` on
// full syncs, `nft list chain` for the canary, optionally inside a network namespace (as the iptables executor);
// and, by default, the netlink path beside it (netlink/: a python3 helper holding a NETLINK_NETFILTER socket), which
// the proxier uses for everything per-service and for the canary when it can be started.
import { RestoreFailedError, errorMessage } from '../../lib/index.ts';
import { applyInput, inNetns, runCommand } from '../exec.ts';
import { NftError } from './errors.ts';
import { NftNetlink } from './netlink/client.ts';
import { NetlinkTransport, NetlinkUnavailableError } from './netlink/transport.ts';
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
  /**
   * The netlink path, started on the first call (the helper process runs until close()). Undefined when this
   * executor has none or it cannot run (no python3): `netlinkUnavailable` then says why. Never throws.
   */
  netlink?(): Promise<NftNetlink | undefined>;
  /** Why netlink() gave undefined. */
  readonly netlinkUnavailable?: string | undefined;
  /** Stops the helper process, if any (idempotent; stop() of the proxier calls it). */
  close?(): void;
}

export { NftError };

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
  private readonly transport: 'netlink' | 'nft';
  private readonly python: string | undefined;
  private nl: NftNetlink | undefined;
  netlinkUnavailable: string | undefined;

  /**
   * `transport`: 'netlink' (default) offers the netlink path through netlink(); 'nft' writes everything with nft
   * (the bench compares the two). `python`: the interpreter for the helper (default python3).
   */
  constructor(opts: { netns?: string; binary?: string; applyTimeoutMs?: number; commandTimeoutMs?: number; transport?: 'netlink' | 'nft'; python?: string } = {}) {
    this.netns = opts.netns;
    this.bin = opts.binary ?? 'nft';
    this.applyTimeoutMs = opts.applyTimeoutMs ?? 300_000;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
    this.transport = opts.transport ?? 'netlink';
    this.python = opts.python;
    if (this.transport === 'nft') this.netlinkUnavailable = 'transport nft chosen';
  }

  async netlink(): Promise<NftNetlink | undefined> {
    if (this.nl) return this.nl;
    if (this.transport === 'nft') return undefined;
    const t = new NetlinkTransport({ netns: this.netns, python: this.python, timeoutMs: this.applyTimeoutMs });
    try {
      await t.start();
    } catch (err: unknown) {
      this.netlinkUnavailable = err instanceof NetlinkUnavailableError ? err.message : `netlink helper failed to start: ${errorMessage(err)}`;
      t.close();
      return undefined;
    }
    this.nl = new NftNetlink(t, { concreteAnonNames: true });
    return this.nl;
  }

  close(): void {
    this.nl?.transport.close();
    this.nl = undefined;
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

  /** Through netlink (one GETCHAIN) when the netlink path is up, else `nft list chains`. */
  async canaryPresent(signal?: AbortSignal): Promise<boolean> {
    if (this.nl) return this.nl.chainExists(CANARY_CHAIN, signal);
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
