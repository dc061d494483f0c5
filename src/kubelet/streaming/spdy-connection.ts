// The server side of a SPDY/3.1 connection (spdystream connection.go / stream.go, as apimachinery's
// spdy.NewServerConnection uses it): client-opened streams as node Duplexes, frames handled in order, replies and
// data written with the codec of spdy.ts. No flow control, as spdystream.
import { Duplex } from 'node:stream';
import {
  FLAG_FIN,
  FrameReader,
  FrameType,
  HeaderCompressor,
  HeaderDecompressor,
  MAX_SEND_DATA_BYTES,
  RstStatus,
  SPDY_VERSION,
  type RawFrame,
  type SpdyHeaders,
  decodeHeaderBlock,
  encodeDataFrame,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  parseSynStream,
} from './spdy.ts';

/**
 * One SPDY stream as a Duplex: readable = the peer's DATA frames until its FIN; writable = our DATA frames, `end()`
 * sends an empty DATA frame with FIN (spdystream's Stream.Close). `reset()` sends RST_STREAM CANCEL.
 * A peer's RST_STREAM or the connection's end destroys the stream (readers see 'close', possibly without 'end').
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: SpdyHeaders;
  private readonly conn: SpdyConnection;
  remoteClosed = false;

  constructor(conn: SpdyConnection, id: number, headers: SpdyHeaders) {
    super({ allowHalfOpen: true });
    this.conn = conn;
    this.id = id;
    this.headers = headers;
  }

  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  override _read(): void {
    this.conn.resumeInput();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.conn.sendData(this.id, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.conn.sendData(this.id, Buffer.alloc(0), true, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.conn.forget(this.id);
    cb(err);
  }

  /** Tells the peer this stream is abandoned and drops it. */
  reset(): void {
    if (!this.destroyed) this.conn.sendRaw(encodeRstStream(this.id, RstStatus.Cancel));
    this.destroy();
  }

  /** Called by the connection for each inbound DATA frame. Returns false when the reader is full. */
  deliver(data: Buffer, fin: boolean): boolean {
    let more = true;
    if (data.length) more = this.push(data);
    if (fin) {
      this.remoteClosed = true;
      this.push(null);
    }
    return more;
  }
}

export interface SpdyConnectionOptions {
  /**
   * Called for each SYN_STREAM with the stream (headers decoded). Return true to accept (SYN_REPLY sent), false to
   * reject (SYN_REPLY with FIN, as apimachinery's spdy connection does for a handler error).
   */
  onStream: (stream: SpdyStream) => boolean;
  /** Connection-level failure (bad frame, zlib error); the connection is closed after it. */
  onError?: (err: Error) => void;
}

/**
 * The server side of a SPDY/3.1 connection over an upgraded socket (streams are opened by the client only, odd IDs).
 * `close()` sends GOAWAY and ends the socket once written; the 'close' event fires once the socket is gone.
 */
export class SpdyConnection {
  private readonly socket: Duplex;
  private readonly o: SpdyConnectionOptions;
  private readonly reader = new FrameReader();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly queue: RawFrame[] = [];
  private pumping = false;
  private lastStreamId = 0;
  private closed = false;
  private closing = false;
  private readonly closeListeners: (() => void)[] = [];
  private inputPaused = false;

  constructor(socket: Duplex, head: Buffer, o: SpdyConnectionOptions) {
    this.socket = socket;
    this.o = o;
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('end', () => this.shutdown());
    socket.on('close', () => this.shutdown());
    socket.on('error', () => this.shutdown());
    if (head.length) this.onBytes(head);
  }

  get isClosed(): boolean {
    return this.closed || this.closing;
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  private onBytes(chunk: Buffer): void {
    let frames: RawFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err: unknown) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.queue.push(...frames);
    void this.pump();
  }

