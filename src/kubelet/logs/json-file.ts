// Reading Docker's json-file container logs directly, as upstream's kuberuntime/logs ReadLogs does for CRI logs:
// one JSON object per line ({"log":"…\n","stream":"stdout","time":"RFC3339Nano"}), rotated by Docker into
// <id>-json.log.1 … .N (oldest = highest N). Files are read in fixed-size chunks, never whole; `follow` waits for
// growth (inotify via fs.watch, with a poll as a safety net), follows a rotation, and ends when the container is no
// longer running (after draining what it wrote) or when the caller aborts.
import { watch, type FSWatcher } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';

const CHUNK_BYTES = 64 * 1024;

export interface LogEntry {
  stream: string;
  /** RFC 3339 with nanoseconds, as Docker wrote it. */
  time: string;
  log: string;
}

const LOG_PREFIX = '{"log":"';
const STREAM_SEP = '","stream":"';
const TIME_SEP = '"time":"';

/**
 * Pure: one json-file line → entry; undefined for a line that is not a Docker log record (skipped as upstream).
 * Docker writes the fields in a fixed order (log, stream, attrs, time: daemon/logger/jsonfilelog/jsonlog), so a line
 * whose text has no escape but its final newline is sliced directly; anything else goes through JSON.parse.
 */
export function decodeJsonLogLine(line: string): LogEntry | undefined {
  if (line.startsWith(LOG_PREFIX) && line.endsWith('"}')) {
    const end = line.indexOf(STREAM_SEP, LOG_PREFIX.length);
    const t = line.lastIndexOf(TIME_SEP);
    const slash = line.indexOf('\\', LOG_PREFIX.length);
    if (end > 0 && t > end && (slash < 0 || slash > end || (slash === end - 2 && line[end - 1] === 'n'))) {
      const raw = line.slice(LOG_PREFIX.length, end);
      const log = slash === end - 2 ? `${raw.slice(0, -2)}\n` : raw;
      const streamEnd = line.indexOf('"', end + STREAM_SEP.length);
      return { log, stream: line.slice(end + STREAM_SEP.length, streamEnd), time: line.slice(t + TIME_SEP.length, -2) };
    }
  }
  try {
    const v = JSON.parse(line) as Partial<LogEntry>;
    if (typeof v.log !== 'string' || typeof v.time !== 'string') return undefined;
    return { log: v.log, time: v.time, stream: typeof v.stream === 'string' ? v.stream : 'stdout' };
  } catch {
    return undefined;
  }
}

export interface ReadLogOptions {
  /** Lines from the end to start with; undefined = from the beginning. */
  tailLines?: number;
  /** Skip entries older than this (ms since the epoch). */
  sinceMs?: number;
  timestamps: boolean;
  limitBytes?: number;
  follow: boolean;
}

export interface ReadLogInput {
  /** The container's log path (the /var/log/pods symlink or Docker's own file). */
  path: string;
  options: ReadLogOptions;
  /** Receives output; the returned promise resolves when the consumer can take more (backpressure). */
  write: (chunk: Buffer) => Promise<void>;
  /** Follow ends when this resolves false (the container exited). Called about once a second while idle. */
  isRunning: () => Promise<boolean>;
  signal: AbortSignal;
  /** Idle poll interval while following (default 250 ms). */
  pollMs?: number;
}

/** Docker's current file plus its rotated ones, oldest first. Throws when the current file does not exist. */
export async function listLogFiles(path: string): Promise<string[]> {
  const base = await realpath(path);
  const rotated: string[] = [];
  for (let i = 1; ; i++) {
    const st = await stat(`${base}.${i}`).catch(() => undefined);
    if (!st?.isFile()) break;
    rotated.push(`${base}.${i}`);
  }
  return [...rotated.reverse(), base];
}

/**
 * Where the last `n` lines of a file start (upstream's tail.FindTailLineStartIndex), reading backwards in chunks.
 * `lines` is how many complete lines lie after `offset` (fewer than n when the file is short).
 */
export async function findTailStart(fh: FileHandle, size: number, n: number): Promise<{ offset: number; lines: number }> {
  if (n === 0 || size === 0) return { offset: size, lines: 0 };
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let end = size;
  let found = 0;
  // A final newline ends the last line; it does not start another.
  let skipLast = true;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK_BYTES);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      if (skipLast && start + i === size - 1) continue;
      found++;
      if (found === n) return { offset: start + i + 1, lines: n };
    }
    skipLast = false;
    end = start;
  }
  return { offset: 0, lines: found + 1 };
}

/** Turns complete lines into output text, applying since/timestamps; keeps the unfinished tail line. */
class LineFormatter {
  private rest: Buffer = Buffer.alloc(0);
  private readonly o: ReadLogOptions;
  constructor(o: ReadLogOptions) {
    this.o = o;
  }

  push(chunk: Buffer): string {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const last = data.lastIndexOf(0x0a);
    if (last < 0) {
      this.rest = Buffer.from(data);
      return '';
    }
    this.rest = Buffer.from(data.subarray(last + 1));
    return this.format(data.toString('utf8', 0, last));
  }

  /** The file ended for good (rotation or exit): a last line without newline still counts. */
  flush(): string {
    const text = this.rest.toString('utf8');
    this.rest = Buffer.alloc(0);
    return text ? this.format(text) : '';
  }

