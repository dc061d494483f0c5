// Sync planning for the nftables mode: (committed state, changed Services) → one transaction as steps (NftOp),
// rendered as `nft -f` text (opsText) or as netlink messages (netlink/ops.ts), and the state it leaves once the
// kernel accepted it. The committed state lives in memory (NftState): chain contents,
// map/set elements with the service ports that own them, affinity sets, and stale chains. A partial plan touches
// only the changed Services' chains and elements; a full plan reconciles everything against the listed table.
// Stale chains are flushed at once and deleted by a later sync (upstream: a map element's reference to a chain
// is released by the kernel a moment after the element is deleted, so deleting the chain in the same
// transaction can fail on kernels before 6.2).
import { isServiceObjectName, T } from './names.ts';
import type { ObservedTable } from './listing.ts';
import {
  BASE_CHAINS,
  ELEMENT_CONTAINERS,
  type NftAffinitySet,
  type NftContext,
  type NftElement,
  type NftServicePort,
  affinitySetStatement,
  buildSetup,
  elementStatements,
} from './ruleset.ts';

export interface NftStats {
  chainsWritten: number;
  /** Chains flushed because no Service uses them any more (deleted by a later sync). */
  chainsDeleted: number;
  /** Stale chains deleted by this transaction. */
  staleChainsDeleted: number;
  rulesWritten: number;
  elementsAdded: number;
  elementsDeleted: number;
  setsAdded: number;
  setsDeleted: number;
}

/**
 * One step of a transaction, rendered either as nft text (opsText) or as netlink messages (netlink/apply.ts).
 * `setup` is the fixed part (buildSetup), always written as text.
 */
export type NftOp =
  | { op: 'setup'; lines: readonly string[] }
  | { op: 'addChain'; chain: string }
  | { op: 'flushChain'; chain: string }
  | { op: 'deleteChain'; chain: string }
  | { op: 'addRules'; chain: string; rules: readonly string[] }
  | { op: 'addSet'; set: NftAffinitySet }
  | { op: 'deleteSet'; set: string }
  | { op: 'elements'; add: boolean; elements: readonly NftElement[] };