  /** Handles frames in order; only header blocks are asynchronous, and nothing overtakes them. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && !this.closed) {
        const f = this.queue.shift() as RawFrame;
        await this.handle(f);
      }
    } catch (err: unknown) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
  }

  private async handle(f: RawFrame): Promise<void> {
    if (!f.control) {
      const s = this.streams.get(f.streamId);
      if (!s) return; // data for a stream we dropped: spdystream ignores it too
      const more = s.deliver(f.data, (f.flags & FLAG_FIN) !== 0);
      if (!more && !this.inputPaused) {
        this.inputPaused = true;
        this.socket.pause();
      }
      return;
    }
    if (f.version !== SPDY_VERSION) throw new Error(`spdy: unsupported version ${f.version}`);
    switch (f.type) {
      case FrameType.SynStream: {
        const syn = parseSynStream(f.payload);
        const headers = decodeHeaderBlock(await this.decompressor.decompress(syn.block));
        if (this.closed) return;
        if (syn.streamId <= this.lastStreamId || syn.streamId % 2 === 0) {
          this.sendRaw(encodeRstStream(syn.streamId, RstStatus.ProtocolError));
          return;
        }
        this.lastStreamId = syn.streamId;
        const s = new SpdyStream(this, syn.streamId, headers);
        this.streams.set(syn.streamId, s);
        if ((f.flags & FLAG_FIN) !== 0) s.deliver(Buffer.alloc(0), true);
        let accept = false;
        try {
          accept = this.o.onStream(s);
        } catch {
          accept = false;
        }
        this.sendRaw(encodeSynReply(syn.streamId, this.compressor.compress(encodeHeaderBlock({})), !accept));
        if (!accept) {
          this.streams.delete(syn.streamId);
          s.destroy();
        }
        return;
      }
      case FrameType.Headers:
      case FrameType.SynReply: {
        // Must still be inflated to keep the zlib context in step; contents unused by the kubelet protocols.
        if (f.payload.length >= 4) await this.decompressor.decompress(f.payload.subarray(4));
        return;
      }
      case FrameType.RstStream: {
        const id = f.payload.length >= 4 ? f.payload.readUInt32BE(0) & 0x7fffffff : 0;
        const s = this.streams.get(id);
        if (s) {
          this.streams.delete(id);
          s.destroy();
        }
        return;
      }
      case FrameType.Ping: {
        const id = f.payload.length >= 4 ? f.payload.readUInt32BE(0) : 0;
        if (id % 2 === 1) this.sendRaw(encodePing(id)); // the client's ping: echo it (spdystream handlePingFrame)
        return;
      }
      case FrameType.GoAway:
        this.close();
        return;
      default:
        return; // SETTINGS, WINDOW_UPDATE, unknown types: ignored as spdystream does
    }
  }

  /** Resumes reading the socket once a paused stream's reader wants more. */
  resumeInput(): void {
    if (this.inputPaused && !this.closed) {
      this.inputPaused = false;
      this.socket.resume();
    }
  }

  sendRaw(frame: Buffer, cb?: (err?: Error | null) => void): void {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) {
      cb?.(new Error('spdy connection closed'));
      return;
    }
    if (this.socket.write(frame) || !cb) {
      cb?.();
      return;
    }
    this.socket.once('drain', () => cb());
  }

  sendData(streamId: number, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (data.length <= MAX_SEND_DATA_BYTES) {
      this.sendRaw(encodeDataFrame(streamId, data, fin), cb);
      return;
    }
    for (let off = 0; off < data.length; off += MAX_SEND_DATA_BYTES) {
      const last = off + MAX_SEND_DATA_BYTES >= data.length;
      const piece = data.subarray(off, off + MAX_SEND_DATA_BYTES);
      if (last) this.sendRaw(encodeDataFrame(streamId, piece, fin), cb);
      else this.sendRaw(encodeDataFrame(streamId, piece, false));
    }
  }

  forget(streamId: number): void {
    this.streams.delete(streamId);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.o.onError?.(err);
    this.closing = true;
    this.closeNow(1);
  }

  /**
   * GOAWAY (status OK), then ends the socket after everything queued is written. Idempotent. Deferred by one turn of
   * the event loop so that stream ends (FIN frames, written from `_final` on the next tick) go out first.
   */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    setImmediate(() => this.closeNow());
  }

  private closeNow(goAwayStatus = 0): void {
    if (this.closed) return;
    if (!this.socket.destroyed && !this.socket.writableEnded) {
      this.socket.write(encodeGoAway(this.lastStreamId, goAwayStatus));
      this.socket.end();
      // A peer that never closes its side must not hold the socket open.
      const t = setTimeout(() => this.socket.destroy(), 5_000);
      t.unref();
      this.socket.once('close', () => clearTimeout(t));
    }
    this.shutdown();
  }

  /** Immediate teardown (client went away): every stream destroyed, zlib context released. Idempotent. */
  destroy(): void {
    this.socket.destroy();
    this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.destroy();
    this.streams.clear();
    this.decompressor.close();
    if (!this.socket.destroyed && this.socket.readableEnded) this.socket.end();
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
