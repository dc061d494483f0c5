// The HTTP side of a streaming upgrade on a raw socket: protocol negotiation as apimachinery's httpstream.Handshake,
// the upgrade checks of spdy.responseUpgrader and wsstream.IsWebSocketRequest, and plain-text error answers as Go's
// http.Error writes them (the socket is already detached from node's HTTP server, so responses are written by hand).
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export const HEADER_PROTOCOL_VERSION = 'x-stream-protocol-version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';

/** All values of a (possibly repeated) comma-separated header, trimmed, empty ones dropped. */
export function headerValues(req: IncomingMessage, name: string): string[] {
  const raw = req.headersDistinct[name.toLowerCase()] ?? [];
  return raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
}

export function isWebSocketRequest(req: IncomingMessage): boolean {
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const connection = String(req.headers.connection ?? '').toLowerCase();
  return upgrade === 'websocket' && /(^|.*,\s*)upgrade($|\s*,)/.test(connection);
}

export function hasSpdyUpgradeHeaders(req: IncomingMessage): boolean {
  const connection = String(req.headers.connection ?? '').toLowerCase();
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  return connection.includes('upgrade') && upgrade.includes('spdy/3.1');
}

export type Negotiation =
  | { ok: true; protocol: string }
  | { ok: false; code: number; message: string; headers: [string, string][] };

/** httpstream.Handshake: the first client protocol the server supports, in the client's order. */
export function negotiateProtocol(clientProtocols: string[], serverProtocols: string[]): Negotiation {
  if (clientProtocols.length === 0) {
    return { ok: false, code: 400, message: 'unable to upgrade: X-Stream-Protocol-Version is required', headers: [] };
  }
  const chosen = clientProtocols.find((p) => serverProtocols.includes(p));
  if (chosen) return { ok: true, protocol: chosen };
  return {
    ok: false,
    code: 403,
    message: `unable to upgrade: unable to negotiate protocol: client supports [${clientProtocols.join(' ')}], server accepts [${serverProtocols.join(' ')}]`,
    headers: serverProtocols.map((p) => [HEADER_ACCEPTED_PROTOCOL_VERSIONS, p] as [string, string]),
  };
}

/** Writes a complete text/plain response (body + newline, as http.Error) and ends the socket. */
export function writeHttpError(socket: Duplex, code: number, message: string, headers: [string, string][] = []): void {
  if (socket.destroyed || socket.writableEnded) return;
  const body = Buffer.from(`${message}\n`);
  const lines = [
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    'X-Content-Type-Options: nosniff',
    ...headers.map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${body.length}`,
    'Connection: close',
  ];
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]));
}

/** The 101 answer of spdy.responseUpgrader (plus the negotiated X-Stream-Protocol-Version). */
export function writeSpdyUpgrade(socket: Duplex, protocol: string): void {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade', 'Upgrade: SPDY/3.1'];
  if (protocol) lines.push(`X-Stream-Protocol-Version: ${protocol}`);
  socket.write(lines.join('\r\n') + '\r\n\r\n');
}