  private format(text: string): string {
    let out = '';
    for (const line of text.split('\n')) {
      if (!line) continue;
      const e = decodeJsonLogLine(line);
      if (!e) continue;
      if (this.o.sinceMs !== undefined && Date.parse(e.time) < this.o.sinceMs) continue;
      out += this.o.timestamps ? `${e.time} ${e.log}` : e.log;
    }
    return out;
  }
}

/**
 * Streams a container's log to `write`. Resolves when done: end of file (no follow), the byte limit, the container
 * no longer running (follow), or `signal` aborted. Rejects only when the log file cannot be opened at all.
 */
export async function readContainerLog(input: ReadLogInput): Promise<void> {
  const { options: o, signal } = input;
  const files = await listLogFiles(input.path);
  let remaining = o.limitBytes ?? Infinity;
  const fmt = new LineFormatter(o);
  const emit = async (text: string): Promise<boolean> => {
    if (!text) return remaining > 0;
    let buf = Buffer.from(text, 'utf8');
    if (buf.length > remaining) buf = buf.subarray(0, remaining);
    remaining -= buf.length;
    await input.write(buf);
    return remaining > 0;
  };

  // Starting point: file index and offset.
  let fileIdx = 0;
  let offset = 0;
  if (o.tailLines !== undefined) {
    let need = o.tailLines;
    fileIdx = files.length - 1;
    for (let i = files.length - 1; i >= 0; i--) {
      const fh = await open(files[i]!, 'r').catch(() => undefined);
      if (!fh) break;
      const size = (await fh.stat()).size;
      const t = await findTailStart(fh, size, need).finally(() => fh.close());
      fileIdx = i;
      offset = t.offset;
      need -= t.lines;
      if (need <= 0 || t.offset > 0) break;
    }
  }

  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  /** Reads `fh` from `pos` to its current end; returns the new position, or -1 when the byte limit was hit. */
  const drain = async (fh: FileHandle, pos: number): Promise<number> => {
    for (;;) {
      if (signal.aborted) return pos;
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, pos);
      if (bytesRead === 0) return pos;
      pos += bytesRead;
      if (!(await emit(fmt.push(buf.subarray(0, bytesRead))))) return -1;
    }
  };

  // Rotated files: read and close.
  for (; fileIdx < files.length - 1; fileIdx++, offset = 0) {
    const fh = await open(files[fileIdx]!, 'r').catch(() => undefined);
    if (!fh) continue;
    try {
      if ((await drain(fh, offset)) < 0) return;
      if (!(await emit(fmt.flush()))) return;
    } finally {
      await fh.close();
    }
  }

  const current = files[files.length - 1]!;
  let fh = await open(current, 'r');
  try {
    let pos = await drain(fh, offset);
    if (pos < 0 || !o.follow || signal.aborted) {
      if (pos >= 0) await emit(fmt.flush());
      return;
    }
    pos = await follow({ input, current, fh: () => fh, swap: (h) => (fh = h), pos, drain, flush: () => emit(fmt.flush()) });
  } finally {
    await fh.close().catch(() => undefined);
  }
}

interface FollowState {
  input: ReadLogInput;
  current: string;
  fh: () => FileHandle;
  swap: (fh: FileHandle) => void;
  pos: number;
  drain: (fh: FileHandle, pos: number) => Promise<number>;
  flush: () => Promise<boolean>;
}

async function follow(s: FollowState): Promise<number> {
  const { input, current } = s;
  const pollMs = input.pollMs ?? 250;
  let pos = s.pos;
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(current, { persistent: false }, () => wake?.());
    watcher.on('error', () => undefined);
  } catch {
    // no inotify: the poll below still notices growth
  }
  const onAbort = (): void => wake?.();
  input.signal.addEventListener('abort', onAbort);
  let lastRunningCheck = 0;
  try {
    for (;;) {
      if (input.signal.aborted) return pos;
      // Rotation: the name now points at a new file; finish the old one, then start the new one from 0.
      const [byName, byHandle] = await Promise.all([stat(current).catch(() => undefined), s.fh().stat()]);
      if (byName && byName.ino !== byHandle.ino) {
        pos = await s.drain(s.fh(), pos);
        if (pos < 0 || !(await s.flush())) return pos;
        const next = await open(current, 'r').catch(() => undefined);
        if (next) {
          await s.fh().close().catch(() => undefined);
          s.swap(next);
          pos = 0;
          watcher?.close();
          try {
            watcher = watch(current, { persistent: false }, () => wake?.());
            watcher.on('error', () => undefined);
          } catch {
            watcher = undefined;
          }
        }
      }
      const before = pos;
      pos = await s.drain(s.fh(), pos);
      if (pos < 0) return pos;
      if (pos !== before) continue;
      const now = Date.now();
      if (now - lastRunningCheck >= 1000) {
        lastRunningCheck = now;
        if (!(await input.isRunning().catch(() => false))) {
          // The container is gone: whatever it wrote last is already in the file.
          pos = await s.drain(s.fh(), pos);
          if (pos >= 0) await s.flush();
          return pos;
        }
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    input.signal.removeEventListener('abort', onAbort);
    watcher?.close();
  }
}
