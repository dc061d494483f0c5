// The daemon's bundle (scripts/build.ts → one ESM file run by bin/berth) behaves as the TypeScript sources:
// it builds, prints its version, and runs a static pod on the real dockerd through the same CLI. This catches
// a dependency that breaks when bundled (a dynamic require, __dirname, a native add-on) before a node runs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN_BERTH_NODE_FLAGS, BerthProcess, REPO, docker, manifestFiles, podManifest, shContainer, waitFor } from '../helpers/berth.ts';
import { ensureTestImages } from './helpers/docker-images.ts';

describe('the bundled daemon (dist/cli/main.mjs)', () => {
  // laid out as in the repository (dist/cli/main.mjs, package.json two levels up), in a folder of its own
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bundle-'));
  const entry = path.join(dir, 'dist', 'cli', 'main.mjs');
  const berth = new BerthProcess({ entry, nodeFlags: BIN_BERTH_NODE_FLAGS });
  const { write } = manifestFiles(berth);

  beforeAll(async () => {
    await ensureTestImages(docker);
    mkdirSync(path.dirname(entry), { recursive: true });
    copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
    execFileSync(process.execPath, [path.join(REPO, 'scripts/build.ts'), '--outfile', entry], { stdio: 'pipe', timeout: 120_000 });
  }, 150_000);

  afterAll(async () => {
    await berth.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is run by bin/berth with the node flags this test (and bench/stats) use', () => {
    const launcher = readFileSync(path.join(REPO, 'bin/berth'), 'utf8');
    expect(launcher).toContain(`\${BERTH_NODE_FLAGS-${BIN_BERTH_NODE_FLAGS.join(' ')}}`);
    expect(launcher).toContain('dist/cli/main.mjs');
  });

  it('prints the package version', () => {
    const version = execFileSync(process.execPath, [entry, '--version'], { encoding: 'utf8' }).trim();
    const pkg = JSON.parse(execFileSync('cat', [path.join(REPO, 'package.json')], { encoding: 'utf8' })) as { version: string };
    expect(version).toBe(`berth ${pkg.version}`);
  });

  it('runs a static pod to Running and serves its status', async () => {
    mkdirSync(berth.manifestDir, { recursive: true });
    write('hello.yaml', podManifest('hello', { containers: [shContainer('main', 'sleep 3600')] }));
    berth.start();
    const pod = await waitFor(async () => {
      const p = await berth.pod('hello').catch(() => undefined);
      return p?.status.phase === 'Running' && p;
    }, 60_000, 'bundled berth runs the static pod');
    expect(pod.status.containerStatuses?.[0]?.ready).toBe(true);
    expect(berth.alive()).toBe(true);
    expect(berth.logs()).not.toMatch(/"level":(50|60)/);
  }, 90_000);
});
