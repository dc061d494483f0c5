// One root pino logger; components take children (`log.child({ component: 'pleg' })`).
// `text` format is a small human-readable line writer (no extra dependency).
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'text';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function textStream(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { level, time, msg, pid: _pid, hostname: _h, err, ...rest } = rec;
      const ts = new Date(typeof time === 'number' ? time : Date.now()).toISOString();
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
        .join(' ');
      const e = err as { message?: string } | undefined;
      const errText = e?.message ? ` err=${JSON.stringify(e.message)}` : '';
      out.write(`${ts} ${LEVELS[level as number] ?? String(level)} ${String(msg ?? '')}${fields ? ' ' + fields : ''}${errText}\n`);
    },
  };
}

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const out = opts.destination ?? process.stderr;
  const base = { level: opts.level ?? 'info', base: { pid: process.pid } };
  if (opts.format === 'text') return pino(base, textStream(out));
  return pino(base, out as DestinationStream);
}

/** A logger that drops everything (tests, CLI subcommands). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Logs a repeated condition once per `intervalMs` per key (a 403 or a failing inspect must not flood the log).
 * Returns true when the caller should log now.
 */
export class RateLimiter {
  private last = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly now: () => number;
  constructor(intervalMs: number, now: () => number = Date.now) {
    this.intervalMs = intervalMs;
    this.now = now;
  }
  allow(key: string): boolean {
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev < this.intervalMs) return false;
    this.last.set(key, t);
    if (this.last.size > 10_000) this.last.clear();
    return true;
  }
}
