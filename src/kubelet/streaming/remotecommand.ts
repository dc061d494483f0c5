// exec and attach sessions (upstream pkg/kubelet/cri/streaming/remotecommand/{exec,attach,httpstream}.go), independent
// of the transport: the SPDY and WebSocket adapters both produce a RemoteSession, `runRemoteCommand` drives the runtime
// and reports the outcome on the error channel as the negotiated protocol version wants it.
import type { Readable, Writable } from 'node:stream';
import type { StreamingRuntime, TerminalSize } from '../../cri/index.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';

/** SPDY subprotocols for exec/attach, most preferred first (remotecommandconsts.SupportedStreamingProtocols). */
export const REMOTECOMMAND_SPDY_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
export type ErrorFormat = 'status' | 'text';

/** metav1.Status as Go's json.Marshal writes it (field order and omitempty as upstream). */
export interface V1Status {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message?: string }[] };
  code?: number;
}

export function buildSuccessStatus(): V1Status {
  return { metadata: {}, status: 'Success' };
}

/** What exec.go writes for an exited process (dockershim's dockerExitError text inside the message). */
export function buildExitCodeStatus(exitCode: number): V1Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: Error executing in Docker Container: ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError(err). */
export function buildInternalErrorStatus(message: string): V1Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

/**
 * The bytes for the error channel: v4+ carries the Status JSON (always, success included); v1–v3 carry only a
 * failure's message as text and nothing on success (v1WriteStatusFunc).
 */
export function encodeStatus(status: V1Status, format: ErrorFormat): Buffer | undefined {
  if (format === 'status') return Buffer.from(JSON.stringify(status));
  return status.status === 'Success' ? undefined : Buffer.from(status.message ?? '');
}

/** Parses the resize channel: a sequence of JSON objects {"Width":w,"Height":h} (Go json.Encoder output). */
export class ResizeParser {
  private text = '';

  push(chunk: Buffer | string): TerminalSize[] {
    this.text += chunk.toString();
    const out: TerminalSize[] = [];
    for (;;) {
      const end = this.text.indexOf('}');
      if (end < 0) break;
      const candidate = this.text.slice(0, end + 1);
      this.text = this.text.slice(end + 1);
      const start = candidate.indexOf('{');
      if (start < 0) continue;
      try {
        const v = JSON.parse(candidate.slice(start)) as { Width?: unknown; Height?: unknown };
        if (typeof v.Width === 'number' && typeof v.Height === 'number') out.push({ width: v.Width, height: v.Height });
      } catch {
        // not a size: dropped, as the decoder loop upstream gives up on garbage
      }
    }
    if (this.text.length > 4096) this.text = '';
    return out;
  }
}

/** Turns a resize stream into the runtime's AsyncIterable; ends when the stream ends or closes. */
export async function* readResizes(stream: Readable): AsyncIterable<TerminalSize> {
  const parser = new ResizeParser();
  try {
    for await (const chunk of stream) {
      for (const size of parser.push(chunk as Buffer)) yield size;
    }
  } catch {
    // a reset stream ends the resizes
  }
}

/** The streams of one exec/attach session, whatever the transport. */
export interface RemoteSession {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize?: AsyncIterable<TerminalSize>;
  /** Writes the status on the error channel in the negotiated format (nothing for a v1–v3 success). */
  writeStatus(status: V1Status): void;
  /** Ends every server-side stream and the connection after queued data is written. Idempotent. */
  close(): void;
  /** Aborted when the client goes away before the session is over. */
  signal: AbortSignal;
}

export type RemoteCommand =
  | { kind: 'exec'; containerId: string; command: string[]; tty: boolean }
  | { kind: 'attach'; containerId: string; tty: boolean };

function endWritable(w: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!w || w.destroyed || w.writableFinished) return resolve();
    w.end(() => resolve());
    w.once('close', () => resolve());
    w.once('error', () => resolve());
  });
}

/**
 * Runs the exec/attach against the runtime, then reports (ServeExec / ServeAttach): success, NonZeroExitCode with
 * the exit code, or an InternalError with the runtime's message. Never throws. Output streams are ended (FIN)
 * before the status is written, so clients see all output before they learn the outcome.
 */
export async function runRemoteCommand(opts: {
  runtime: StreamingRuntime;
  session: RemoteSession;
  command: RemoteCommand;
  log: Logger;
}): Promise<void> {
  const { runtime, session, command, log } = opts;
  const io = {
    ...(session.stdin ? { stdin: session.stdin } : {}),
    ...(session.stdout ? { stdout: session.stdout } : {}),
    ...(session.stderr && !command.tty ? { stderr: session.stderr } : {}),
    ...(session.resize && command.tty ? { resize: session.resize } : {}),
    tty: command.tty,
    signal: session.signal,
  };
  let status: V1Status;
  try {
    if (command.kind === 'exec') {
      const code = await runtime.exec(command.containerId, command.command, io);
      status = code === 0 ? buildSuccessStatus() : buildExitCodeStatus(code);
    } else {
      await runtime.attach(command.containerId, io);
      status = buildSuccessStatus();
    }
  } catch (err: unknown) {
    if (session.signal.aborted) {
      log.debug({ containerId: command.containerId }, 'streaming client went away');
      session.close();
      return;
    }
    const what = command.kind === 'exec' ? 'error executing command in container' : 'error attaching to container';
    log.warn({ err, kind: command.kind, containerId: command.containerId }, 'remote command failed');
    status = buildInternalErrorStatus(`${what}: ${errorMessage(err)}`);
  }
  await Promise.all([endWritable(session.stdout), endWritable(session.stderr)]);
  session.writeStatus(status);
  session.close();
}
