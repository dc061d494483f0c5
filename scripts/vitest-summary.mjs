// Prints the plain summary line of a vitest JSON report ("N passed, N failed[, N skipped]", the run's last line; a
// test file that failed outside any test, e.g. in beforeAll or at import, counts as one failed and is named above) and,
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
// Files that failed although none of their tests did (an import error, a failing hook): each counts as a failure.
const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'));
for (const f of brokenFiles) console.log(`FAIL: ${f.name} failed outside its tests: ${String(f.message ?? '').split('\n')[0].slice(0, 300)}`);
// (a report without per-file results still counts its failed suites when no test failed)
const broken = brokenFiles.length || ((r.numFailedTests ?? 0) === 0 ? (r.numFailedTestSuites ?? 0) : 0);
let line = `${r.numPassedTests ?? 0} passed, ${(r.numFailedTests ?? 0) + broken} failed`;
if (skipped) line += `, ${skipped} skipped`;
if (skipped) {
  const shown = skippedTests.slice(0, 50);
  const head = requireAll ? 'FAIL: tests were skipped under BERTH_REQUIRE_ALL=1 (every suite must run):' : 'WARNING: tests were skipped; this run does not cover them:';
  console.log([head, ...skippedFiles.map((f) => `  whole file: ${f}`), ...shown.map((t) => `  ${t}`), ...(skippedTests.length > shown.length ? [`  ... and ${skippedTests.length - shown.length} more`] : [])].join('\n'));
}
// The plain line comes last: CI reads the run's closing line.
console.log(line);
if (skipped && requireAll) process.exit(3);
