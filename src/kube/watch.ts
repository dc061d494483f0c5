// Watch stream decoding. The API server writes one JSON object per event, each followed by '\n', into a chunked
// response; chunk boundaries fall anywhere (inside an event, inside a multi-byte character, several events per chunk).
import type { Status } from 'kubernetes-types/meta/v1';
import { ApiError } from './errors.ts';

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T }
  /** The server ended the watch with a Status (code 410 = the resourceVersion is too old: relist). */
  | { type: 'ERROR'; object: Status };

const TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** The stream carried something that is not a watch event: the watch cannot be trusted any more (relist). */
export class WatchDecodeError extends ApiError {
  constructor(message: string) {
    super('ApiUnavailable', message, { statusCode: 200 });
    this.name = 'WatchDecodeError';
  }
}

/** Splits bytes into lines and parses each as a watch event. Not thread-safe; one per stream. */
export class WatchEventDecoder<T> {
  private buf = '';
  private failed: WatchDecodeError | undefined;
  private readonly text = new TextDecoder('utf-8');
  private readonly maxLineBytes: number;
  constructor(opts: { maxLineBytes?: number } = {}) {
    this.maxLineBytes = opts.maxLineBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Feeds a chunk; returns the events completed by it. A malformed line throws WatchDecodeError — at once when no
   * complete event preceded it in this chunk, else on the next call (or `check()`), so good events are not lost.
   */
  push(chunk: Uint8Array | string): WatchEvent<T>[] {
    this.check();
    this.buf += typeof chunk === 'string' ? chunk : this.text.decode(chunk, { stream: true });
    const out: WatchEvent<T>[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      try {
        const ev = parseLine<T>(line);
        if (ev) out.push(ev);
      } catch (err: unknown) {
        if (out.length === 0) throw err;
        this.failed = err as WatchDecodeError;
        this.buf = '';
        return out;
      }
    }
    if (this.buf.length > this.maxLineBytes) throw new WatchDecodeError(`watch event larger than ${this.maxLineBytes} bytes`);
    return out;
  }

  /** Throws the error of a malformed line seen after good events. */
  check(): void {
    if (this.failed) throw this.failed;
  }

  /** The stream ended: a complete trailing event without '\n' is accepted, a partial one is an error. */
  end(): WatchEvent<T>[] {
    this.check();
    this.buf += this.text.decode();
    const rest = this.buf;
    this.buf = '';
    const ev = parseLine<T>(rest);
    return ev ? [ev] : [];
  }
}

function parseLine<T>(line: string): WatchEvent<T> | undefined {
  const trimmed = line.trim();
  if (trimmed === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(trimmed);
  } catch {
    throw new WatchDecodeError(`malformed watch event: ${JSON.stringify(trimmed.slice(0, 120))}`);
  }
  if (typeof v !== 'object' || v === null) throw new WatchDecodeError('malformed watch event: not an object');
  const { type, object } = v as { type?: unknown; object?: unknown };
  if (typeof type !== 'string' || !TYPES.has(type) || typeof object !== 'object' || object === null) {
    throw new WatchDecodeError(`malformed watch event: type ${JSON.stringify(type)}`);
  }
  return { type, object } as WatchEvent<T>;
}

/** Decodes a byte stream into watch events (see WatchEventDecoder). */
export async function* decodeWatchStream<T>(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<WatchEvent<T>> {
  const dec = new WatchEventDecoder<T>();
  for await (const chunk of body) {
    yield* dec.push(chunk);
    dec.check();
  }
  yield* dec.end();
}
