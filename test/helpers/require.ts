// The one skip-guard policy of the test suites. A suite that needs something from the machine (the API server,
// dockerd, iptables, nft, network namespaces) asks `requireEnv(what, problem)`: it runs when the problem is
// undefined; otherwise, under BERTH_REQUIRE_ALL=1 (scripts/test.sh sets it) or CI=true, it throws — the suite
// fails instead of being skipped, so CI can never pass with a suite that did not run — and outside those it
// warns loudly on stderr and returns false so the caller can `describe.skipIf(!ok)`.

export const truthy = (v: string | undefined): boolean => ['true', '1', 'yes'].includes((v ?? '').toLowerCase());

/** True when every suite must run (skips are failures): BERTH_REQUIRE_ALL=1 or CI=true. */
export function mustRunAll(env: Record<string, string | undefined> = process.env): boolean {
  return truthy(env.BERTH_REQUIRE_ALL) || truthy(env.CI);
}

export class RequiredEnvironmentError extends Error {
  constructor(what: string, problem: string) {
    super(`${what} not available: ${problem} (BERTH_REQUIRE_ALL/CI set: failing instead of skipping)`);
    this.name = 'RequiredEnvironmentError';
  }
}

/**
 * The guard. `problem` undefined = available → true. Otherwise throws RequiredEnvironmentError when every suite must
 * run, else writes a loud warning (`warn`, default stderr) and returns false.
 */
export function requireEnv(
  what: string,
  problem: string | undefined,
  o: { env?: Record<string, string | undefined>; hint?: string; warn?: (line: string) => void } = {},
): boolean {
  if (problem === undefined) return true;
  if (mustRunAll(o.env ?? process.env)) throw new RequiredEnvironmentError(what, problem);
  const bar = '!'.repeat(78);
  const lines = [bar, `!! SKIPPING: ${what} not available: ${problem}`, ...(o.hint ? [`!! ${o.hint}`] : []), '!! this run does NOT test it (CI runs with BERTH_REQUIRE_ALL=1, where this fails)', bar];
  (o.warn ?? ((l: string) => process.stderr.write(l + '\n')))(lines.join('\n'));
  return false;
}
