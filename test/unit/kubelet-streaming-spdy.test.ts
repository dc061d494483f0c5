// SPDY/3.1 framing against a recorded exchange: fixtures/kubelet-streaming/frames.json holds the raw bytes of real
// kubectl 1.20 (client-go + moby/spdystream, zlib header blocks from Go's compress/zlib) talking to berth's streaming
// server, recorded by fixtures/kubelet-streaming/record.ts (exec with exit 3, exec -i, port-forward).
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  FrameReader,
  FrameType,
  HeaderCompressor,
  HeaderDecompressor,
  adler32,
  decodeHeaderBlock,
  encodeDataFrame,
  encodeHeaderBlock,
  encodeRstStream,
  encodeSynReply,
  parseSynStream,
  type RawFrame,
} from '../../src/kubelet/streaming/spdy.ts';
import { SpdyConnection, type SpdyStream } from '../../src/kubelet/streaming/spdy-connection.ts';
import { SPDY_DICTIONARY } from '../../src/kubelet/streaming/spdy-dictionary.ts';

interface Recording {
  name: string;
  request: { url: string; headers: Record<string, string> };
  clientToServer: string;
  serverToClient: string;
}
const recordings = JSON.parse(readFileSync(new URL('./fixtures/kubelet-streaming/frames.json', import.meta.url), 'utf8')) as Recording[];
const rec = (name: string): Recording => {
  const r = recordings.find((x) => x.name === name);
  if (!r) throw new Error(`no recording ${name}`);
  return r;
};
const clientBytes = (name: string): Buffer => Buffer.from(rec(name).clientToServer, 'base64');
const serverFrames = (name: string): Buffer => {
  const b = Buffer.from(rec(name).serverToClient, 'base64');
  return b.subarray(b.indexOf('\r\n\r\n') + 4);
};

/** Decodes a byte stream of frames into readable records (header blocks inflated in order, one context). */
async function describeFrames(bytes: Buffer): Promise<string[]> {
  const z = new HeaderDecompressor();
  const out: string[] = [];
  for (const f of new FrameReader().push(bytes)) {
    if (!f.control) out.push(`DATA ${f.streamId}${f.flags & 1 ? ' FIN' : ''} ${JSON.stringify(f.data.toString())}`);
    else if (f.type === FrameType.SynStream) {
      const s = parseSynStream(f.payload);
      out.push(`SYN_STREAM ${s.streamId} ${JSON.stringify(decodeHeaderBlock(await z.decompress(s.block)))}`);
    } else if (f.type === FrameType.SynReply) {
      out.push(`SYN_REPLY ${f.payload.readUInt32BE(0)}${f.flags & 1 ? ' FIN' : ''} ${JSON.stringify(decodeHeaderBlock(await z.decompress(f.payload.subarray(4))))}`);
    } else out.push(`CTRL ${f.type} ${f.payload.toString('hex')}`);
  }
  z.close();
  return out;
}

describe('SPDY dictionary', () => {
  it('is the spec dictionary kubectl announces (adler32 0xe3c6a7c2 in its first header block)', () => {
    expect(SPDY_DICTIONARY.length).toBe(1423);
    expect(adler32(SPDY_DICTIONARY)).toBe(0xe3c6a7c2);
    const first = new FrameReader().push(clientBytes('exec'))[0] as Extract<RawFrame, { control: true }>;
    const block = parseSynStream(first.payload).block;
    expect(block.readUInt32BE(2)).toBe(0xe3c6a7c2); // zlib FDICT id right after CMF/FLG
  });
});

describe('reading frames kubectl sent', () => {
  it('decodes the exec streams kubectl opens (error, stdout, stderr), then only its teardown frames', async () => {
    const frames = await describeFrames(clientBytes('exec'));
    expect(frames.slice(0, 3)).toEqual([
      'SYN_STREAM 1 {"streamtype":["error"]}',
      'SYN_STREAM 3 {"streamtype":["stdout"]}',
      'SYN_STREAM 5 {"streamtype":["stderr"]}',
    ]);
    // Then, as the client tears down: RST_STREAM CANCEL (status 5) for its streams and GOAWAY, in timing order.
    for (const f of frames.slice(3)) expect(f).toMatch(/^CTRL (3 0000000[135]00000005|7 0000000000000000)$/);
  });

  it('decodes stdin data and its FIN (exec -i)', async () => {
    const frames = await describeFrames(clientBytes('exec-stdin'));
    expect(frames.slice(0, 6)).toEqual([
      'SYN_STREAM 1 {"streamtype":["error"]}',
      'SYN_STREAM 3 {"streamtype":["stdin"]}',
      'SYN_STREAM 5 {"streamtype":["stdout"]}',
      'SYN_STREAM 7 {"streamtype":["stderr"]}',
      'DATA 3 "hello"',
      'DATA 3 FIN ""',
    ]);
  });

  it('decodes the port-forward pair headers (port, requestid, streamtype) and the request bytes', async () => {
    const frames = await describeFrames(clientBytes('portforward'));
    expect(frames[0]).toBe('SYN_STREAM 1 {"streamtype":["error"],"port":["80"],"requestid":["0"]}');
    expect(frames).toContain('SYN_STREAM 3 {"streamtype":["data"],"port":["80"],"requestid":["0"]}');
    expect(frames.find((f) => f.startsWith('DATA 3 "GET / HTTP/1.1'))).toBeDefined();
  });

  it('reassembles frames split at every byte boundary', () => {
    const bytes = clientBytes('exec-stdin');
    const whole = new FrameReader().push(bytes);
    const r = new FrameReader();
    const pieces: RawFrame[] = [];
    for (let i = 0; i < bytes.length; i++) pieces.push(...r.push(bytes.subarray(i, i + 1)));
    expect(pieces).toEqual(whole);
  });
});

