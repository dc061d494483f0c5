// nf_tables expressions: the few berth's per-service rules use, encoded as the kernel takes them (the attributes
// nft 1.0.6 / libnftnl send for the same rule, checked against `nft --debug=mnl`), and decoded into libnftnl's
// debug form (`[ payload load 4b @ network header + 16 => reg 1 ]`, what `nft --debug=netlink` prints), so an
// encoding can be compared with nft's own and a rule dumped by the kernel can be compared with what berth wrote.
import { type NlWriter, attrMap, attrStr, attrs } from './nlmsg.ts';

export const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;

export const NF_DROP = 0;
export const NF_ACCEPT = 1;
export const NFT_JUMP = -3;
export const NFT_GOTO = -4;
export const NFT_RETURN = -5;

export const NFT_PAYLOAD_NETWORK_HEADER = 1;
export const NFT_PAYLOAD_TRANSPORT_HEADER = 2;
export const NFT_META_L4PROTO = 16;
export const NFT_FIB_RESULT_ADDRTYPE = 3;
export const NFTA_FIB_F_SADDR = 1;
export const NFTA_FIB_F_DADDR = 2;
export const NFT_NG_RANDOM = 1;
export const NFT_DYNSET_OP_UPDATE = 1;
export const NFT_NAT_DNAT = 1;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 2;
export const NFT_LOOKUP_F_INV = 1;
/** RTN_LOCAL, what `fib … type local` compares with (host byte order). */
export const RTN_LOCAL = 2;

export interface Verdict {
  code: number;
  chain?: string;
}

export type Expr =
  | { kind: 'payload'; base: number; offset: number; len: number; dreg: number }
  | { kind: 'cmp'; op: 'eq' | 'neq'; sreg: number; data: Buffer }
  | { kind: 'bitwise'; sreg: number; dreg: number; mask: Buffer; xor: Buffer }
  | { kind: 'meta'; key: number; dreg: number }
  | { kind: 'verdict'; verdict: Verdict }
  | { kind: 'immediate'; dreg: number; data: Buffer }
  | { kind: 'lookup'; set: string; setId?: number; sreg: number; dreg?: number; invert?: boolean }
  | { kind: 'fib'; flags: number; result: number; dreg: number }
  | { kind: 'numgen'; modulus: number; type: number; dreg: number }
  | { kind: 'dynset'; op: number; set: string; sregKey: number }
  | { kind: 'nat'; type: number; family: number; regAddrMin: number; regProtoMin: number; flags: number };

const CMP_OPS = { eq: 0, neq: 1 } as const;

/** A verdict as NFTA_DATA_VERDICT (used by immediates and verdict-map elements). */
export function writeVerdict(w: NlWriter, type: number, v: Verdict): void {
  const d = w.nest(type);
  const vd = w.nest(NFTA_DATA_VERDICT);
  w.u32(NFTA_VERDICT_CODE, v.code);
  if (v.chain !== undefined) w.str(NFTA_VERDICT_CHAIN, v.chain);
  w.endNest(vd);
  w.endNest(d);
}

function writeValue(w: NlWriter, type: number, b: Buffer): void {
  const d = w.nest(type);
  w.bytes(NFTA_DATA_VALUE, b);
  w.endNest(d);
}

