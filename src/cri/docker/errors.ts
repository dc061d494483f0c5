// Docker errors become berth's error family here, at the boundary: 404 -> NotFoundError, an unreachable socket ->
// RuntimeUnavailableError, 409 -> Conflict, a call past its deadline -> TimeoutError. Anything else keeps the
// engine's message and the original error as `cause`.
import { BerthError, NotFoundError, RuntimeUnavailableError, TimeoutError } from '../../lib/errors.ts';

interface DockerodeError {
  statusCode?: number;
  json?: unknown;
  code?: string;
  name?: string;
  message?: string;
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ENOTSOCK']);

export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as DockerodeError | undefined)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The daemon's own message ("No such container: abc"), without dockerode's "(HTTP code 404) ..." wrapper. */
export function engineMessage(err: unknown): string {
  const e = err as DockerodeError | undefined;
  const json = e?.json;
  if (json && typeof json === 'object' && !Buffer.isBuffer(json)) {
    const m = (json as { message?: unknown }).message;
    if (typeof m === 'string' && m) return m;
  }
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString('utf8').trim();
  if (typeof json === 'string' && json) return json.trim();
  const msg = err instanceof Error ? err.message : String(err);
  // "(HTTP code 500) server error - <engine message> "
  const m = /^\(HTTP code \d+\) [^-]*- (.*)$/s.exec(msg);
  return (m?.[1] ?? msg).trim();
}

export function isAbortError(err: unknown): boolean {
  const e = err as DockerodeError | undefined;
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/**
 * Translates an error from a dockerode call named `op` (e.g. "inspect container abc").
 * `timedOut` says whether the call's own deadline fired (an abort then is a timeout, not a caller's abort).
 */
export function translateDockerError(err: unknown, op: string, timedOut: boolean, timeoutMs: number): Error {
  if (err instanceof BerthError) return err;
  if (timedOut) return new TimeoutError(`docker ${op}: no answer within ${timeoutMs}ms`, { cause: err });
  const status = statusCodeOf(err);
  const message = engineMessage(err);
  if (status === 404) return new NotFoundError(`docker ${op}: ${message}`, { cause: err });
  if (status === 409) return new BerthError('Conflict', `docker ${op}: ${message}`, { cause: err });
  const code = (err as DockerodeError | undefined)?.code;
  if (status === undefined && code && UNAVAILABLE_CODES.has(code)) {
    return new RuntimeUnavailableError(`docker ${op}: cannot reach the Docker daemon: ${message}`, { cause: err });
  }
  return new Error(`docker ${op}: ${message}`, { cause: err });
}
