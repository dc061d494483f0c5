// SPDY/3.1 as Go's moby/spdystream speaks it (the transport of kubectl exec/attach/port-forward between the API server
// and the kubelet): the frame codec and header blocks. The connection using them is spdy-connection.ts.
// Wire format: spdystream spdy/{types,read,write}.go. Deliberately left out, as spdystream leaves them out: flow control
// (WINDOW_UPDATE is read and ignored, never sent), priorities, SETTINGS (read and ignored), server push.
//
// Header blocks are zlib with the SPDY dictionary, one compression context per direction for the whole connection.
// Inbound blocks are inflated with node:zlib (async, in frame order). Outbound blocks are written as uncompressed
// *stored* deflate blocks: a valid continuation of one zlib stream for any inflater (Go's included), synchronous, and
// tiny (the only header block berth sends is SYN_REPLY's empty one).
import zlib from 'node:zlib';
import { SPDY_DICTIONARY } from './spdy-dictionary.ts';

export const SPDY_VERSION = 3;
export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const RstStatus = { ProtocolError: 1, InvalidStream: 2, RefusedStream: 3, Cancel: 5, InternalError: 6 } as const;
/** spdystream's MaxDataLength is 16 MiB; berth sends smaller frames so one stream cannot hog the connection. */
export const MAX_SEND_DATA_BYTES = 32 * 1024;

/** Header names are lowercase on the wire; a value with several parts is NUL-separated (kept as a list). */
export type SpdyHeaders = Record<string, string[]>;

/** One frame as read off the wire, header block still compressed. */
export type RawFrame =
  | { control: false; streamId: number; flags: number; data: Buffer }
  | { control: true; version: number; type: number; flags: number; payload: Buffer };

/** Splits a byte stream into frames; keeps partial frames across pushes. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: RawFrame[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (this.buf.length < 8 + len) break;
      const first = this.buf.readUInt32BE(0);
      const flags = this.buf[4] ?? 0;
      const body = this.buf.subarray(8, 8 + len);
      if (first & 0x80000000) {
        frames.push({ control: true, version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, payload: body });
      } else {
        frames.push({ control: false, streamId: first & 0x7fffffff, flags, data: body });
      }
      this.buf = this.buf.subarray(8 + len);
    }
    return frames;
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24) | (length & 0xffffff), 4);
  return h;
}

export function encodeDataFrame(streamId: number, data: Buffer, fin: boolean): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24) | data.length, 4);
  return data.length ? Buffer.concat([h, data]) : h;
}

export function encodeSynReply(streamId: number, block: Buffer, fin: boolean): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(streamId & 0x7fffffff, 0);
  return Buffer.concat([controlHeader(FrameType.SynReply, fin ? FLAG_FIN : 0, 4 + block.length), b, block]);
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(streamId & 0x7fffffff, 0);
  b.writeUInt32BE(status, 4);
  return Buffer.concat([controlHeader(FrameType.RstStream, 0, 8), b]);
}

export function encodePing(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(id >>> 0, 0);
  return Buffer.concat([controlHeader(FrameType.Ping, 0, 4), b]);
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(lastGoodStreamId & 0x7fffffff, 0);
  b.writeUInt32BE(status, 4);
  return Buffer.concat([controlHeader(FrameType.GoAway, 0, 8), b]);
}

/** The uncompressed name/value block: uint32 count, then uint32-length-prefixed names and values. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(headers);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(entries.length, 0);
  parts.push(n);
  for (const [name, values] of entries) {
    for (const s of [name.toLowerCase(), values.join('\0')]) {
      const b = Buffer.from(s, 'utf8');
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length, 0);
      parts.push(l, b);
    }
  }
  return Buffer.concat(parts);
}

/** Throws on a truncated block (the peer's zlib stream and ours then disagree: a protocol error). */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  let off = 0;
  const u32 = (): number => {
    if (off + 4 > block.length) throw new Error('spdy: truncated header block');
    const v = block.readUInt32BE(off);
    off += 4;
    return v;
  };
  const str = (): string => {
    const len = u32();
    if (off + len > block.length) throw new Error('spdy: truncated header block');
    const s = block.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  const count = u32();
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = str().toLowerCase();
    const values = str().split('\0');
    headers[name] = [...(headers[name] ?? []), ...values];
  }
  return headers;
}

export function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function storedBlock(piece: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = 0x00; // BFINAL=0, BTYPE=00 (stored), padded to the byte
  h.writeUInt16LE(piece.length, 1);
  h.writeUInt16LE(~piece.length & 0xffff, 3);
  return Buffer.concat([h, piece]);
}

/** Outbound header compression context: one zlib stream (dictionary announced once) of stored blocks. */
export class HeaderCompressor {
  private started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      const head = Buffer.alloc(6);
      const cmf = 0x78; // deflate, 32 KiB window
      let flg = 0x20; // FDICT, FLEVEL 0
      flg += 31 - ((cmf * 256 + flg) % 31);
      head[0] = cmf;
      head[1] = flg;
      head.writeUInt32BE(adler32(SPDY_DICTIONARY), 2);
      parts.push(head);
    }
    for (let off = 0; off < block.length; off += 0xffff) parts.push(storedBlock(block.subarray(off, off + 0xffff)));
    // The empty stored block a Z_SYNC_FLUSH ends with. Go's flate reader hands out a stored block's bytes only when
    // the next block starts; without this marker it would read past the frame's end and fail for good.
    parts.push(storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

/** Inbound header decompression context; blocks must be fed in frame order (callers serialise). */
export class HeaderDecompressor {
  private readonly inflate = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  private chunks: Buffer[] = [];
  private failure: Error | undefined;
  private pendingReject: ((err: Error) => void) | undefined;

  constructor() {
    this.inflate.on('data', (c: Buffer) => this.chunks.push(c));
    this.inflate.on('error', (err: Error) => {
      // zlib then never calls the flush callback: the pending block fails here.
      this.failure = err;
      this.pendingReject?.(err);
    });
  }

  decompress(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.pendingReject = reject;
      this.inflate.write(block);
      this.inflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        if (this.failure) return reject(this.failure);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.inflate.destroy();
  }
}

/** Parses the fixed fields of a control frame whose header block (if any) is already inflated. */
export function parseSynStream(payload: Buffer): { streamId: number; associatedTo: number; priority: number; block: Buffer } {
  if (payload.length < 10) throw new Error('spdy: short SYN_STREAM');
  return {
    streamId: payload.readUInt32BE(0) & 0x7fffffff,
    associatedTo: payload.readUInt32BE(4) & 0x7fffffff,
    priority: (payload[8] ?? 0) >> 5,
    block: payload.subarray(10),
  };
}
