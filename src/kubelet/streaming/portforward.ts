// port-forward sessions (upstream pkg/kubelet/cri/streaming/portforward/{httpstream,websocket}.go). Over SPDY each
// forwarded connection is a pair of client-opened streams, data + error, joined by the `requestid` header (or, for old
// clients, by stream ID); over WebSocket each requested port has a data and an error channel. Either way one pair
// carries one TCP connection into the pod, and a failure is reported as text on the pair's error stream while the
// connection stays up for other ports.
import type { Duplex } from 'node:stream';
import type { StreamingRuntime } from '../../cri/index.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { SpdyConnection, SpdyStream } from './spdy-connection.ts';

export const PORTFORWARD_SPDY_PROTOCOLS = ['portforward.k8s.io'];

export interface ForwardTarget {
  runtime: StreamingRuntime;
  sandboxId: string;
  /** Shown in error messages as upstream's `uid`; dockershim-era kubelets left it empty. */
  uid: string;
  log: Logger;
}

/**
 * Connects `data` to `port` in the sandbox until either side is done; a failure becomes the upstream message on
 * `reportError`. Resolves (never rejects) once the connector is gone.
 */
export async function forwardPort(t: ForwardTarget, port: number, data: Duplex, reportError: (msg: string) => void, signal: AbortSignal): Promise<void> {
  try {
    await t.runtime.portForward(t.sandboxId, port, data, signal);
  } catch (err: unknown) {
    if (signal.aborted) return;
    const msg = `error forwarding port ${port} to pod ${t.sandboxId}, uid ${t.uid}: ${errorMessage(err)}`;
    t.log.info({ port, sandboxId: t.sandboxId, err }, 'port-forward failed');
    reportError(msg);
  }
}

/** httpStreamReceived: why a new port-forward stream is refused, or undefined when its headers are valid. */
export function validatePortForwardStream(headers: { port?: string; streamtype?: string }): string | undefined {
  const portString = headers.port ?? '';
  if (!portString) return '"port" header is required';
  if (!/^\d+$/.test(portString) || Number(portString) > 65535) return `unable to parse "${portString}" as a port`;
  if (Number(portString) < 1) return `port "${portString}" must be > 0`;
  const type = headers.streamtype ?? '';
  if (!type) return '"streamType" header is required';
  if (type !== 'error' && type !== 'data') return `invalid stream type "${type}"`;
  return undefined;
}

/** The pair key: the requestid header, else upstream's best effort from stream IDs (error = id, data = id - 2). */
export function computeRequestId(headers: { requestid?: string; streamtype?: string }, streamId: number): string {
  if (headers.requestid) return headers.requestid;
  return String(headers.streamtype === 'data' ? streamId - 2 : streamId);
}

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/**
 * Serves port-forward on an upgraded SPDY connection until it closes. Returns the connection's stream handler;
 * every forward is aborted (its connector killed) when the connection goes.
 */
export function createSpdyPortForwardHandler(conn: SpdyConnection, t: ForwardTarget, streamCreationTimeoutMs: number): (s: SpdyStream) => boolean {
  const pairs = new Map<string, Pair>();
  const ac = new AbortController();
  conn.onClose(() => {
    ac.abort(new Error('connection closed'));
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
  });

  const run = (requestId: string, data: SpdyStream, error: SpdyStream): void => {
    const port = Number(data.header('port'));
    const report = (msg: string): void => {
      if (!error.destroyed && !error.writableEnded) error.write(msg);
    };
    void forwardPort(t, port, data, report, ac.signal).finally(() => {
      for (const s of [data, error]) if (!s.destroyed && !s.writableEnded) s.end();
      t.log.debug({ requestId, port }, 'port-forward stream pair done');
    });
  };

  return (stream: SpdyStream): boolean => {
    const headers = { port: stream.header('port'), streamtype: stream.header('streamtype'), requestid: stream.header('requestid') };
    const invalid = validatePortForwardStream(headers);
    if (invalid) {
      t.log.info({ streamId: stream.id, reason: invalid }, 'port-forward stream refused');
      return false;
    }
    stream.on('error', () => undefined);
    const requestId = computeRequestId(headers, stream.id);
    let pair = pairs.get(requestId);
    if (!pair) {
      const timer = setTimeout(() => {
        const p = pairs.get(requestId);
        if (!p) return;
        pairs.delete(requestId);
        const msg = `(conn=${stream.id}, request=${requestId}) timed out waiting for streams`;
        if (p.error && !p.error.writableEnded) p.error.end(msg);
        p.data?.reset();
      }, streamCreationTimeoutMs);
      timer.unref();
      pair = { timer };
      pairs.set(requestId, pair);
    }
    const slot = headers.streamtype === 'data' ? 'data' : 'error';
    if (pair[slot]) {
      const msg = `error processing stream for request ${requestId}: ${slot} stream already assigned`;
      if (pair.error && !pair.error.writableEnded) pair.error.write(msg);
      return true;
    }
    pair[slot] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      run(requestId, pair.data, pair.error);
    }
    return true;
  };
}