/** One expression as an NFTA_LIST_ELEM of a rule's NFTA_RULE_EXPRESSIONS. */
export function writeExpr(w: NlWriter, e: Expr): void {
  const el = w.nest(NFTA_LIST_ELEM);
  const name = e.kind === 'verdict' ? 'immediate' : e.kind;
  w.str(NFTA_EXPR_NAME, name);
  const d = w.nest(NFTA_EXPR_DATA);
  switch (e.kind) {
    case 'payload':
      w.u32(1, e.dreg);
      w.u32(2, e.base);
      w.u32(3, e.offset);
      w.u32(4, e.len);
      break;
    case 'cmp':
      w.u32(1, e.sreg);
      w.u32(2, CMP_OPS[e.op]);
      writeValue(w, 3, e.data);
      break;
    case 'bitwise':
      w.u32(1, e.sreg);
      w.u32(2, e.dreg);
      w.u32(3, e.mask.length);
      writeValue(w, 4, e.mask);
      writeValue(w, 5, e.xor);
      break;
    case 'meta':
      w.u32(2, e.key);
      w.u32(1, e.dreg);
      break;
    case 'verdict':
      w.u32(1, 0);
      writeVerdict(w, 2, e.verdict);
      break;
    case 'immediate':
      w.u32(1, e.dreg);
      writeValue(w, 2, e.data);
      break;
    case 'lookup':
      w.u32(2, e.sreg);
      if (e.dreg !== undefined) w.u32(3, e.dreg);
      w.str(1, e.set);
      if (e.setId !== undefined) w.u32(4, e.setId);
      if (e.invert) w.u32(5, NFT_LOOKUP_F_INV);
      break;
    case 'fib':
      w.u32(1, e.dreg);
      w.u32(2, e.result);
      w.u32(3, e.flags);
      break;
    case 'numgen':
      w.u32(1, e.dreg);
      w.u32(2, e.modulus);
      w.u32(3, e.type);
      w.u32(4, 0);
      break;
    case 'dynset':
      w.u32(4, e.sregKey);
      w.u32(3, e.op);
      w.str(1, e.set);
      break;
    case 'nat':
      w.u32(1, e.type);
      w.u32(2, e.family);
      w.u32(3, e.regAddrMin);
      w.u32(5, e.regProtoMin);
      if (e.flags) w.u32(7, e.flags);
      break;
  }
  w.endNest(d);
  w.endNest(el);
}

// ---- decoding (libnftnl's debug form) -----------------------------------------------------------------------

const BASES = ['link layer header', 'network header', 'transport header', 'inner header'];
const META_KEYS: Record<number, string> = { 0: 'len', 1: 'protocol', 2: 'priority', 3: 'mark', 4: 'iif', 5: 'oif', 15: 'nfproto', 16: 'l4proto' };
const VERDICTS: Record<number, string> = { 0: 'drop', 1: 'accept', [-1]: 'continue', [-2]: 'break', [-3]: 'jump', [-4]: 'goto', [-5]: 'return' };
const FIB_RESULTS = ['unknown', 'oif', 'oifname', 'type'];

/** Data as libnftnl prints it: 4-byte words read in host (little-endian) order, "0x%08x" each. */
export function dataWords(b: Buffer): string {
  const words: string[] = [];
  for (let i = 0; i < b.length; i += 4) {
    const w = Buffer.alloc(4);
    b.copy(w, 0, i, Math.min(b.length, i + 4));
    words.push(`0x${w.readUInt32LE(0).toString(16).padStart(8, '0')}`);
  }
  return words.join(' ');
}

function u32(m: Map<number, Buffer>, t: number): number {
  const b = m.get(t);
  return b && b.length >= 4 ? b.readUInt32BE(0) : 0;
}

/** The verdict inside an NFTA_DATA_VERDICT-carrying data attribute, or the value bytes. */
export function decodeData(b: Buffer): { value?: Buffer; verdict?: Verdict } {
  const m = attrMap(attrs(b));
  const v = m.get(NFTA_DATA_VERDICT);
  if (v) {
    const vm = attrMap(attrs(v));
    return { verdict: { code: vm.get(NFTA_VERDICT_CODE)?.readInt32BE(0) ?? 0, chain: attrStr(vm.get(NFTA_VERDICT_CHAIN)) } };
  }
  return { value: m.get(NFTA_DATA_VALUE) ?? Buffer.alloc(0) };
}

export function verdictText(v: Verdict): string {
  const name = VERDICTS[v.code] ?? `verdict ${v.code}`;
  return v.chain !== undefined ? `${name} -> ${v.chain}` : name;
}

/** Anonymous sets (`__map12`, `__mapb3k9x0`) read as the template nft writes (`__map%d`), so all compare equal. */
export function anonName(name: string): string {
  return name.replace(/^(__map|__set)[0-9a-z]+$/, '$1%d');
}

