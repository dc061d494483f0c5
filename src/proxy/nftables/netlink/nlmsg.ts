// Netlink message framing for nf_tables (nfnetlink subsystem NFNL_SUBSYS_NFTABLES): a growable writer for messages
// with nested attributes (each attribute 4-byte aligned, nests marked NLA_F_NESTED as libnftnl does), and a reader
// that walks messages and attributes. Pure byte work: what the attributes mean lives in expr.ts and encode.ts.

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** Set on an NLMSG_ERROR that carries extended-ack attributes. */
export const NLM_F_ACK_TLVS = 0x200;
export const NLA_F_NESTED = 0x8000;
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFPROTO_IPV4 = 2;
export const AF_UNSPEC = 0;

const HDR = 16;
const NFGEN = 4;

const align4 = (n: number): number => (n + 3) & ~3;

/** Appends netlink messages to one buffer. Sequence numbers count up from `firstSeq`. */
export class NlWriter {
  private buf: Buffer;
  private len = 0;
  private msgStart = -1;
  private seq: number;

  constructor(initialBytes = 64 * 1024, firstSeq = 1) {
    this.buf = Buffer.alloc(initialBytes);
    this.seq = firstSeq;
  }

  get length(): number {
    return this.len;
  }

  /** The next message's sequence number. */
  get nextSeq(): number {
    return this.seq;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Starts a message with an nfgenmsg header; returns its sequence number. */
  begin(type: number, flags: number, family: number, resId = 0): number {
    if (this.msgStart >= 0) throw new Error('netlink message not ended');
    this.reserve(HDR + NFGEN);
    const seq = this.seq++;
    this.msgStart = this.len;
    this.buf.writeUInt32LE(0, this.len);
    this.buf.writeUInt16LE(type, this.len + 4);
    this.buf.writeUInt16LE(flags, this.len + 6);
    this.buf.writeUInt32LE(seq, this.len + 8);
    this.buf.writeUInt32LE(0, this.len + 12);
    this.buf.writeUInt8(family, this.len + 16);
    this.buf.writeUInt8(0, this.len + 17);
    this.buf.writeUInt16BE(resId, this.len + 18);
    this.len += HDR + NFGEN;
    return seq;
  }

  end(): void {
    this.buf.writeUInt32LE(this.len - this.msgStart, this.msgStart);
    this.msgStart = -1;
  }

  private attrHeader(type: number, payload: number): number {
    this.reserve(align4(4 + payload));
    const at = this.len;
    this.buf.writeUInt16LE(4 + payload, at);
    this.buf.writeUInt16LE(type, at + 2);
    return at + 4;
  }

  private finish(payload: number): void {
    const end = this.len + align4(4 + payload);
    // At most 3 bytes of padding: a loop beats Buffer.fill's call overhead (hundreds of thousands per full sync).
    for (let i = this.len + 4 + payload; i < end; i++) this.buf[i] = 0;
    this.len = end;
  }

  /** NUL-terminated string. */
  str(type: number, s: string): void {
    // Names and rules are ASCII: one pass writes them (the UTF-8 path only for anything else).
    let ascii = true;
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    const n = ascii ? s.length : Buffer.byteLength(s);
    const at = this.attrHeader(type, n + 1);
    if (ascii) for (let i = 0; i < n; i++) this.buf[at + i] = s.charCodeAt(i);
    else this.buf.write(s, at, 'utf8');
    this.buf[at + n] = 0;
    this.finish(n + 1);
  }

  /** Big-endian u32 (nf_tables' NLA_U32 attributes are in network order). */
  u32(type: number, v: number): void {
    const at = this.attrHeader(type, 4);
    this.buf.writeUInt32BE(v >>> 0, at);
    this.finish(4);
  }

  /** Big-endian u64. */
  u64(type: number, v: bigint): void {
    const at = this.attrHeader(type, 8);
    this.buf.writeBigUInt64BE(v, at);
    this.finish(8);
  }

  bytes(type: number, b: Uint8Array): void {
    const at = this.attrHeader(type, b.length);
    this.buf.set(b, at);
    this.finish(b.length);
  }

  /** Opens a nested attribute; close it with endNest(returned offset). */
  nest(type: number): number {
    this.reserve(4);
    const at = this.len;
    this.buf.writeUInt16LE(type | NLA_F_NESTED, at + 2);
    this.len += 4;
    return at;
  }

  endNest(at: number): void {
    this.buf.writeUInt16LE(this.len - at, at);
  }

  /** A copy of everything written. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** The whole message, header included. */
  data: Buffer;
}

/** Splits a buffer of concatenated netlink messages. Throws on a truncated message. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + HDR <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < HDR || off + len > buf.length) throw new Error(`truncated netlink message at ${off} (length ${len}, have ${buf.length - off})`);
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), data: buf.subarray(off, off + len) });
    off += align4(len);
  }
  return out;
}

/** One attribute: its type (NLA_F_NESTED and byte-order bits cleared) and payload. */
export interface NlAttr {
  type: number;
  value: Buffer;
}

/** The attributes in buf[from, to). */
export function attrs(buf: Buffer, from = 0, to = buf.length): NlAttr[] {
  const out: NlAttr[] = [];
  let off = from;
  while (off + 4 <= to) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > to) break;
    out.push({ type: buf.readUInt16LE(off + 2) & 0x3fff, value: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

/** The attributes of an nf_tables message (after the netlink and nfgenmsg headers), by type (last one wins). */
export function messageAttrs(m: NlMessage): Map<number, Buffer> {
  return attrMap(attrs(m.data, HDR + NFGEN));
}

export function attrMap(list: readonly NlAttr[]): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of list) m.set(a.type, a.value);
  return m;
}

/** A NUL-terminated string attribute's text. */
export function attrStr(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
}

export interface NlError {
  /** Negative errno, 0 for an ack. */
  error: number;
  /** Sequence number of the message the error is about. */
  seq: number;
  /** The kernel's extended-ack text, when it sent one. */
  message?: string;
}

/** Reads an NLMSG_ERROR (ack or error). */
export function parseError(m: NlMessage): NlError {
  const error = m.data.readInt32LE(HDR);
  const inner = HDR + 4;
  const seq = m.data.length >= inner + HDR ? m.data.readUInt32LE(inner + 8) : m.seq;
  let message: string | undefined;
  if (m.flags & NLM_F_ACK_TLVS && m.data.length >= inner + HDR) {
    // With NETLINK_CAP_ACK only the request's header is echoed back (for errors too); TLVs follow it.
    const innerLen = m.flags & 0x100 /* NLM_F_CAPPED */ ? HDR : m.data.readUInt32LE(inner);
    for (const a of attrs(m.data, inner + align4(innerLen))) if (a.type === NLMSGERR_ATTR_MSG) message = attrStr(a.value);
  }
  return { error, seq, message };
}