describe('frames berth writes', () => {
  it('replays what kubectl accepted: SYN_REPLYs, output, FINs, the v4 status and GOAWAY', async () => {
    expect(await describeFrames(serverFrames('exec'))).toEqual([
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'DATA 3 "ok\\n"',
      'DATA 5 "warn\\n"',
      'DATA 3 FIN ""',
      'DATA 5 FIN ""',
      'DATA 1 "{\\"metadata\\":{},\\"status\\":\\"Failure\\",\\"message\\":\\"command terminated with non-zero exit code: Error executing in Docker Container: 3\\",\\"reason\\":\\"NonZeroExitCode\\",\\"details\\":{\\"causes\\":[{\\"reason\\":\\"ExitCode\\",\\"message\\":\\"3\\"}]}}"',
      'DATA 1 FIN ""',
      'CTRL 7 0000000500000000',
    ]);
  });

  it('encodes control and data frames byte for byte as spdystream does', () => {
    expect(encodeDataFrame(3, Buffer.from('ok'), true).toString('hex')).toBe('00000003' + '01000002' + '6f6b');
    expect(encodeRstStream(5, 5).toString('hex')).toBe('80030003' + '00000008' + '00000005' + '00000005');
    const reply = encodeSynReply(1, Buffer.from([0xaa]), true);
    expect(reply.subarray(0, 12).toString('hex')).toBe('80030002' + '01000005' + '00000001');
  });

  it('header blocks form one zlib stream that a stateful inflater (like Go’s) reads block after block', () => {
    const c = new HeaderCompressor();
    const blocks = [encodeHeaderBlock({}), encodeHeaderBlock({ streamtype: ['error'], port: ['80'] }), encodeHeaderBlock({ a: ['x', 'y'] })];
    const wire = blocks.map((b) => c.compress(b));
    // Each block ends with the sync-flush marker (Go's flate reader needs it to hand out a stored block's bytes).
    for (const w of wire) expect(w.subarray(-5).toString('hex')).toBe('000000ffff');
    const inflated = zlib.inflateSync(Buffer.concat(wire), { dictionary: SPDY_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(inflated).toEqual(Buffer.concat(blocks));
    expect(decodeHeaderBlock(blocks[2] as Buffer)).toEqual({ a: ['x', 'y'] });
  });
});

describe('SpdyConnection', () => {
  it('serves a recorded client byte stream: streams arrive with headers, stdin data and FIN reach the reader', async () => {
    const socket = new PassThrough();
    const written: Buffer[] = [];
    const fake = Object.assign(socket, { write: (b: Buffer) => (written.push(b), true) });
    const seen: SpdyStream[] = [];
    const conn = new SpdyConnection(fake, Buffer.alloc(0), { onStream: (s) => (seen.push(s), true) });
    const bytes = clientBytes('exec-stdin');
    // feed only up to the client's GOAWAY-free prefix: the 4 SYN_STREAMs and the stdin data + FIN
    const frames = new FrameReader().push(bytes);
    let len = 0;
    for (const f of frames.slice(0, 6)) len += 8 + (f.control ? f.payload.length : f.data.length);
    socket.emit('data', bytes.subarray(0, len));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((s) => s.header('streamtype'))).toEqual(['error', 'stdin', 'stdout', 'stderr']);
    const stdin = seen[1] as SpdyStream;
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect(await describeFrames(Buffer.concat(written))).toEqual(['SYN_REPLY 1 {}', 'SYN_REPLY 3 {}', 'SYN_REPLY 5 {}', 'SYN_REPLY 7 {}']);
    conn.destroy();
  });

  it('rejects a stream the handler refuses with a SYN_REPLY carrying FIN', async () => {
    const socket = new PassThrough();
    const written: Buffer[] = [];
    const fake = Object.assign(socket, { write: (b: Buffer) => (written.push(b), true) });
    const conn = new SpdyConnection(fake, Buffer.alloc(0), { onStream: () => false });
    const first = new FrameReader().push(clientBytes('exec'))[0] as Extract<RawFrame, { control: true }>;
    socket.emit('data', clientBytes('exec').subarray(0, 8 + first.payload.length));
    await new Promise((r) => setTimeout(r, 50));
    expect(await describeFrames(Buffer.concat(written))).toEqual(['SYN_REPLY 1 FIN {}']);
    conn.destroy();
  });

  it('answers a corrupt header block with GOAWAY PROTOCOL_ERROR and closes', async () => {
    const socket = new PassThrough();
    const written: Buffer[] = [];
    const fake = Object.assign(socket, { write: (b: Buffer) => (written.push(b), true), end: () => fake });
    let failed: Error | undefined;
    const conn = new SpdyConnection(fake, Buffer.alloc(0), { onStream: () => true, onError: (e) => (failed = e) });
    const bad = Buffer.concat([Buffer.from('8003000100000012', 'hex'), Buffer.from('00000001000000000000', 'hex'), Buffer.from('deadbeefdeadbeef', 'hex')]);
    socket.emit('data', bad);
    await new Promise((r) => setTimeout(r, 50));
    expect(failed).toBeInstanceOf(Error);
    expect(Buffer.concat(written).toString('hex')).toBe('80030007' + '00000008' + '00000000' + '00000001');
    expect(conn.isClosed).toBe(true);
  });
});
