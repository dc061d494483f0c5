// The skip-guard policy (issue #9 defect 1): CI must never pass with a suite that did not run. Under
// BERTH_REQUIRE_ALL=1 (scripts/test.sh, .ci/run) or CI=true a missing API server/dockerd/iptables fails the suite,
// and scripts/vitest-summary.mjs fails the run when any test was skipped; without them skips are allowed but loud.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { mustRunAll, requireEnv, RequiredEnvironmentError } from '../helpers/require.ts';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');

describe('requireEnv', () => {
  it('runs the suite when nothing is missing, whatever the environment', () => {
    expect(requireEnv('dockerd', undefined, { env: { BERTH_REQUIRE_ALL: '1' } })).toBe(true);
    expect(requireEnv('dockerd', undefined, { env: {} })).toBe(true);
  });

  it.each([[{ BERTH_REQUIRE_ALL: '1' }], [{ BERTH_REQUIRE_ALL: 'true' }], [{ CI: 'true' }], [{ CI: '1' }]])('throws instead of skipping under %j', (env) => {
    expect(mustRunAll(env)).toBe(true);
    expect(() => requireEnv('dockerd', 'connect ENOENT /var/run/docker.sock', { env })).toThrow(RequiredEnvironmentError);
    expect(() => requireEnv('dockerd', 'connect ENOENT /var/run/docker.sock', { env })).toThrow(/dockerd not available: connect ENOENT/);
  });

  it('outside CI it skips, with a loud warning naming what is missing', () => {
    const out: string[] = [];
    expect(requireEnv('iptables', 'iptables-restore not found', { env: { CI: 'false' }, hint: 'apt-get install iptables', warn: (l) => out.push(l) })).toBe(false);
    expect(out.join('\n')).toMatch(/SKIPPING: iptables not available: iptables-restore not found/);
    expect(out.join('\n')).toMatch(/apt-get install iptables/);
  });
});

describe('requireCluster (the e2e guard) in a fresh process', () => {
  const script = `import { requireCluster } from ${JSON.stringify(path.join(REPO, 'test/e2e/helpers/cluster.ts'))};
    requireCluster().then((up) => console.log('up=' + up), (err) => { console.log('threw: ' + err.message); process.exit(7); });`;
  const noCluster = { BERTH_E2E_DIR: '/nonexistent-berth-e2e', BERTH_E2E_APISERVER: 'https://127.0.0.1:1', PATH: process.env.PATH ?? '' };

  it('throws when the API server is missing and BERTH_REQUIRE_ALL=1', async () => {
    const err = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...noCluster, BERTH_REQUIRE_ALL: '1' } }).then(
      () => undefined,
      (e: { code: number; stdout: string }) => e,
    );
    expect(err?.code).toBe(7);
    expect(err?.stdout).toMatch(/threw: e2e: kube-apiserver not available: .*missing/);
  });

  it('skips loudly when the API server is missing and nothing requires it', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { env: noCluster });
    expect(stdout.trim()).toBe('up=false');
    expect(stderr).toMatch(/SKIPPING: e2e: kube-apiserver not available/);
  });
});

describe('scripts/vitest-summary.mjs', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-ci-guard-'));
  const report = (name: string, r: unknown): string => {
    const f = path.join(dir, name);
    writeFileSync(f, JSON.stringify(r));
    return f;
  };
  const summary = (file: string, env: Record<string, string>): Promise<{ code: number; stdout: string }> =>
    run(process.execPath, [path.join(REPO, 'scripts/vitest-summary.mjs'), file], { env: { PATH: process.env.PATH ?? '', ...env } }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
  const withSkip = report('skip.json', {
    numPassedTests: 3,
    numFailedTests: 0,
    numPendingTests: 2,
    numTodoTests: 0,
    numFailedTestSuites: 0,
    testResults: [
      { name: '/r/test/unit/a.test.ts', assertionResults: [{ status: 'passed', fullName: 'a works' }] },
      { name: '/r/test/e2e/node.test.ts', assertionResults: [{ status: 'skipped', fullName: 'node registers' }, { status: 'skipped', fullName: 'lease renews' }] },
    ],
  });
  const clean = report('clean.json', { numPassedTests: 4, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [{ name: '/r/a.test.ts', assertionResults: [{ status: 'passed' }] }] });

  it('fails (exit 3) and names the skipped suite under BERTH_REQUIRE_ALL=1', async () => {
    const r = await summary(withSkip, { BERTH_REQUIRE_ALL: '1' });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^3 passed, 0 failed, 2 skipped$/m);
    expect(r.stdout).toMatch(/whole file: \/r\/test\/e2e\/node\.test\.ts/);
    expect(r.stdout).toMatch(/node registers/);
  });

  it('only warns about skips without BERTH_REQUIRE_ALL', async () => {
    const r = await summary(withSkip, {});
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/WARNING: tests were skipped/);
  });

  it('passes a run without skips', async () => {
    const r = await summary(clean, { BERTH_REQUIRE_ALL: '1' });
    expect(r).toEqual({ code: 0, stdout: '4 passed, 0 failed\n' });
  });

  it('counts suites that failed to load (a guard that threw) as failed in the plain summary line', async () => {
    const f = report('suite.json', { numPassedTests: 1, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, numFailedTestSuites: 1, testResults: [] });
    expect((await summary(f, { BERTH_REQUIRE_ALL: '1' })).stdout).toBe('1 passed, 1 failed\n');
  });

  it('names a file that failed outside its tests and keeps the plain line last', async () => {
    const f = report('hook.json', {
      numPassedTests: 2,
      numFailedTests: 0,
      numPendingTests: 0,
      numTodoTests: 0,
      numFailedTestSuites: 2,
      testResults: [
        { name: '/r/test/integration/a.test.ts', status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }] },
        { name: '/r/test/integration/b.test.ts', status: 'failed', message: 'Hook timed out in 120000ms\nmore', assertionResults: [] },
      ],
    });
    const out = (await summary(f, { BERTH_REQUIRE_ALL: '1' })).stdout.split('\n').filter(Boolean);
    expect(out).toEqual(['FAIL: /r/test/integration/b.test.ts failed outside its tests: Hook timed out in 120000ms', '2 passed, 1 failed']);
  });
});

describe('the CI entry points', () => {
  it('.ci/run and scripts/test.sh require every suite and fail on skipped tests', () => {
    expect(readFileSync(path.join(REPO, '.ci/run'), 'utf8')).toMatch(/^export BERTH_REQUIRE_ALL=1$/m);
    const sh = readFileSync(path.join(REPO, 'scripts/test.sh'), 'utf8');
    expect(sh).toMatch(/^export BERTH_REQUIRE_ALL=\$\{BERTH_REQUIRE_ALL:-1\}$/m);
    expect(sh).toMatch(/node scripts\/vitest-summary\.mjs "\$report" \|\| summary_rc=\$\?/);
    expect(sh).toMatch(/\[ "\$summary_rc" != 0 \] && exit "\$summary_rc"/);
  });
});
