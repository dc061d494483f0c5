// The WebSocket transports (upstream apiserver/pkg/util/wsstream conn.go as used by the kubelet's remotecommand and
// portforward websocket.go): every message starts with a channel byte (or, in the base64 variants, an ASCII digit
// followed by base64). exec/attach channels: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5.channel.k8s.io adds
// a close message [255, channel] (a client's stdin EOF). port-forward: per requested port i, data = 2i, error = 2i+1,
// each opened by a 2-byte little-endian port number from the server.
import type { IncomingMessage } from 'node:http';
import { Duplex, PassThrough, Writable } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { writeHttpError } from './http.ts';
import { type RemoteSession, encodeStatus, readResizes } from './remotecommand.ts';

export const REMOTECOMMAND_WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
/** `portforward.k8s.io` is accepted as a binary alias besides upstream's v4 names. */
export const PORTFORWARD_WS_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'portforward.k8s.io'];
const CLOSE_CHANNEL = 255;

/** wsstream handshake: the first offered protocol the server allows; no offer means '' (binary, v1 semantics). */
export function negotiateWebSocketProtocol(offered: string[], allowed: string[]): string | undefined {
  if (offered.length === 0) return '';
  return offered.find((p) => allowed.includes(p));
}

export function isBase64Protocol(protocol: string): boolean {
  return protocol.includes('base64');
}

export function encodeChannelMessage(protocol: string, channel: number, data: Buffer): Buffer | string {
  if (isBase64Protocol(protocol)) return String.fromCharCode(48 + channel) + data.toString('base64');
  return Buffer.concat([Buffer.from([channel]), data]);
}

export function decodeChannelMessage(protocol: string, msg: Buffer, isBinary: boolean): { channel: number; data: Buffer } | undefined {
  if (msg.length === 0) return undefined;
  if (isBase64Protocol(protocol) && !isBinary) {
    const text = msg.toString('latin1');
    return { channel: text.charCodeAt(0) - 48, data: Buffer.from(text.slice(1), 'base64') };
  }
  return { channel: msg[0] ?? 0, data: msg.subarray(1) };
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (protocols) => [...protocols][0] ?? false });

/**
 * Completes the WebSocket handshake with `protocol` (already negotiated) or answers 403 as x/net/websocket does when
 * none fits. Resolves with the socket, or undefined when the handshake did not happen.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, allowed: string[]): Promise<{ ws: WebSocket; protocol: string } | undefined> {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const protocol = negotiateWebSocketProtocol(offered, allowed);
  if (protocol === undefined) {
    writeHttpError(socket, 403, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${allowed.join(' ')}]`);
    return Promise.resolve(undefined);
  }
  if (protocol === '') delete req.headers['sec-websocket-protocol'];
  else req.headers['sec-websocket-protocol'] = protocol;
  return new Promise((resolve) => {
    const onClose = (): void => resolve(undefined);
    socket.once('close', onClose);
    wss.handleUpgrade(req, socket as never, head, (ws) => {
      socket.removeListener('close', onClose);
      resolve({ ws, protocol });
    });
  });
}

function channelWriter(ws: WebSocket, protocol: string, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb): void {
      if (ws.readyState !== ws.OPEN) return cb();
      ws.send(encodeChannelMessage(protocol, channel, chunk), (err) => cb(err ?? null));
    },
  });
}

/** exec/attach session over an accepted WebSocket. */
export function createWebSocketRemoteSession(ws: WebSocket, protocol: string, wants: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): RemoteSession {
  const ac = new AbortController();
  let over = false;
  const stdin = wants.stdin ? new PassThrough() : undefined;
  const resize = wants.tty ? new PassThrough() : undefined;
  const format = protocol.startsWith('v4.') || protocol.startsWith('v5.') ? 'status' : 'text';
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const m = decodeChannelMessage(protocol, raw, isBinary);
    if (!m) return;
    if (m.channel === CLOSE_CHANNEL && protocol === 'v5.channel.k8s.io') {
      if (m.data[0] === 0) stdin?.end();
      if (m.data[0] === 4) resize?.end();
      return;
    }
    if (m.channel === 0 && stdin && !stdin.writableEnded) stdin.write(m.data);
    if (m.channel === 4 && resize && !resize.writableEnded) resize.write(m.data);
  });
  ws.on('error', () => undefined);
  ws.on('close', () => {
    if (!over) ac.abort(new Error('client went away'));
    stdin?.end();
    resize?.end();
  });
  const stdout = wants.stdout ? channelWriter(ws, protocol, 1) : undefined;
  const stderr = wants.stderr && !wants.tty ? channelWriter(ws, protocol, 2) : undefined;
  // "Send an empty message to the lowest writable channel to notify the client the connection is established."
  ws.send(encodeChannelMessage(protocol, stdout ? 1 : stderr ? 2 : 3, Buffer.alloc(0)));
  return {
    ...(stdin ? { stdin } : {}),
    ...(stdout ? { stdout } : {}),
    ...(stderr ? { stderr } : {}),
    ...(resize ? { resize: readResizes(resize) } : {}),
    signal: ac.signal,
    writeStatus(status) {
      const bytes = encodeStatus(status, format);
      if (bytes && ws.readyState === ws.OPEN) ws.send(encodeChannelMessage(protocol, 3, bytes));
    },
    close() {
      over = true;
      stdin?.end();
      resize?.end();
      if (ws.readyState === ws.OPEN) ws.close(1000);
    },
  };
}

/**
 * port-forward over an accepted WebSocket: runs `forward` for every port on its channel pair; the connection closes
 * once every port is done (or the client goes away, which aborts the forwards).
 */
export async function serveWebSocketPortForward(
  ws: WebSocket,
  protocol: string,
  ports: number[],
  forward: (port: number, data: Duplex, reportError: (msg: string) => void, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const ac = new AbortController();
  const inbound = new Map<number, Duplex>();
  ws.on('error', () => undefined);
  ws.on('close', () => {
    ac.abort(new Error('client went away'));
    for (const d of inbound.values()) d.destroy();
  });
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const m = decodeChannelMessage(protocol, raw, isBinary);
    const d = m ? inbound.get(m.channel) : undefined;
    if (m && d && !d.destroyed) d.push(m.data);
  });
  const send = (channel: number, data: Buffer, cb?: (err?: Error) => void): void => {
    if (ws.readyState === ws.OPEN) ws.send(encodeChannelMessage(protocol, channel, data), cb);
    else cb?.();
  };
  const runs = ports.map((port, i) => {
    const dataCh = 2 * i;
    const errCh = 2 * i + 1;
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port, 0);
    send(dataCh, portBytes);
    send(errCh, portBytes);
    const data = new Duplex({
      read(): void {},
      write(chunk: Buffer, _enc, cb): void {
        send(dataCh, chunk, (err) => cb(err ?? null));
      },
    });
    inbound.set(dataCh, data);
    return forward(port, data, (msg) => send(errCh, Buffer.from(msg)), ac.signal).finally(() => {
      inbound.delete(dataCh);
      data.destroy();
    });
  });
  await Promise.all(runs);
  if (ws.readyState === ws.OPEN) ws.close(1000);
}
