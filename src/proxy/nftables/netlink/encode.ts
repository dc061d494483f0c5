// Berth's per-service nf_tables objects as netlink messages: rules (compiled by compile.ts), anonymous sets bound to
// them, map/set elements with the kernel's concatenated-key layout (every component padded to 4 bytes), affinity
// sets, chains, and the batch that wraps them (NFNL_MSG_BATCH_BEGIN … END). Pure. A rule outside the vocabulary
// is refused and the caller writes that transaction with nft instead; the fixed setup (buildSetup) is always
// written by nft.
import { FAMILY, TABLE } from '../names.ts';
import type { NftAffinitySet, NftElement } from '../ruleset.ts';
import { type AnonSet, type CompiledRule, PROTOS, compileRule, ipBytes, parseVerdict } from './compile.ts';
import { NFTA_DATA_VALUE, NFTA_LIST_ELEM, type Verdict, writeExpr, writeVerdict } from './expr.ts';
import {
  AF_UNSPEC,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO_IPV4,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_ECHO,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NlWriter,
} from './nlmsg.ts';

export { compileRule };

export const NFT_MSG_NEWTABLE = 0;
export const NFT_MSG_GETTABLE = 1;
export const NFT_MSG_NEWCHAIN = 3;
export const NFT_MSG_GETCHAIN = 4;
export const NFT_MSG_DELCHAIN = 5;
export const NFT_MSG_NEWRULE = 6;
export const NFT_MSG_GETRULE = 7;
export const NFT_MSG_DELRULE = 8;
export const NFT_MSG_NEWSET = 9;
export const NFT_MSG_GETSET = 10;
export const NFT_MSG_DELSET = 11;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_GETSETELEM = 13;
export const NFT_MSG_DELSETELEM = 14;
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;

/** The nfnetlink message type of an nf_tables message. */
export const nftType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

const NFTA_TABLE_NAME = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_RULE_USERDATA = 7;
const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_KEY_TYPE = 4;
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_DATA_TYPE = 6;
const NFTA_SET_DATA_LEN = 7;
const NFTA_SET_DESC = 9;
const NFTA_SET_ID = 10;
const NFTA_SET_TIMEOUT = 11;
const NFTA_SET_USERDATA = 13;
const NFTA_SET_DESC_SIZE = 1;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_LIST_SET_ID = 4;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
const NFTA_SET_ELEM_USERDATA = 6;
const NFT_SET_ELEM_INTERVAL_END = 1;

const NFT_SET_ANONYMOUS = 0x1;
const NFT_SET_CONSTANT = 0x2;
const NFT_SET_INTERVAL = 0x4;
const NFT_SET_MAP = 0x8;
const NFT_SET_TIMEOUT = 0x10;
const NFT_SET_EVAL = 0x20;
const NFT_DATA_VERDICT = 0xffffff00;
/** nft's datatype ids, kept in NFTA_SET_KEY_TYPE for its own listing. */
const TYPE_INTEGER = 4;
const TYPE_IPADDR = 7;

// nft's set user data (NFTNL_UDATA_SET_*), copied from what nft 1.0.6 sends: without the key byte order nft would
// list a numgen map's keys as big-endian numbers and an address set's keys as integers.
const UDATA_IPADDR_SET = Buffer.from([0x00, 0x04, 0x02, 0x00, 0x00, 0x00]);
const UDATA_NUMGEN_VMAP = Buffer.from('000401000000010400000000040800040100000001000604' + '00000000', 'hex');
const UDATA_SADDR_INTERVALS = Buffer.from('00040200000002040100000003140004070000000' + '10c00040c00000001040b000000', 'hex');

/** nftnl user data holding one string (type 0: a rule's or an element's comment), NUL included. */
function commentUdata(text: string): Buffer {
  const s = Buffer.from(`${text}\0`, 'utf8');
  if (s.length > 255) throw new Error(`comment too long: ${text}`);
  return Buffer.concat([Buffer.from([0, s.length]), s]);
}

/** A fixed map's/set's key as nft prints it ("10.96.0.1 . tcp . 80", "tcp . 30080", "10.96.0.1") → key bytes. */
export function elementKeyBytes(key: string): Buffer | undefined {
  const parts = key.split(' . ');
  const out: Buffer[] = [];
  for (const p of parts) {
    const proto = PROTOS[p];
    if (proto !== undefined) {
      out.push(Buffer.from([proto, 0, 0, 0]));
      continue;
    }
    if (/^\d+$/.test(p)) {
      const n = Number(p);
      if (n > 65535) return undefined;
      out.push(Buffer.from([n >> 8, n & 0xff, 0, 0]));
      continue;
    }
    const ip = ipBytes(p);
    if (!ip) return undefined;
    out.push(ip);
  }
  return Buffer.concat(out);
}

