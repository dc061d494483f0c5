// --streaming-connection-idle-timeout as upstream's streaming server applies it (spdystream's idle-aware framer,
// wsstream's read/write deadlines): a session over TLS with no traffic for that long is closed and its exec ended,
// over SPDY/3.1 and over WebSocket (exec and port-forward); traffic (SPDY PINGs, WebSocket pings) keeps it open.
// A short timeout here.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamingRuntime } from '../../src/cri/index.ts';
import { createStreamServer, type StreamServer } from '../../src/kubelet/streaming/index.ts';
import { FrameReader, FrameType } from '../../src/kubelet/streaming/spdy.ts';
import { silentLogger } from '../../src/lib/index.ts';
import { makeCA } from '../helpers/pki.ts';

const IDLE_MS = 600;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The first three frames kubectl 1.20 sent for an exec (SYN_STREAM error, stdout, stderr; one zlib header context).
const recorded = (JSON.parse(readFileSync(new URL('./fixtures/kubelet-streaming/frames.json', import.meta.url), 'utf8')) as { name: string; clientToServer: string }[]).find(
  (r) => r.name === 'exec',
)!;
const execBytes = Buffer.from(recorded.clientToServer, 'base64');
const synStreams = ((): Buffer => {
  let len = 0;
  for (const f of new FrameReader().push(execBytes).slice(0, 3)) len += 8 + (f.control ? f.payload.length : f.data.length);
  return execBytes.subarray(0, len);
})();
/** A client PING (odd id), as spdystream sends for keep-alive. */
const ping = (id: number): Buffer => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0x8003, 0);
  b.writeUInt16BE(FrameType.Ping, 2);
  b.writeUInt32BE(4, 4);
  b.writeUInt32BE(id, 8);
  return b;
};

describe('streaming connection idle timeout', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-idle-'));
  let server: https.Server;
  let port = 0;
  let streams: StreamServer;
  const execs: { started: number; ended?: number }[] = [];
  const clients: { destroy: () => void }[] = [];
  // An exec that prints nothing and runs until its session ends (the signal aborts).
  const runtime: StreamingRuntime = {
    assertRunning: async () => undefined,
    exec: (_id, _cmd, io) =>
      new Promise((_resolve, reject) => {
        const e: { started: number; ended?: number } = { started: Date.now() };
        execs.push(e);
        io.signal.addEventListener('abort', () => {
          e.ended = Date.now();
          reject(new Error('aborted'));
        });
      }),
    attach: async () => undefined,
    // A forwarded connection that carries nothing until its session ends.
    portForward: (_sb, _port, _stream, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())),
  };

  beforeAll(async () => {
    const ca = makeCA(dir, 'server');
    streams = createStreamServer({ runtime, log: silentLogger, idleTimeoutMs: IDLE_MS });
    server = https.createServer({ cert: ca.cert, key: ca.key });
    server.on('upgrade', (req, socket, head) =>
      streams.handleUpgrade(
        req,
        socket,
        head,
        req.url?.startsWith('/portForward/')
          ? { kind: 'portforward', sandboxId: 'sb', podUid: 'u', ports: [80] }
          : { kind: 'exec', containerId: 'c', command: ['sh'], stdin: false, stdout: true, stderr: true, tty: false },
      ),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const c of clients) c.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** An exec session over SPDY; resolves once berth's 101 arrived and the streams were sent. */
  async function spdySession(): Promise<{ socket: tls.TLSSocket; closed: Promise<number> }> {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    clients.push(socket);
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write(
      'POST /exec/default/p/c?command=sh&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    );
    let head = '';
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
    });
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    socket.on('data', () => undefined); // SYN_REPLYs and PING echoes
    socket.write(synStreams);
    return { socket, closed };
  }

  async function wsSession(p = '/exec/default/p/c?command=sh&output=1'): Promise<{ ws: WebSocket; closed: Promise<number> }> {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${p}`, ['v4.channel.k8s.io'], { rejectUnauthorized: false });
    clients.push({ destroy: () => ws.terminate() });
    const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
    ws.on('error', () => undefined);
    await new Promise((r) => ws.once('open', r));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    return { ws, closed };
  }

  const lastExec = async (): Promise<{ started: number; ended?: number }> => {
    for (let i = 0; i < 100 && !execs.at(-1); i++) await sleep(20);
    return execs.at(-1)!;
  };

  it('SPDY: a silent session is closed after the idle timeout and its exec ended', async () => {
    const n = execs.length;
    const t0 = Date.now();
    const { closed } = await spdySession();
    const at = await closed;
    expect(at - t0).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(at - t0).toBeLessThan(IDLE_MS * 4);
    expect(execs.length).toBe(n + 1);
    await sleep(100);
    expect((await lastExec()).ended).toBeDefined();
    expect(streams.activeSessions()).toBe(0);
  }, 10_000);

  it('SPDY: pings every third of the timeout keep it open; once they stop it closes', async () => {
    const { socket, closed } = await spdySession();
    let open = true;
    void closed.then(() => (open = false));
    for (let i = 0; i < 8; i++) {
      await sleep(IDLE_MS / 3);
      socket.write(ping(2 * i + 1));
    }
    expect(open).toBe(true); // 8 × 200 ms = 2.7 × the timeout, with traffic
    const stopped = Date.now();
    const at = await closed;
    expect(at - stopped).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(at - stopped).toBeLessThan(IDLE_MS * 4);
  }, 10_000);

  it('WebSocket: a silent session is closed after the idle timeout and its exec ended', async () => {
    const t0 = Date.now();
    const { closed } = await wsSession();
    const at = await closed;
    expect(at - t0).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(at - t0).toBeLessThan(IDLE_MS * 4);
    await sleep(100);
    expect((await lastExec()).ended).toBeDefined();
    expect(streams.activeSessions()).toBe(0);
  }, 10_000);

  it('WebSocket: pings keep it open; once they stop it closes', async () => {
    const { ws, closed } = await wsSession();
    let open = true;
    void closed.then(() => (open = false));
    for (let i = 0; i < 8; i++) {
      await sleep(IDLE_MS / 3);
      ws.ping();
    }
    expect(open).toBe(true);
    const stopped = Date.now();
    const at = await closed;
    expect(at - stopped).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(at - stopped).toBeLessThan(IDLE_MS * 4);
  }, 10_000);

  it('WebSocket port-forward: a silent session is closed after the idle timeout', async () => {
    const t0 = Date.now();
    const { closed } = await wsSession('/portForward/default/p?ports=80');
    const at = await closed;
    expect(at - t0).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(at - t0).toBeLessThan(IDLE_MS * 4);
    await sleep(100);
    expect(streams.activeSessions()).toBe(0);
  }, 10_000);
});
