// The streaming room: kubectl exec / attach / port-forward as the kubelet serves them (pkg/kubelet/cri/streaming).
// The kubelet API server authenticates and authorizes the upgrade request, resolves the pod and container, and hands
// the raw socket over with a StreamRequest; this room negotiates the transport (SPDY/3.1 with X-Stream-Protocol-Version,
// or WebSocket with Sec-WebSocket-Protocol), speaks it, and drives the runtime's StreamingRuntime. It owns no state
// beyond the live connections, and every connection's runtime resources end with it.
import type http from 'node:http';
import type net from 'node:net';
import type stream from 'node:stream';
import type { StreamingRuntime } from '../../cri/index.ts';
import { errorMessage, hasCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { hasSpdyUpgradeHeaders, headerValues, isWebSocketRequest, negotiateProtocol, writeHttpError, writeSpdyUpgrade } from './http.ts';
import { PORTFORWARD_SPDY_PROTOCOLS, createSpdyPortForwardHandler, forwardPort } from './portforward.ts';
import { REMOTECOMMAND_SPDY_PROTOCOLS, runRemoteCommand, type RemoteSession } from './remotecommand.ts';
import { SpdyConnection, type SpdyStream } from './spdy-connection.ts';
import { SpdyRemoteSessionBuilder } from './spdy-session.ts';
import { PORTFORWARD_WS_PROTOCOLS, REMOTECOMMAND_WS_PROTOCOLS, acceptWebSocket, createWebSocketRemoteSession, serveWebSocketPortForward } from './websocket.ts';

// The contract belongs to its consumer, the kubelet API server (src/kubelet/server/streaming.ts).
import type { StreamRequest, StreamServer as ApiStreamServer } from '../server/streaming.ts';
export type { StreamRequest };

export interface StreamServer extends ApiStreamServer {
  /**
   * Takes over an HTTP upgrade (SPDY/3.1 or WebSocket, chosen from the request's Upgrade and
   * X-Stream-Protocol-Version / Sec-WebSocket-Protocol headers, as upstream's streaming server does) for an already
   * authorized request. Answers protocol errors itself with upstream's status and text (400 missing upgrade headers
   * or no stream requested, 403 no common protocol, 404/500 container missing or not running). Never throws; the
   * socket is closed when the session ends.
   */
  handleUpgrade(req: http.IncomingMessage, socket: stream.Duplex, head: Buffer, target: StreamRequest): void;
  /** Number of live sessions (for tests and metrics). */
  activeSessions(): number;
}

export interface StreamServerOptions {
  runtime: StreamingRuntime;
  log: Logger;
  /** Upstream --streaming-connection-idle-timeout (default 4 h): an idle connection is closed. */
  idleTimeoutMs?: number;
  /** How long the client has to open its streams after the upgrade (upstream default 30 s). */
  streamCreationTimeoutMs?: number;
}

export { type StreamingRuntime } from '../../cri/index.ts';
export { type V1Status, buildExitCodeStatus, buildSuccessStatus } from './remotecommand.ts';

const DEFAULT_IDLE_TIMEOUT_MS = 4 * 60 * 60 * 1000;
const DEFAULT_STREAM_CREATION_TIMEOUT_MS = 30_000;

export function createStreamServer(opts: StreamServerOptions): StreamServer {
  const log = opts.log.child({ component: 'streaming' });
  const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const creationMs = opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS;
  let active = 0;
  // The socket's idle timer: every byte read or written re-arms it, as spdystream's idle-aware framer and wsstream's
  // deadlines count every frame. `ws` clears it when it takes the socket over, so it is armed again after a WebSocket
  // handshake.
  const armIdleTimeout = (socket: stream.Duplex): void => void (socket as Partial<net.Socket>).setTimeout?.(idleTimeoutMs, () => socket.destroy());

  async function remoteCommand(req: http.IncomingMessage, socket: stream.Duplex, head: Buffer, t: Extract<StreamRequest, { kind: 'exec' | 'attach' }>): Promise<void> {
    // remotecommand.NewOptions: tty wins over stderr; at least one stream.
    const wants = { stdin: t.stdin, stdout: t.stdout, stderr: t.stderr && !t.tty, tty: t.tty };
    if (!wants.stdin && !wants.stdout && !wants.stderr) {
      writeHttpError(socket, 400, 'you must specify at least 1 of stdin, stdout, stderr');
      return;
    }
    try {
      await opts.runtime.assertRunning(t.containerId);
    } catch (err: unknown) {
      // streaming.WriteError: NotFound -> 404, anything else 500, body = the runtime's message.
      writeHttpError(socket, hasCode(err, 'NotFound') ? 404 : 500, errorMessage(err));
      return;
    }
    let session: RemoteSession | undefined;
    if (isWebSocketRequest(req)) {
      const accepted = await acceptWebSocket(req, socket, head, REMOTECOMMAND_WS_PROTOCOLS);
      if (!accepted) return;
      armIdleTimeout(socket);
      session = createWebSocketRemoteSession(accepted.ws, accepted.protocol, wants);
    } else {
      const n = negotiateProtocol(headerValues(req, 'x-stream-protocol-version'), REMOTECOMMAND_SPDY_PROTOCOLS);
      if (!n.ok) return writeHttpError(socket, n.code, n.message, n.headers);
      if (!hasSpdyUpgradeHeaders(req)) return writeHttpError(socket, 400, 'unable to upgrade: missing upgrade headers in request');
      writeSpdyUpgrade(socket, n.protocol);
      let builder: SpdyRemoteSessionBuilder | undefined;
      const conn = new SpdyConnection(socket, head, {
        onStream: (s) => builder?.accept(s) ?? true,
        onError: (err) => log.info({ err }, 'spdy protocol error'),
      });
      builder = new SpdyRemoteSessionBuilder(conn, n.protocol, wants, creationMs);
      session = await builder.ready;
      if (!session) {
        log.info({ containerId: t.containerId }, 'timed out waiting for client to create streams');
        return;
      }
    }
    const command = t.kind === 'exec' ? { kind: 'exec' as const, containerId: t.containerId, command: t.command, tty: t.tty } : { kind: 'attach' as const, containerId: t.containerId, tty: t.tty };
    await runRemoteCommand({ runtime: opts.runtime, session, command, log });
  }

  async function portForward(req: http.IncomingMessage, socket: stream.Duplex, head: Buffer, t: Extract<StreamRequest, { kind: 'portforward' }>): Promise<void> {
    const target = { runtime: opts.runtime, sandboxId: t.sandboxId, uid: '', log };
    if (isWebSocketRequest(req)) {
      // portforward.NewV4Options: WebSocket clients name their ports up front.
      if (t.ports.length === 0) return writeHttpError(socket, 400, 'query parameter "port" is required');
      const accepted = await acceptWebSocket(req, socket, head, PORTFORWARD_WS_PROTOCOLS);
      if (!accepted) return;
      armIdleTimeout(socket);
      await serveWebSocketPortForward(accepted.ws, accepted.protocol, t.ports, (port, data, report, signal) => forwardPort(target, port, data, report, signal));
      return;
    }
    const n = negotiateProtocol(headerValues(req, 'x-stream-protocol-version'), PORTFORWARD_SPDY_PROTOCOLS);
    if (!n.ok) return writeHttpError(socket, n.code, n.message, n.headers);
    if (!hasSpdyUpgradeHeaders(req)) return writeHttpError(socket, 400, 'unable to upgrade: missing upgrade headers in request');
    writeSpdyUpgrade(socket, n.protocol);
    let handler: ((s: SpdyStream) => boolean) | undefined;
    const conn = new SpdyConnection(socket, head, {
      onStream: (s) => handler?.(s) ?? false,
      onError: (err) => log.info({ err }, 'spdy protocol error'),
    });
    handler = createSpdyPortForwardHandler(conn, target, creationMs);
    await new Promise<void>((resolve) => conn.onClose(resolve));
  }

  return {
    activeSessions: () => active,
    handleUpgrade(req, socket, head, target): void {
      active++;
      socket.on('error', (err) => log.debug({ err }, 'streaming socket error'));
      armIdleTimeout(socket);
      const done = (): void => {
        active--;
      };
      const run = target.kind === 'portforward' ? portForward(req, socket, head, target) : remoteCommand(req, socket, head, target);
      run
        .catch((err: unknown) => {
          log.warn({ err, kind: target.kind }, 'streaming session failed');
          socket.destroy();
        })
        .finally(done);
    },
  };
}
