// Issue 9, scenario 4: berth's root dir on a small filesystem that fills up (bench/soak/full-disk.ts, the ci
// profile's figures). Needs root (loop mount) and the real dockerd; containers are labelled with their node / test run
// and removed, the filesystem unmounted and its image removed, even when a check fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRootDir, fillDisk, fullDisk, judgeFile } from '../../bench/soak/full-disk.ts';
import { PROFILES } from '../../bench/soak.ts';
import { DockerRuntime } from '../../src/cri/docker/index.ts';
import type { PodSandboxConfig } from '../../src/cri/index.ts';
import { silentLogger, writeFileAtomic } from '../../src/lib/index.ts';
import { docker } from '../helpers/berth.ts';
import { requireEnv } from '../helpers/require.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

const isRoot = process.getuid?.() === 0;
const up = requireEnv('root (loop-mounted filesystems)', isRoot ? undefined : 'not running as root');

describe.skipIf(!up)('full root dir (issue 9 scenario 4)', () => {
  it('berth survives a full disk, names ENOSPC and the path, never leaves a state file half-written, and recovers alone when space returns', async () => {
    const r = await fullDisk(PROFILES.ci.fullDisk);
    process.stderr.write(`${r.scenario}: ${JSON.stringify({ ...r.figures, steps: undefined })}\n`);
    const f = r.figures as { corruptFiles: number; recoveryMs: number | null; enospcLogLines: number; newPodOnFullDisk: { events: string[] } };
    expect(r.failures).toEqual([]);
    expect(f.corruptFiles).toBe(0);
    expect(f.enospcLogLines).toBeGreaterThan(0);
    expect(f.newPodOnFullDisk.events.join('\n')).toMatch(/FailedMount: .*no space left on device.*\/pods\//);
    expect(f.recoveryMs).not.toBeNull();
    expect(f.recoveryMs!).toBeLessThanOrEqual(PROFILES.ci.fullDisk.recoveryBoundMs);
    expect(r.pass).toBe(true);
  }, 90_000);
});

describe.skipIf(!up)('container log links on a full --pod-logs-dir (DockerRuntime repairLogLinks)', () => {
  const RUN = randomBytes(4).toString('hex');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-loglinks-'));
  const mnt = path.join(tmp, 'logs');
  const filler = path.join(mnt, 'filler');
  const pod: PodSandboxConfig = {
    metadata: { name: 'll', namespace: 'berth-test', uid: `${RUN}-ll`, attempt: 0 },
    hostname: 'll',
    portMappings: [],
    labels: { 'io.berth.test-run': RUN },
    annotations: {},
    logDirectory: path.join(mnt, `berth-test_ll_${RUN}-ll`),
  };
  const cfg = (name: string) => ({
    metadata: { name, attempt: 0 },
    image: BUSYBOX_IMAGE,
    command: ['sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"],
    args: [],
    envs: [],
    mounts: [],
    labels: { 'io.berth.test-run': RUN },
    annotations: {},
    logPath: `${name}/0.log`,
  });
  const link = (name: string): string => path.join(pod.logDirectory!, name, '0.log');
  let sandbox = '';

  beforeAll(async () => {
    await ensureTestImages(docker);
    mkdirSync(mnt, { recursive: true });
    execFileSync('truncate', ['-s', '8M', path.join(tmp, 'logs.img')]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', path.join(tmp, 'logs.img')]);
    execFileSync('mount', ['-o', 'loop', path.join(tmp, 'logs.img'), mnt]);
    mkdirSync(pod.logDirectory!, { recursive: true });
  }, 180_000);
  afterAll(async () => {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`io.berth.test-run=${RUN}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    spawnSync('umount', [mnt]);
    rmSync(tmp, { recursive: true, force: true });
  }, 180_000);

  it('a link the full disk refused is made by a relist once space returns; before the fix it never was', async () => {
    const rt = new DockerRuntime({ docker, log: silentLogger, repairLogLinks: true, callTimeoutMs: 120_000 });
    sandbox = await rt.runPodSandbox(pod);
    await rt.listContainers(); // the runtime's first relist (nothing missing yet)
    fillDisk(filler);
    const id = await rt.createContainer(sandbox, cfg('a'), pod);
    await rt.startContainer(id); // the container runs; its link cannot be made
    expect(existsSync(link('a'))).toBe(false);
    await rt.listContainers({ podSandboxId: sandbox });
    expect(existsSync(link('a'))).toBe(false); // still full: still missing, and no error thrown from the listing
    rmSync(filler);
    await rt.listContainers({ podSandboxId: sandbox });
    expect(lstatSync(link('a')).isSymbolicLink()).toBe(true);
    expect(existsSync(link('a'))).toBe(true); // resolves to Docker's log file
  }, 180_000);

  it('a runtime started while a running container has no link (berth restarted) makes it on its first listing', async () => {
    const first = new DockerRuntime({ docker, log: silentLogger, callTimeoutMs: 120_000 });
    fillDisk(filler);
    const id = await first.createContainer(sandbox, cfg('b'), pod);
    await first.startContainer(id);
    expect(existsSync(link('b'))).toBe(false);
    rmSync(filler);
    const restarted = new DockerRuntime({ docker, log: silentLogger, repairLogLinks: true, callTimeoutMs: 120_000 });
    await restarted.listContainers();
    expect(existsSync(link('b'))).toBe(true);
  }, 180_000);

  it('a one-shot runtime (no repairLogLinks) leaves links alone', async () => {
    rmSync(link('b'));
    await new DockerRuntime({ docker, log: silentLogger, callTimeoutMs: 120_000 }).listContainers();
    expect(existsSync(link('b'))).toBe(false);
  }, 30_000);

  it('writeFileAtomic on the full disk fails naming ENOSPC and the file, and leaves the old content whole (writeFile truncates it)', async () => {
    const state = path.join(mnt, 'state.pem');
    const old = `-----BEGIN OLD-----\n${'x'.repeat(6000)}\n-----END OLD-----\n`;
    writeFileSync(state, old);
    fillDisk(filler);
    try {
      const err = await writeFileAtomic(state, 'y'.repeat(9000), { mode: 0o600 }).then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException);
      expect(err?.code).toBe('ENOSPC');
      expect(err?.message).toContain(state);
      expect(readFileSync(state, 'utf8')).toBe(old);
      expect(readdirSync(mnt).filter((f) => f.includes('.tmp-'))).toEqual([]);
      // what a plain in-place write does there (the bug class the atomic write avoids): the old bytes are gone
      await expect(writeFile(state, 'y'.repeat(20_000))).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(readFileSync(state, 'utf8')).not.toBe(old);
    } finally {
      rmSync(filler, { force: true });
      rmSync(state, { force: true });
    }
  }, 30_000);
});

// The scenario's judges on made-up root dirs: each kind of damage they exist to catch makes them say so.
describe('full-disk judges', () => {
  it('flags truncated and empty files and passes whole ones', () => {
    expect(judgeFile('pods/u/etc-hosts', Buffer.from('# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n'))).toBeUndefined();
    expect(judgeFile('pods/u/etc-hosts', Buffer.from(''))).toMatch(/truncated/);
    expect(judgeFile('pods/u/etc-hosts', Buffer.from('# Kubernetes-managed hosts file.\n127.0.0.1\tloc'))).toMatch(/truncated/);
    expect(judgeFile('pods/u/resolv.conf', Buffer.from('nameserver 10.0.0.10\nsearch a.svc\n'))).toBeUndefined();
    expect(judgeFile('pods/u/resolv.conf', Buffer.from('nameserver 10.0.0.'))).toMatch(/truncated/);
    expect(judgeFile('pki/kubelet.key', Buffer.from(''))).toMatch(/0 bytes, does not parse/);
    expect(judgeFile('pki/kubelet.crt', Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB'))).toMatch(/not one PEM certificate/);
    expect(judgeFile('pods/u/volumes/kubernetes.io~downward-api/info/..2026_01_01_00_00_00.1/podname', Buffer.from('a-no'), 'a-node')).toMatch(/not a-node/);
  });

  it('flags a dangling volume link and a missing log link, and counts a failed write version as litter', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'berth-judge-'));
    try {
      const vol = path.join(root, 'pods/u1/volumes/kubernetes.io~downward-api/info');
      mkdirSync(path.join(vol, '..2026_01_01_00_00_00.1'), { recursive: true });
      mkdirSync(path.join(vol, '..2026_01_01_00_00_01.2'), { recursive: true });
      writeFileSync(path.join(vol, '..2026_01_01_00_00_00.1/podname'), 'a-node');
      writeFileSync(path.join(vol, '..2026_01_01_00_00_01.2/podname'), '');
      symlinkSync('..2026_01_01_00_00_00.1', path.join(vol, '..data'));
      symlinkSync('..data/podname', path.join(vol, 'podname'));
      symlinkSync('..data/gone', path.join(vol, 'gone'));
      const r = checkRootDir(root, { skip: [], podNames: new Map([['u1', 'a-node']]), logLinks: new Map([[path.join(root, 'logs/x/app/0.log'), 'x/app']]) });
      expect(r.corrupt).toEqual([{ file: 'pods/u1/volumes/kubernetes.io~downward-api/info/gone', problem: 'link to ..data/gone dangles' }]);
      expect(r.strayVersionDirs).toEqual(['pods/u1/volumes/kubernetes.io~downward-api/info/..2026_01_01_00_00_01.2']);
      expect(r.missingLogLinks).toEqual(['x/app: logs/x/app/0.log']);
      expect(readdirSync(vol).length).toBe(5);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
