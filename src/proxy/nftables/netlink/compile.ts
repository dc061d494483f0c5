// Berth's rule text → nf_tables expressions: the vocabulary ruleset.ts writes, compiled into the same bytecode nft
// 1.0.6 generates for that text (checked in test/unit/proxy-nft-netlink-encode.test.ts against nft's own output, and
// against a live nft in test/integration/proxy-nft-netlink.test.ts). Pure. Anything else compiles to undefined.
import { parseIPv4 } from '../../ip.ts';
import {
  type Expr,
  NF_ACCEPT,
  NF_DROP,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  NFT_DYNSET_OP_UPDATE,
  NFT_FIB_RESULT_ADDRTYPE,
  NFT_GOTO,
  NFT_JUMP,
  NFT_META_L4PROTO,
  NFT_NAT_DNAT,
  NFT_NG_RANDOM,
  NFT_PAYLOAD_NETWORK_HEADER,
  NFT_PAYLOAD_TRANSPORT_HEADER,
  NFT_RETURN,
  NFTA_FIB_F_SADDR,
  RTN_LOCAL,
  type Verdict,
} from './expr.ts';
import { NFPROTO_IPV4 } from './nlmsg.ts';

export const PROTOS: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

const REG_1 = 1;
const REG_2 = 2;
const REG_VERDICT = 0;

/** An anonymous set a rule brings along (created in the same batch, bound to the rule). */
export interface AnonSet {
  kind: 'numgen-vmap' | 'saddr-intervals';
  /** key (raw bytes) → verdict for a map; INTERVAL_END flag for interval sets. */
  elements: { key: Buffer; verdict?: Verdict; intervalEnd?: boolean }[];
}

export interface CompiledRule {
  exprs: Expr[];
  anon?: AnonSet;
  comment?: string;
}

export function ipBytes(ip: string): Buffer | undefined {
  const n = parseIPv4(ip);
  if (n === undefined) return undefined;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function u32host(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function be16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

/** `ip saddr|daddr [!=] ADDR[/LEN]` as nft compiles it: a byte-aligned prefix loads only its bytes. */
function addrMatch(offset: number, neq: boolean, cidr: string, out: Expr[]): boolean {
  const [addr, lenText] = cidr.split('/');
  const ip = ipBytes(addr!);
  if (!ip) return false;
  const len = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(len) || len < 1 || len > 32) return false;
  const op = neq ? 'neq' : 'eq';
  if (len % 8 === 0) {
    out.push({ kind: 'payload', base: NFT_PAYLOAD_NETWORK_HEADER, offset, len: len / 8, dreg: REG_1 });
    out.push({ kind: 'cmp', op, sreg: REG_1, data: ip.subarray(0, len / 8) });
    return true;
  }
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
  const masked = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) masked[i] = ip[i]! & mask[i]!;
  out.push({ kind: 'payload', base: NFT_PAYLOAD_NETWORK_HEADER, offset, len: 4, dreg: REG_1 });
  out.push({ kind: 'bitwise', sreg: REG_1, dreg: REG_1, mask, xor: Buffer.alloc(4) });
  out.push({ kind: 'cmp', op, sreg: REG_1, data: masked });
  return true;
}

export function parseVerdict(words: readonly string[]): Verdict | undefined {
  if (words.length === 1) {
    if (words[0] === 'drop') return { code: NF_DROP };
    if (words[0] === 'accept') return { code: NF_ACCEPT };
    if (words[0] === 'return') return { code: NFT_RETURN };
    return undefined;
  }
  if (words.length === 2 && (words[0] === 'jump' || words[0] === 'goto')) return { code: words[0] === 'jump' ? NFT_JUMP : NFT_GOTO, chain: words[1]! };
  return undefined;
}