/** A transaction as `nft -f` input ("" when it holds nothing). */
export function opsText(ops: readonly NftOp[]): string {
  const out: string[] = [];
  for (const o of ops) {
    switch (o.op) {
      case 'setup':
        out.push(...o.lines);
        break;
      case 'addChain':
        out.push(`add chain ${T} ${o.chain}`);
        break;
      case 'flushChain':
        out.push(`flush chain ${T} ${o.chain}`);
        break;
      case 'deleteChain':
        out.push(`delete chain ${T} ${o.chain}`);
        break;
      case 'addRules':
        for (const r of o.rules) out.push(`add rule ${T} ${o.chain} ${r}`);
        break;
      case 'addSet':
        out.push(affinitySetStatement(o.set));
        break;
      case 'deleteSet':
        out.push(`delete set ${T} ${o.set}`);
        break;
      case 'elements':
        elementStatements(o.add ? 'add' : 'delete', o.elements, out);
        break;
    }
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}

export interface NftPlan {
  /** `nft -f` input; "" when the kernel already matches. A large full sync is split (see Tx.texts): `texts`. */
  text: string;
  /** The transactions to apply in order (one, or none when `text` is ""), as nft text. */
  texts: string[];
  /** The same transactions as steps (texts[i] = opsText(transactions[i])). */
  transactions: NftOp[][];
  stats: NftStats;
  /** Makes the state what the kernel holds after `text` was applied. Call only after it succeeded. */
  commit(): void;
}

const SEP = '\t';

function sameRules(listed: readonly string[], wanted: readonly string[]): boolean {
  if (listed.length !== wanted.length) return false;
  for (let i = 0; i < listed.length; i++) if (listed[i] !== listedForm(wanted[i]!)) return false;
  return true;
}

/** What berth last committed to its table. Mutated only through NftPlan.commit. */
export class NftState {
  /** Service "ns/name" → its ports' objects. */
  services = new Map<string, readonly NftServicePort[]>();
  /** Chain → its rules joined by "\n". */
  chains = new Map<string, string>();
  /** "set\tkey" → the element in the kernel. */
  elements = new Map<string, NftElement>();
  /** "set\tkey" → owning service port key → the element it wants (first owner wins). */
  owners = new Map<string, Map<string, NftElement>>();
  /** Affinity set → timeout seconds. */
  affinity = new Map<string, number>();
  /** Flushed chain → when (ms). */
  stale = new Map<string, number>();
}

function emptyStats(): NftStats {
  return { chainsWritten: 0, chainsDeleted: 0, staleChainsDeleted: 0, rulesWritten: 0, elementsAdded: 0, elementsDeleted: 0, setsAdded: 0, setsDeleted: 0 };
}

/** The transaction in the order nft needs: objects exist before anything references them, and are unreferenced before deletion. */
class Tx {
  readonly staleDeletes: string[] = [];
  readonly addChains: string[] = [];
  /** Chains written in full: [flush first, name, rules]. */
  readonly blocks: [boolean, string, readonly string[]][] = [];
  /** Chains no Service uses any more. */
  readonly flushes: string[] = [];
  readonly setDeletes: string[] = [];
  readonly addSets: NftAffinitySet[] = [];
  readonly elemDeletes: NftElement[] = [];
  readonly elemAdds: NftElement[] = [];
  readonly stats = emptyStats();

  writeChain(name: string, rules: readonly string[], mode: 'new' | 'flush'): void {
    if (mode === 'new') this.addChains.push(name);
    this.blocks.push([mode === 'flush', name, rules]);
    this.stats.chainsWritten++;
    this.stats.rulesWritten += rules.length;
  }

  private blockOps(from: number, to: number, out: NftOp[]): void {
    for (let i = from; i < to; i++) {
      const [flush, name, rules] = this.blocks[i]!;
      if (flush) out.push({ op: 'flushChain', chain: name });
      if (rules.length > 0) out.push({ op: 'addRules', chain: name, rules });
    }
  }

  /**
   * The transaction, or several when it writes more than `chunkRules` rules. The kernel checks every rule's
   * anonymous set against the whole pending transaction, so one transaction grows quadratically (10k Services ×
   * 2 endpoints: ~30 s of kernel time in one, a few seconds in chunks). Chunks stay safe for traffic: new chains are
   * created first and only referenced once the last chunk adds the map elements; a rewritten chain is flushed
   * and refilled within one chunk; stale chains are flushed with the elements that pointed to them.
   */
  transactions(head: readonly string[] = [], chunkRules = Infinity): NftOp[][] {
    this.stats.elementsAdded = this.elemAdds.length;
    this.stats.elementsDeleted = this.elemDeletes.length;
    const first: NftOp[] = [];
    if (head.length > 0) first.push({ op: 'setup', lines: head });
    for (const c of this.staleDeletes) first.push({ op: 'deleteChain', chain: c });
    for (const c of this.addChains) first.push({ op: 'addChain', chain: c });
    const flushes: NftOp[] = this.flushes.map((c) => ({ op: 'flushChain', chain: c }));
    const addSets: NftOp[] = this.addSets.map((set) => ({ op: 'addSet', set }));
    const elemDeletes: NftOp[] = this.elemDeletes.length > 0 ? [{ op: 'elements', add: false, elements: this.elemDeletes }] : [];
    const elemAdds: NftOp[] = this.elemAdds.length > 0 ? [{ op: 'elements', add: true, elements: this.elemAdds }] : [];
    // A set deleted for recreation is still referenced until its chains are rewritten: keep that in one transaction.
    if (this.stats.rulesWritten <= chunkRules || this.setDeletes.length > 0) {
      // One transaction, in dependency order: chains, flushes, set changes, element deletes, rules, element adds.
      const out = [...first];
      for (const [flush, name] of this.blocks) if (flush) out.push({ op: 'flushChain', chain: name });
      out.push(...flushes, ...this.setDeletes.map((set): NftOp => ({ op: 'deleteSet', set })), ...addSets, ...elemDeletes);
      for (const [, name, rules] of this.blocks) if (rules.length > 0) out.push({ op: 'addRules', chain: name, rules });
      out.push(...elemAdds);
      return out.length > 0 ? [out] : [];
    }
    // Affinity sets first too: rules in the chunks refer to them.
    const txs: NftOp[][] = [[...first, ...addSets]];
    let start = 0;
    let count = 0;
    for (let i = 0; i < this.blocks.length; i++) {
      count += this.blocks[i]![2].length;
      if (count >= chunkRules || i === this.blocks.length - 1) {
        const out: NftOp[] = [];
        this.blockOps(start, i + 1, out);
        txs.push(out);
        start = i + 1;
        count = 0;
      }
    }
    const last = [...flushes, ...elemDeletes, ...elemAdds];
    if (last.length > 0) txs.push(last);
    return txs;
  }
}

function planOf(txs: NftOp[][], stats: NftStats, commit: () => void): NftPlan {
  const texts = txs.map(opsText).filter((t) => t !== '');
  return { text: texts.join(''), texts, transactions: txs, stats, commit };
}

/** A rule as nft lists it: an anonymous set of one element is printed without braces. */
export function listedForm(rule: string): string {
  return rule.includes(' { ') ? rule.replace(/ (!= )?\{ ([^,{}]+) \} (drop|accept|return)/, (_m, neg: string | undefined, v: string, verdict: string) => ` ${neg ?? ''}${v} ${verdict}`) : rule;
}

function elementKey(e: NftElement): string {
  return e.set + SEP + e.key;
}

function firstOwner(m: Map<string, NftElement> | undefined): NftElement | undefined {
  if (!m) return undefined;
  for (const e of m.values()) return e;
  return undefined;
}

function staleReady(state: NftState, now: number, delayMs: number, keep: (chain: string) => boolean, tx: Tx): string[] {
  const deleted: string[] = [];
  for (const [chain, at] of state.stale) {
    if (at > now - delayMs || keep(chain)) continue;
    tx.staleDeletes.push(chain);
    tx.stats.staleChainsDeleted++;
    deleted.push(chain);
  }
  return deleted;
}

/**
 * Partial sync: `changes` maps each changed Service to its ports' objects now (empty = deleted). Reads `state`,
 * does not change it until commit(). Stale chains flushed at least `staleDelayMs` ago are deleted.
 */
export function planPartial(state: NftState, changes: ReadonlyMap<string, readonly NftServicePort[]>, now: number, staleDelayMs = 1000): NftPlan {
  const tx = new Tx();
  const nextChains = new Map<string, string>();
  const oldChains = new Set<string>();
  const nextSets = new Map<string, NftAffinitySet>();
  const oldSets = new Set<string>();
  const touched = new Map<string, Map<string, NftElement>>();

  for (const [name, next] of changes) {
    const prev = state.services.get(name) ?? [];
    for (const p of prev) {
      for (const c of p.chains) oldChains.add(c.name);
      for (const s of p.affinitySets) oldSets.add(s.name);
      for (const e of p.elements) {
        const k = elementKey(e);
        let m = touched.get(k);
        if (!m) touched.set(k, (m = new Map(state.owners.get(k))));
        m.delete(p.key);
      }
    }
    for (const p of next) {
      // A changed affinity timeout recreates the set: every chain of the port is rewritten so nothing refers to it.
      const retimed = p.affinitySets.some((s) => state.affinity.has(s.name) && state.affinity.get(s.name) !== s.timeoutSeconds);
      for (const s of p.affinitySets) nextSets.set(s.name, s);
      for (const c of p.chains) {
        const content = c.rules.join('\n');
        nextChains.set(c.name, content);
        const committed = state.chains.get(c.name);
        if (committed === undefined) tx.writeChain(c.name, c.rules, 'new');
        else if (committed !== content || retimed) tx.writeChain(c.name, c.rules, 'flush');
      }
      for (const e of p.elements) {
        const k = elementKey(e);
        let m = touched.get(k);
        if (!m) touched.set(k, (m = new Map(state.owners.get(k))));
        m.set(p.key, e);
      }
    }
  }
  const flushed: string[] = [];
  for (const c of oldChains) {
    if (nextChains.has(c)) continue;
    tx.flushes.push(c);
    tx.stats.chainsDeleted++;
    flushed.push(c);
  }
  const deletedSets: string[] = [];
  for (const s of oldSets) {
    const n = nextSets.get(s);
    if (n && n.timeoutSeconds === state.affinity.get(s)) continue;
    tx.setDeletes.push(s);
    tx.stats.setsDeleted++;
    if (!n) deletedSets.push(s);
  }
  for (const [name, s] of nextSets) {
    if (state.affinity.get(name) === s.timeoutSeconds) continue;
    tx.addSets.push(s);
    tx.stats.setsAdded++;
  }
  const elementUpdates: [string, NftElement | undefined][] = [];
  for (const [k, owners] of touched) {
    const want = firstOwner(owners);
    const have = state.elements.get(k);
    if (want?.value === have?.value && (want === undefined) === (have === undefined) && want?.comment === have?.comment) continue;
    if (have) tx.elemDeletes.push(have);
    if (want) tx.elemAdds.push(want);
    elementUpdates.push([k, want]);
  }
  const staleDeleted = staleReady(state, now, staleDelayMs, (c) => nextChains.has(c), tx);
  return planOf(tx.transactions(), tx.stats, () => {
    for (const c of staleDeleted) state.stale.delete(c);
    for (const c of flushed) {
      state.chains.delete(c);
      state.stale.set(c, now);
    }
    for (const [c, content] of nextChains) {
      state.chains.set(c, content);
      state.stale.delete(c);
    }
    for (const s of deletedSets) state.affinity.delete(s);
    for (const [name, s] of nextSets) state.affinity.set(name, s.timeoutSeconds);
    for (const [k, owners] of touched) {
      if (owners.size > 0) state.owners.set(k, owners);
      else state.owners.delete(k);
    }
    for (const [k, e] of elementUpdates) {
      if (e) state.elements.set(k, e);
      else state.elements.delete(k);
    }
    for (const [name, next] of changes) {
      if (next.length > 0) state.services.set(name, next);
      else state.services.delete(name);
    }
  });
}

/**
 * Full sync: every Service's objects (`all`) against the listed table (`observed`). Writes the fixed part, then
 * only what differs: chains whose rules differ, elements missing or different, sets missing; flushes chains no
 * Service uses (stale) and deletes those flushed at least `staleDelayMs` ago. `recreateBaseChains`: delete and
 * recreate the observed base chains first (upstream does so once after start, so changed priorities apply).
 */
export function planFull(opts: {
  state: NftState;
  all: ReadonlyMap<string, readonly NftServicePort[]>;
  observed: ObservedTable;
  ctx: NftContext;
  now: number;
  recreateBaseChains: boolean;
  staleDelayMs?: number;
  /** Rules per transaction above which a full sync is split (default 5000). */
  chunkRules?: number;
}): NftPlan {
  const { state, all, observed, now } = opts;
  const delay = opts.staleDelayMs ?? 1000;
  const tx = new Tx();
  const recreate = opts.recreateBaseChains
    ? BASE_CHAINS.filter((b) => observed.chains.has(b.name)).map((b) => b.name)
    : BASE_CHAINS.filter((b) => {
        const o = observed.chains.get(b.name)?.base;
        return o !== undefined && (o.type !== b.type || o.hook !== b.hook || o.priority !== b.priority);
      }).map((b) => b.name);
  const head = buildSetup(opts.ctx, { recreateBaseChains: recreate });

  const chains = new Map<string, string>();
  const owners = new Map<string, Map<string, NftElement>>();
  const affinity = new Map<string, number>();
  for (const ports of all.values()) {
    for (const p of ports) {
      const retimed = p.affinitySets.some((s) => {
        const o = observed.sets.get(s.name);
        return o !== undefined && o.timeoutSeconds !== s.timeoutSeconds;
      });
      for (const s of p.affinitySets) {
        affinity.set(s.name, s.timeoutSeconds);
        const o = observed.sets.get(s.name);
        if (o && o.timeoutSeconds !== s.timeoutSeconds) {
          tx.setDeletes.push(s.name);
          tx.stats.setsDeleted++;
        }
        if (!o || o.timeoutSeconds !== s.timeoutSeconds) {
          tx.addSets.push(s);
          tx.stats.setsAdded++;
        }
      }
      for (const c of p.chains) {
        const content = c.rules.join('\n');
        chains.set(c.name, content);
        const o = observed.chains.get(c.name);
        if (!o) tx.writeChain(c.name, c.rules, 'new');
        else if (retimed || !sameRules(o.rules, c.rules)) tx.writeChain(c.name, c.rules, 'flush');
      }
      for (const e of p.elements) {
        const k = elementKey(e);
        let m = owners.get(k);
        if (!m) owners.set(k, (m = new Map()));
        m.set(p.key, e);
      }
    }
  }
  const stale = new Map<string, number>();
  for (const [name, o] of observed.chains) {
    if (!isServiceObjectName(name) || chains.has(name)) continue;
    const since = state.stale.get(name);
    if (o.rules.length === 0 && since !== undefined && since <= now - delay) {
      tx.staleDeletes.push(name);
      tx.stats.staleChainsDeleted++;
      continue;
    }
    if (o.rules.length > 0) {
      tx.flushes.push(name);
      tx.stats.chainsDeleted++;
    }
    stale.set(name, o.rules.length > 0 || since === undefined ? now : since);
  }
  for (const name of observed.sets.keys()) {
    if (!isServiceObjectName(name) || affinity.has(name)) continue;
    tx.setDeletes.push(name);
    tx.stats.setsDeleted++;
  }
  const elements = new Map<string, NftElement>();
  for (const [k, m] of owners) elements.set(k, firstOwner(m)!);
  for (const set of ELEMENT_CONTAINERS) {
    const o = observed.sets.get(set)?.elements;
    if (!o) continue;
    for (const [key, value] of o) {
      const want = elements.get(set + SEP + key);
      if (!want || want.value !== value) tx.elemDeletes.push({ set, key, value });
    }
  }
  for (const e of elements.values()) {
    const o = observed.sets.get(e.set)?.elements.get(e.key);
    if (o === undefined || o !== e.value) tx.elemAdds.push(e);
  }
  return planOf(tx.transactions(head, opts.chunkRules ?? 5000), tx.stats, () => {
    state.services = new Map(all);
    state.chains = chains;
    state.owners = owners;
    state.elements = elements;
    state.affinity = affinity;
    state.stale = stale;
  });
}
