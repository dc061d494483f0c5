// PodLogOptions from a /containerLogs query, decoded and validated as upstream's getContainerLogs does
// (pkg/kubelet/server/server.go): the legacy `tail` parameter, the v1 parameter codec (a bool is true unless
// "0"/"false"; a bad integer or time fails the whole decode → 400), then ValidatePodLogOptions (→ 422).

export interface PodLogOptions {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  /** Lines from the end to start with (undefined = all). */
  tailLines?: number;
  /** Stop after this many bytes of output (undefined = no limit). */
  limitBytes?: number;
  sinceSeconds?: number;
  /** ms since the epoch. */
  sinceTimeMs?: number;
}

export type LogOptionsResult = { ok: true; options: PodLogOptions } | { ok: false; status: 400 | 422; message: string };

// The message bodies upstream writes (go-restful's WriteError with these literal strings).
export const DECODE_ERROR = '{"message": "Unable to decode query."}';
export const INVALID_ERROR = '{"message": "Invalid request."}';

const parseBool = (v: string): boolean => !(v === '0' || v.toLowerCase() === 'false');

function parseInt64(v: string): number | undefined {
  return /^[+-]?\d+$/.test(v) ? Number(v) : undefined;
}

/** RFC 3339 (what metav1.Time accepts in a query); undefined when malformed. */
export function parseRfc3339(v: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** Pure: the query of a containerLogs request → options, or the status and body upstream answers with. */
export function computePodLogOptions(query: URLSearchParams): LogOptionsResult {
  const q = new URLSearchParams(query);
  const tail = q.get('tail');
  if (tail !== null && tail !== '') {
    if (tail === 'all') q.delete('tailLines');
    else q.set('tailLines', tail);
  }
  const o: PodLogOptions = { follow: false, previous: false, timestamps: false };
  for (const key of ['follow', 'previous', 'timestamps'] as const) {
    const v = q.get(key);
    if (v !== null) o[key] = parseBool(v);
  }
  for (const key of ['tailLines', 'limitBytes', 'sinceSeconds'] as const) {
    const v = q.get(key);
    if (v === null) continue;
    const n = parseInt64(v);
    if (n === undefined) return { ok: false, status: 400, message: DECODE_ERROR };
    o[key] = n;
  }
  const since = q.get('sinceTime');
  if (since !== null && since !== '') {
    const t = parseRfc3339(since);
    if (t === undefined) return { ok: false, status: 400, message: DECODE_ERROR };
    o.sinceTimeMs = t;
  }
  // ValidatePodLogOptions (pkg/apis/core/validation).
  const invalid =
    (o.tailLines !== undefined && o.tailLines < 0) ||
    (o.limitBytes !== undefined && o.limitBytes < 1) ||
    (o.sinceSeconds !== undefined && o.sinceTimeMs !== undefined) ||
    (o.sinceSeconds !== undefined && o.sinceSeconds < 1);
  if (invalid) return { ok: false, status: 422, message: INVALID_ERROR };
  return { ok: true, options: o };
}

/** The earliest log time to show (ms), from sinceSeconds or sinceTime; undefined = everything. */
export function sinceMs(o: PodLogOptions, nowMs: number): number | undefined {
  if (o.sinceTimeMs !== undefined) return o.sinceTimeMs;
  if (o.sinceSeconds !== undefined) return nowMs - o.sinceSeconds * 1000;
  return undefined;
}
