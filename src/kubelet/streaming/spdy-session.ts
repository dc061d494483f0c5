// exec/attach over SPDY: the client opens one stream per channel (header `streamtype`: error, stdin, stdout, stderr,
// resize); the session starts once every expected stream has arrived (remotecommand/httpstream.go waitForStreams),
// or the connection is closed after streamCreationTimeout.
import type { SpdyConnection, SpdyStream } from './spdy-connection.ts';
import { type ErrorFormat, type RemoteSession, encodeStatus, readResizes } from './remotecommand.ts';

export interface StreamWants {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Streams the client must open for `wants` under `protocol` (error stream always; resize only for v3+ with a TTY). */
export function computeExpectedStreams(protocol: string, wants: StreamWants): string[] {
  const out = ['error'];
  if (wants.stdin) out.push('stdin');
  if (wants.stdout) out.push('stdout');
  if (wants.stderr) out.push('stderr');
  if (wants.tty && (protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io')) out.push('resize');
  return out;
}

export function errorFormatOf(protocol: string): ErrorFormat {
  return protocol === 'v4.channel.k8s.io' ? 'status' : 'text';
}

const KNOWN_TYPES = new Set(['error', 'stdin', 'stdout', 'stderr', 'resize']);

/**
 * Collects the session's streams from `conn` (install as the connection's stream handler via `accept`).
 * `ready` resolves with the session, or with undefined when the connection closed or the timeout fired first.
 */
export class SpdyRemoteSessionBuilder {
  private readonly streams = new Map<string, SpdyStream>();
  private readonly expected: string[];
  private readonly conn: SpdyConnection;
  private readonly protocol: string;
  private resolveReady: ((s: RemoteSession | undefined) => void) | undefined;
  readonly ready: Promise<RemoteSession | undefined>;

  constructor(conn: SpdyConnection, protocol: string, wants: StreamWants, streamCreationTimeoutMs: number) {
    this.conn = conn;
    this.protocol = protocol;
    this.expected = computeExpectedStreams(protocol, wants);
    this.ready = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
    const timer = setTimeout(() => this.finish(undefined), streamCreationTimeoutMs);
    timer.unref();
    conn.onClose(() => this.finish(undefined));
    void this.ready.then(() => clearTimeout(timer));
  }

  /** The connection's onStream handler: accepts every stream (upstream replies to all), keeps the known types. */
  accept = (stream: SpdyStream): boolean => {
    const type = stream.header('streamtype') ?? '';
    if (!KNOWN_TYPES.has(type) || this.streams.has(type) || !this.resolveReady) return true;
    this.streams.set(type, stream);
    stream.on('error', () => undefined);
    if (this.expected.every((t) => this.streams.has(t))) queueMicrotask(() => this.finish(this.build()));
    return true;
  };

  private finish(s: RemoteSession | undefined): void {
    const r = this.resolveReady;
    if (!r) return;
    this.resolveReady = undefined;
    if (!s) this.conn.close();
    r(s);
  }

  private build(): RemoteSession {
    const ac = new AbortController();
    let over = false;
    this.conn.onClose(() => {
      if (!over) ac.abort(new Error('client went away'));
    });
    const get = (t: string): SpdyStream | undefined => (this.expected.includes(t) ? this.streams.get(t) : undefined);
    const error = get('error');
    let stdin = get('stdin');
    if (stdin && this.protocol === 'channel.k8s.io') {
      // v1ProtocolHandler closes stdin as soon as the streams are there (kept as 1.0 kubelets did).
      stdin.resume();
      stdin = undefined;
    }
    const resize = get('resize');
    const stdout = get('stdout');
    const stderr = get('stderr');
    const format = errorFormatOf(this.protocol);
    const conn = this.conn;
    return {
      ...(stdin ? { stdin } : {}),
      ...(stdout ? { stdout } : {}),
      ...(stderr ? { stderr } : {}),
      ...(resize ? { resize: readResizes(resize) } : {}),
      signal: ac.signal,
      writeStatus(status) {
        const bytes = encodeStatus(status, format);
        if (error && bytes && !error.destroyed && !error.writableEnded) error.write(bytes);
      },
      close() {
        over = true;
        for (const s of [error, stdout, stderr]) if (s && !s.destroyed && !s.writableEnded) s.end();
        conn.close();
      },
    };
  }
}
