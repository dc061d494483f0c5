// Secret values out of messages: a runtime's error can quote what berth handed it (a program name or argument
// expanded from a Secret with $(VAR)), and that message becomes a Warning Event, a container status and a log line.

/** What replaces a secret value in a message. */
export const REDACTED = '<redacted>';
/** Values shorter than this are left alone: "1" or "yes" would garble every message and give nothing away. */
export const MIN_REDACTED_LENGTH = 4;

/**
 * `message` with every occurrence of each value (of at least MIN_REDACTED_LENGTH characters) replaced by REDACTED,
 * longest value first so that a value containing another is replaced whole. Pure.
 */
export function redactValues(message: string, values: Iterable<string>): string {
  const vs = [...new Set(values)].filter((v) => v.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length);
  let out = message;
  for (const v of vs) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return out;
}