/** "goto X" / "jump X" / "drop" / "accept" → a verdict; "" → none (a plain set). */
export function elementVerdict(value: string): Verdict | undefined | null {
  if (value === '') return undefined;
  return parseVerdict(value.split(' ')) ?? null;
}

/** Elements per NEWSETELEM/DELSETELEM message: small enough that an error still names few elements. */
const ELEMENTS_PER_MESSAGE = 64;

/** What the batch holds, for the proxier's reports. */
export interface BatchStats {
  messages: number;
  rules: number;
}

/**
 * One nf_tables transaction under construction. The messages ask for no ack: the kernel reports only errors, then an
 * ack for the last message (NLM_F_ACK) once the batch was committed or aborted. The first message carries NLM_F_ECHO:
 * the kernel decides whether to echo the commit's generation (NFT_MSG_NEWGEN) by the first message after
 * BATCH_BEGIN (nf_tables_gen_notify reads nlmsg_hdr of the batch), so the commit's generation id comes back too,
 * along with that one object.
 */
export class NftBatch {
  private readonly w: NlWriter;
  private readonly described = new Map<number, string>();
  private nextSetId = 1;
  private readonly t = `${FAMILY} ${TABLE}`;
  readonly stats: BatchStats = { messages: 0, rules: 0 };
  private lastSeq = 0;
  private ended = false;
  private readonly anon: AnonNames | undefined;
  private readonly anonSetSeqs = new Set<number>();

  /**
   * `anon`: name anonymous sets `__map<prefix><n>` / `__set<prefix><n>` instead of the template `__map%d` the
   * kernel fills in (nf_tables_set_alloc_name: a sscanf over every set of the table, then a strcmp walk). Each
   * new anonymous set still costs walks over all sets of the table (NEWSET's name check and name allocation, the
   * rule's lookup by name; its elements are sent by set id only, which skips a fourth), so a first sync of 10k
   * numgen maps stays quadratic in the kernel (perf: nf_tables_newset, nft_set_lookup_global): ≈ 3 walks per set
   * with concrete names against ≈ 5 with the template. Concrete names go with NLM_F_EXCL: a name already in the
   * table fails with EEXIST (see anonSetSeq) instead of being taken for an update.
   */
  constructor(firstSeq: number, anon?: AnonNames) {
    this.anon = anon;
    this.w = new NlWriter(256 * 1024, firstSeq);
    this.w.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    this.w.end();
  }

  get byteLength(): number {
    return this.w.length;
  }

  private begin(msg: number, flags: number, what: string): void {
    const seq = this.w.begin(nftType(msg), NLM_F_REQUEST | flags, NFPROTO_IPV4);
    this.described.set(seq, what);
    this.lastSeq = seq;
    this.stats.messages++;
  }

  private chainMsg(msg: number, flags: number, chain: string, what: string): void {
    this.begin(msg, flags, what);
    this.w.str(NFTA_CHAIN_TABLE, TABLE);
    this.w.str(NFTA_CHAIN_NAME, chain);
    this.w.end();
  }

  addChain(chain: string): void {
    this.chainMsg(NFT_MSG_NEWCHAIN, NLM_F_CREATE, chain, `add chain ${this.t} ${chain}`);
  }

  deleteChain(chain: string): void {
    this.chainMsg(NFT_MSG_DELCHAIN, 0, chain, `delete chain ${this.t} ${chain}`);
  }

  /** DELRULE with a chain and no handle: every rule of the chain. */
  flushChain(chain: string): void {
    this.begin(NFT_MSG_DELRULE, 0, `flush chain ${this.t} ${chain}`);
    this.w.str(NFTA_RULE_TABLE, TABLE);
    this.w.str(NFTA_RULE_CHAIN, chain);
    this.w.end();
  }

  /** Appends a rule; false (nothing written) when the rule is outside the encoder's vocabulary. */
  addRule(chain: string, rule: string): boolean {
    const c = compileRule(rule);
    if (!c) return false;
    this.addCompiledRule(chain, rule, c);
    return true;
  }

