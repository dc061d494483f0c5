// Prints the plain summary line of a vitest JSON report ("N passed, N failed[, N skipped][, N suites failed]") and,
// when BERTH_REQUIRE_ALL=1, fails (exit 3) if any test or suite was skipped, naming them: a CI run must never pass
// with a suite that did not run. Outside that it only warns. Used by scripts/test.sh; tested by test/unit/ci-guard.
// Usage: node scripts/vitest-summary.mjs REPORT.json
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const requireAll = ['1', 'true', 'yes'].includes((process.env.BERTH_REQUIRE_ALL ?? '').toLowerCase());
const skippedTests = [];
const skippedFiles = [];
for (const f of r.testResults ?? []) {
  const results = f.assertionResults ?? [];
  const skipped = results.filter((a) => a.status === 'pending' || a.status === 'skipped' || a.status === 'todo');
  if (results.length && skipped.length === results.length) skippedFiles.push(f.name);
  for (const a of skipped) skippedTests.push(`${f.name}: ${a.fullName ?? a.title}`);
}
const skipped = Math.max((r.numPendingTests ?? 0) + (r.numTodoTests ?? 0), skippedTests.length);
const failedSuites = r.numFailedTestSuites ?? 0;
let line = `${r.numPassedTests ?? 0} passed, ${r.numFailedTests ?? 0} failed`;
if (skipped) line += `, ${skipped} skipped`;
if (failedSuites) line += `, ${failedSuites} suites failed`;
console.log(line);
if (skipped) {
  const shown = skippedTests.slice(0, 50);
  const head = requireAll ? 'FAIL: tests were skipped under BERTH_REQUIRE_ALL=1 (every suite must run):' : 'WARNING: tests were skipped; this run does not cover them:';
  console.log([head, ...skippedFiles.map((f) => `  whole file: ${f}`), ...shown.map((t) => `  ${t}`), ...(skippedTests.length > shown.length ? [`  ... and ${skippedTests.length - shown.length} more`] : [])].join('\n'));
  if (requireAll) process.exit(3);
}
