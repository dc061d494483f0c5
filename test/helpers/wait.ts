// The one polling helper of the tests and benchmarks.

/**
 * Polls `fn` every `intervalMs` (100) until it returns a value other than undefined/null/false without throwing,
 * and returns that value. On timeout rejects, naming `what` and the last error. `opts` may be just `what`.
 */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  opts: string | { intervalMs?: number; what?: string } = {},
): Promise<T> {
  const { intervalMs = 100, what = 'condition' } = typeof opts === 'string' ? { what: opts } : opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
      last = undefined;
    } catch (err: unknown) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: ${last.message}` : last !== undefined ? `: ${String(last)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