  addCompiledRule(chain: string, rule: string, c: CompiledRule): void {
    let setId: number | undefined;
    let anonSetName: string | undefined;
    if (c.anon) [setId, anonSetName] = this.anonSet(c.anon, `add rule ${this.t} ${chain} ${rule}`);
    this.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, `add rule ${this.t} ${chain} ${rule}`);
    this.w.str(NFTA_RULE_TABLE, TABLE);
    this.w.str(NFTA_RULE_CHAIN, chain);
    const list = this.w.nest(NFTA_RULE_EXPRESSIONS);
    for (const e of c.exprs) writeExpr(this.w, e.kind === 'lookup' && e.set.endsWith('%d') ? { ...e, set: anonSetName ?? e.set, setId } : e);
    this.w.endNest(list);
    if (c.comment !== undefined) this.w.bytes(NFTA_RULE_USERDATA, commentUdata(c.comment));
    this.w.end();
    this.stats.rules++;
  }

  private anonSet(a: AnonSet, what: string): [number, string] {
    const id = this.nextSetId++;
    const base = a.kind === 'numgen-vmap' ? '__map' : '__set';
    const name = this.anon ? `${base}${this.anon.prefix}${this.anon.next++}` : `${base}%d`;
    this.begin(NFT_MSG_NEWSET, this.anon ? NLM_F_CREATE | NLM_F_EXCL : NLM_F_CREATE, what);
    this.anonSetSeqs.add(this.lastSeq);
    this.w.str(NFTA_SET_TABLE, TABLE);
    this.w.str(NFTA_SET_NAME, name);
    if (a.kind === 'numgen-vmap') {
      this.w.u32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
      this.w.u32(NFTA_SET_KEY_TYPE, TYPE_INTEGER);
      this.w.u32(NFTA_SET_KEY_LEN, 4);
      this.w.u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
      this.w.u32(NFTA_SET_DATA_LEN, 0);
    } else {
      this.w.u32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL);
      this.w.u32(NFTA_SET_KEY_TYPE, TYPE_IPADDR);
      this.w.u32(NFTA_SET_KEY_LEN, 4);
    }
    this.w.u32(NFTA_SET_ID, id);
    const desc = this.w.nest(NFTA_SET_DESC);
    this.w.u32(NFTA_SET_DESC_SIZE, a.elements.length);
    this.w.endNest(desc);
    this.w.bytes(NFTA_SET_USERDATA, a.kind === 'numgen-vmap' ? UDATA_NUMGEN_VMAP : UDATA_SADDR_INTERVALS);
    this.w.end();

    // By id only: with a name the kernel would first walk every set of the table for it (nft_set_lookup_global).
    this.begin(NFT_MSG_NEWSETELEM, NLM_F_CREATE, what);
    this.w.str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
    this.w.u32(NFTA_SET_ELEM_LIST_SET_ID, id);
    const list = this.w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    for (const e of a.elements) {
      const el = this.w.nest(NFTA_LIST_ELEM);
      if (e.intervalEnd) this.w.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
      const k = this.w.nest(NFTA_SET_ELEM_KEY);
      this.w.bytes(NFTA_DATA_VALUE, e.key);
      this.w.endNest(k);
      if (e.verdict) writeVerdict(this.w, NFTA_SET_ELEM_DATA, e.verdict);
      this.w.endNest(el);
    }
    this.w.endNest(list);
    this.w.end();
    return [id, name];
  }

  /** An affinity set: `{ type ipv4_addr ; flags dynamic,timeout ; timeout Ns ; }`. */
  addAffinitySet(s: NftAffinitySet): void {
    this.begin(NFT_MSG_NEWSET, NLM_F_CREATE, `add set ${this.t} ${s.name} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.timeoutSeconds}s ; }`);
    this.w.str(NFTA_SET_TABLE, TABLE);
    this.w.str(NFTA_SET_NAME, s.name);
    this.w.u32(NFTA_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
    this.w.u32(NFTA_SET_KEY_TYPE, TYPE_IPADDR);
    this.w.u32(NFTA_SET_KEY_LEN, 4);
    this.w.u32(NFTA_SET_ID, this.nextSetId++);
    this.w.u64(NFTA_SET_TIMEOUT, BigInt(s.timeoutSeconds) * 1000n);
    this.w.bytes(NFTA_SET_USERDATA, UDATA_IPADDR_SET);
    this.w.end();
  }

  deleteSet(name: string): void {
    this.begin(NFT_MSG_DELSET, 0, `delete set ${this.t} ${name}`);
    this.w.str(NFTA_SET_TABLE, TABLE);
    this.w.str(NFTA_SET_NAME, name);
    this.w.end();
  }

  /**
   * Adds or deletes elements of berth's fixed sets and maps (grouped per set, a few dozen per message). False when
   * an element cannot be encoded (nothing is written then).
   */
  elements(add: boolean, elements: readonly NftElement[]): boolean {
    const bySet = new Map<string, { e: NftElement; key: Buffer; verdict: Verdict | undefined }[]>();
    for (const e of elements) {
      const key = elementKeyBytes(e.key);
      const verdict = add ? elementVerdict(e.value) : undefined;
      if (!key || verdict === null) return false;
      let l = bySet.get(e.set);
      if (!l) bySet.set(e.set, (l = []));
      l.push({ e, key, verdict });
    }
    for (const [set, items] of bySet) {
      for (let i = 0; i < items.length; i += ELEMENTS_PER_MESSAGE) {
        const chunk = items.slice(i, i + ELEMENTS_PER_MESSAGE);
        const text = chunk.map((c) => (add ? `${c.e.key}${c.e.comment ? ` comment "${c.e.comment}"` : ''}${c.e.value ? ` : ${c.e.value}` : ''}` : c.e.key)).join(', ');
        this.begin(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE : 0, `${add ? 'add' : 'delete'} element ${this.t} ${set} { ${text} }`);
        this.w.str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
        this.w.str(NFTA_SET_ELEM_LIST_SET, set);
        const list = this.w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        for (const c of chunk) {
          const el = this.w.nest(NFTA_LIST_ELEM);
          const k = this.w.nest(NFTA_SET_ELEM_KEY);
          this.w.bytes(NFTA_DATA_VALUE, c.key);
          this.w.endNest(k);
          if (c.verdict) writeVerdict(this.w, NFTA_SET_ELEM_DATA, c.verdict);
          if (add && c.e.comment) this.w.bytes(NFTA_SET_ELEM_USERDATA, commentUdata(c.e.comment));
          this.w.endNest(el);
        }
        this.w.endNest(list);
        this.w.end();
      }
    }
    return true;
  }

  /**
   * Closes the batch. The last real message carries NLM_F_ACK: its ack (after the commit or abort) ends the
   * transport's wait. Undefined when the batch holds nothing.
   */
  finish(): EncodedBatch | undefined {
    if (this.ended) throw new Error('batch already finished');
    this.ended = true;
    if (this.stats.messages === 0) return undefined;
    const buf = this.w.toBuffer();
    // NLM_F_ECHO on the first message (after BATCH_BEGIN), NLM_F_ACK on the last: walk the headers.
    const first = buf.readUInt32LE(0);
    buf.writeUInt16LE(buf.readUInt16LE(first + 6) | NLM_F_ECHO, first + 6);
    let off = 0;
    let last = 0;
    while (off < buf.length) {
      last = off;
      off += (buf.readUInt32LE(off) + 3) & ~3;
    }
    buf.writeUInt16LE(buf.readUInt16LE(last + 6) | NLM_F_ACK, last + 6);
    const end = new NlWriter(32, this.w.nextSeq);
    end.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    end.end();
    const described = this.described;
    const anonSetSeqs = this.anonSetSeqs;
    return {
      bytes: Buffer.concat([buf, end.toBuffer()]),
      lastSeq: this.lastSeq,
      nextSeq: this.w.nextSeq + 1,
      describe: (seq) => described.get(seq),
      anonSetSeq: (seq) => anonSetSeqs.has(seq),
      stats: this.stats,
    };
  }
}

/** Concrete names for anonymous sets: `prefix` unique to the writer (no two berth processes share one). */
export interface AnonNames {
  prefix: string;
  next: number;
}

export interface EncodedBatch {
  bytes: Buffer;
  /** Sequence number of the last nf_tables message (the one that asks for the closing ack). */
  lastSeq: number;
  /** First sequence number free after this batch. */
  nextSeq: number;
  /** The nft statement a message stands for (what an error names). */
  describe(seq: number): string | undefined;
  /** Whether message `seq` creates an anonymous set (a name clash there is the writer's to resolve). */
  anonSetSeq(seq: number): boolean;
  stats: BatchStats;
}

/** A request that is not part of a batch (get, dump). */
export function encodeRequest(seq: number, msg: number, flags: number, fill: (w: NlWriter) => void): Buffer {
  const w = new NlWriter(256, seq);
  w.begin(nftType(msg), NLM_F_REQUEST | flags, NFPROTO_IPV4);
  fill(w);
  w.end();
  return w.toBuffer();
}

export const ATTR = { NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS, NFTA_RULE_USERDATA, NFTA_SET_TABLE, NFTA_SET_NAME, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA, NFTA_SET_FLAGS, NFTA_SET_TIMEOUT } as const;