/** Address ranges [start, end] (inclusive, as numbers) of a list of addresses / CIDRs, sorted and merged. */
function ranges(items: readonly string[]): [number, number][] | undefined {
  const out: [number, number][] = [];
  for (const item of items) {
    const [addr, lenText] = item.split('/');
    const ip = parseIPv4(addr!);
    const len = lenText === undefined ? 32 : Number(lenText);
    if (ip === undefined || !Number.isInteger(len) || len < 0 || len > 32) return undefined;
    const size = 2 ** (32 - len);
    const start = Math.floor((ip >>> 0) / size) * size;
    out.push([start, start + size - 1]);
  }
  out.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** nft's interval encoding: each range as start, and end + 1 flagged INTERVAL_END; a leading 0.0.0.0 end. */
function intervalElements(rs: readonly [number, number][]): AnonSet['elements'] {
  const key = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const els: AnonSet['elements'] = [];
  if (rs.length > 0 && rs[0]![0] !== 0) els.push({ key: key(0), intervalEnd: true });
  for (const [s, e] of rs) {
    els.push({ key: key(s) });
    if (e < 0xffffffff) els.push({ key: key(e + 1), intervalEnd: true });
  }
  return els;
}

/**
 * Compiles one rule of ruleset.ts's vocabulary (as written after `add rule ip kube-proxy CHAIN`) into expressions.
 * Undefined for anything else.
 */
export function compileRule(text: string): CompiledRule | undefined {
  let rest = text;
  let comment: string | undefined;
  const cm = text.endsWith('"') ? / ?comment "([^"]*)"$/.exec(rest) : null;
  if (cm) {
    comment = cm[1];
    rest = rest.slice(0, cm.index);
  }
  const exprs: Expr[] = [];
  let anon: AnonSet | undefined;
  const words = rest.split(' ').filter((w) => w !== '');
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    if (w === 'ip' && (words[i + 1] === 'daddr' || words[i + 1] === 'saddr')) {
      const offset = words[i + 1] === 'daddr' ? 16 : 12;
      let j = i + 2;
      const neq = words[j] === '!=';
      if (neq) j++;
      const arg = words[j];
      if (arg === undefined) return undefined;
      if (arg.startsWith('@')) {
        if (neq) return undefined;
        exprs.push({ kind: 'payload', base: NFT_PAYLOAD_NETWORK_HEADER, offset, len: 4, dreg: REG_1 });
        exprs.push({ kind: 'lookup', set: arg.slice(1), sreg: REG_1 });
        i = j + 1;
        continue;
      }
      if (arg === '{') {
        if (offset !== 12 || anon) return undefined;
        const close = words.indexOf('}', j);
        if (close < 0) return undefined;
        const items = words.slice(j + 1, close).map((s) => s.replace(/,$/, ''));
        const rs = ranges(items);
        if (!rs || rs.length === 0) return undefined;
        anon = { kind: 'saddr-intervals', elements: intervalElements(rs) };
        exprs.push({ kind: 'payload', base: NFT_PAYLOAD_NETWORK_HEADER, offset, len: 4, dreg: REG_1 });
        exprs.push({ kind: 'lookup', set: '__set%d', sreg: REG_1, invert: neq });
        i = close + 1;
        continue;
      }
      if (!addrMatch(offset, neq, arg, exprs)) return undefined;
      i = j + 1;
      continue;
    }
    if (PROTOS[w] !== undefined && words[i + 1] === 'dport') {
      const port = Number(words[i + 2]);
      if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
      exprs.push({ kind: 'meta', key: NFT_META_L4PROTO, dreg: REG_1 });
      exprs.push({ kind: 'cmp', op: 'eq', sreg: REG_1, data: Buffer.from([PROTOS[w]!]) });
      exprs.push({ kind: 'payload', base: NFT_PAYLOAD_TRANSPORT_HEADER, offset: 2, len: 2, dreg: REG_1 });
      exprs.push({ kind: 'cmp', op: 'eq', sreg: REG_1, data: be16(port) });
      i += 3;
      continue;
    }
    if (w === 'fib' && words[i + 1] === 'saddr' && words[i + 2] === 'type' && words[i + 3] === 'local') {
      exprs.push({ kind: 'fib', flags: NFTA_FIB_F_SADDR, result: NFT_FIB_RESULT_ADDRTYPE, dreg: REG_1 });
      exprs.push({ kind: 'cmp', op: 'eq', sreg: REG_1, data: u32host(RTN_LOCAL) });
      i += 4;
      continue;
    }
    if (w === 'numgen' && words[i + 1] === 'random' && words[i + 2] === 'mod' && words[i + 4] === 'vmap' && words[i + 5] === '{') {
      const mod = Number(words[i + 3]);
      const close = words.indexOf('}', i + 5);
      if (!Number.isInteger(mod) || mod < 1 || close !== words.length - 1 || anon) return undefined;
      const body = words.slice(i + 6, close).join(' ');
      const elements: AnonSet['elements'] = [];
      for (const item of body.split(', ')) {
        const m = /^(\d+) : (jump|goto) (\S+)$/.exec(item.trim());
        if (!m) return undefined;
        elements.push({ key: u32host(Number(m[1])), verdict: { code: m[2] === 'jump' ? NFT_JUMP : NFT_GOTO, chain: m[3]! } });
      }
      anon = { kind: 'numgen-vmap', elements };
      exprs.push({ kind: 'numgen', modulus: mod, type: NFT_NG_RANDOM, dreg: REG_1 });
      exprs.push({ kind: 'lookup', set: '__map%d', sreg: REG_1, dreg: REG_VERDICT });
      i = close + 1;
      continue;
    }
    if (w === 'update' && words[i + 1]?.startsWith('@') && words.slice(i + 2, i + 6).join(' ') === '{ ip saddr }') {
      exprs.push({ kind: 'payload', base: NFT_PAYLOAD_NETWORK_HEADER, offset: 12, len: 4, dreg: REG_1 });
      exprs.push({ kind: 'dynset', op: NFT_DYNSET_OP_UPDATE, set: words[i + 1]!.slice(1), sregKey: REG_1 });
      i += 6;
      continue;
    }
    if (w === 'meta' && words[i + 1] === 'l4proto' && PROTOS[words[i + 2]!] !== undefined && words[i + 3] === 'dnat' && words[i + 4] === 'to') {
      const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(words[i + 5] ?? '');
      const ip = m ? ipBytes(m[1]!) : undefined;
      const port = m ? Number(m[2]) : NaN;
      if (!ip || !(port >= 0 && port <= 65535) || i + 6 !== words.length) return undefined;
      exprs.push({ kind: 'meta', key: NFT_META_L4PROTO, dreg: REG_1 });
      exprs.push({ kind: 'cmp', op: 'eq', sreg: REG_1, data: Buffer.from([PROTOS[words[i + 2]!]!]) });
      exprs.push({ kind: 'immediate', dreg: REG_1, data: ip });
      exprs.push({ kind: 'immediate', dreg: REG_2, data: be16(port) });
      exprs.push({ kind: 'nat', type: NFT_NAT_DNAT, family: NFPROTO_IPV4, regAddrMin: REG_1, regProtoMin: REG_2, flags: NF_NAT_RANGE_PROTO_SPECIFIED });
      i += 6;
      continue;
    }
    const v = parseVerdict(words.slice(i));
    if (!v) return undefined;
    exprs.push({ kind: 'verdict', verdict: v });
    i = words.length;
  }
  return { exprs, anon, comment };
}