/** One NFTA_LIST_ELEM expression in libnftnl's debug form. */
export function decodeExpr(elem: Buffer): string {
  const top = attrMap(attrs(elem));
  const name = attrStr(top.get(NFTA_EXPR_NAME)) ?? '?';
  const m = attrMap(attrs(top.get(NFTA_EXPR_DATA) ?? Buffer.alloc(0)));
  switch (name) {
    case 'payload':
      return `[ payload load ${u32(m, 4)}b @ ${BASES[u32(m, 2)] ?? 'unknown'} + ${u32(m, 3)} => reg ${u32(m, 1)} ]`;
    case 'cmp': {
      const ops = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'];
      return `[ cmp ${ops[u32(m, 2)] ?? '?'} reg ${u32(m, 1)} ${dataWords(decodeData(m.get(3) ?? Buffer.alloc(0)).value ?? Buffer.alloc(0))} ]`;
    }
    case 'bitwise': {
      const mask = decodeData(m.get(4) ?? Buffer.alloc(0)).value ?? Buffer.alloc(0);
      const xor = decodeData(m.get(5) ?? Buffer.alloc(0)).value ?? Buffer.alloc(0);
      return `[ bitwise reg ${u32(m, 2)} = ( reg ${u32(m, 1)} & ${dataWords(mask)} ) ^ ${dataWords(xor)} ]`;
    }
    case 'meta':
      return `[ meta load ${META_KEYS[u32(m, 2)] ?? `key ${u32(m, 2)}`} => reg ${u32(m, 1)} ]`;
    case 'immediate': {
      const d = decodeData(m.get(2) ?? Buffer.alloc(0));
      return d.verdict ? `[ immediate reg ${u32(m, 1)} ${verdictText(d.verdict)} ]` : `[ immediate reg ${u32(m, 1)} ${dataWords(d.value!)} ]`;
    }
    case 'lookup': {
      const set = anonName(attrStr(m.get(1)) ?? '');
      const dreg = m.has(3) ? ` dreg ${u32(m, 3)}` : '';
      const flags = u32(m, 5) ? ` 0x${u32(m, 5).toString(16)}` : '';
      return `[ lookup reg ${u32(m, 2)} set ${set}${dreg}${flags} ]`;
    }
    case 'fib': {
      const f = u32(m, 3);
      const parts = [f & 1 ? 'saddr' : '', f & 2 ? 'daddr' : '', f & 4 ? 'mark' : '', f & 8 ? 'iif' : '', f & 16 ? 'oif' : ''].filter(Boolean);
      return `[ fib ${parts.join(' . ')} ${FIB_RESULTS[u32(m, 2)] ?? '?'} => reg ${u32(m, 1)} ]`;
    }
    case 'numgen': {
      const off = u32(m, 4);
      return `[ numgen reg ${u32(m, 1)} = ${u32(m, 3) === NFT_NG_RANDOM ? 'random' : 'inc'} mod ${u32(m, 2)}${off ? ` offset ${off}` : ''} ]`;
    }
    case 'dynset': {
      const ops = ['add', 'update', 'delete'];
      return `[ dynset ${ops[u32(m, 3)] ?? '?'} reg_key ${u32(m, 4)} set ${anonName(attrStr(m.get(1)) ?? '')} ]`;
    }
    case 'nat': {
      const parts = [`nat ${u32(m, 1) === NFT_NAT_DNAT ? 'dnat' : 'snat'} ${u32(m, 2) === 2 ? 'ip' : `family ${u32(m, 2)}`}`];
      if (m.has(3)) parts.push(`addr_min reg ${u32(m, 3)}`);
      if (m.has(4)) parts.push(`addr_max reg ${u32(m, 4)}`);
      if (m.has(5)) parts.push(`proto_min reg ${u32(m, 5)}`);
      if (m.has(6)) parts.push(`proto_max reg ${u32(m, 6)}`);
      if (u32(m, 7)) parts.push(`flags 0x${u32(m, 7).toString(16)}`);
      return `[ ${parts.join(' ')} ]`;
    }
    default:
      return `[ ${name} ? ]`;
  }
}

/** Every expression of an NFTA_RULE_EXPRESSIONS payload, decoded. */
export function decodeExprs(list: Buffer): string[] {
  return attrs(list).map((a) => decodeExpr(a.value));
}
