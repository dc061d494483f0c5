// Garbage collection against the real dockerd. The collector (src/kubelet/gc) runs with the real DockerRuntime
// on containers, sandboxes, images and directories this test makes: dead containers beyond the per-pod limit go
// (the last dead instance stays), everything dead of a pod that is gone goes, then its sandbox, pod and log
// directories; with the image thresholds forced low an unused image made locally (`docker import`) is removed
// while an image a container uses and the pause image stay. Through the real CLI, a crash-looping pod keeps
// exactly its last dead instance (what `kubectl logs --previous` reads).
//
// Why the image part narrows the image *list*: this machine's dockerd is shared with other suites, and a high
// threshold of 1% really collects every unused image older than the minimum age (that is the feature). The
// collector is given a view of the images listing only this test's images and the pause image; removal, the
// in-use check (every container in Docker) and the imagefs figures are all real.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, existsSync, lstatSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DockerRuntime, PAUSE_IMAGE, buildTar } from '../../src/cri/docker/index.ts';
import type { Image } from '../../src/cri/index.ts';
import { GarbageCollector } from '../../src/kubelet/gc/index.ts';
import { MemoryRecorder } from '../../src/kubelet/status/events.ts';
import { hostMachineReader } from '../../src/kubelet/node/index.ts';
import { createLogger } from '../../src/lib/index.ts';
import { docker, manifestFiles, podManifest, shContainer, waitFor, useBerth } from '../helpers/berth.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

const run = randomBytes(4).toString('hex');
const NODE = `gc-${run}`;
const REPO = `berth-gc-test/${run}`;
const log = createLogger({ level: process.env.BERTH_TEST_LOG ?? 'silent' });
const runtime = new DockerRuntime({ log });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const labels = (uid: string, type: 'container' | 'podsandbox', extra: Record<string, string> = {}): Record<string, string> => ({
  'io.kubernetes.docker.type': type,
  'io.berth.managed-by': 'berth',
  'io.berth.node': NODE,
  'io.berth.test-run': run,
  'io.kubernetes.pod.uid': uid,
  'io.kubernetes.pod.name': `p-${uid}`,
  'io.kubernetes.pod.namespace': 'default',
  ...extra,
});

/** A container that ran `true` and exited (or never started), labelled as berth labels its own. */
async function deadContainer(uid: string, name: string, sandboxId: string, image = BUSYBOX_IMAGE, start = true): Promise<string> {
  const c = await docker.createContainer({
    Image: image,
    Cmd: ['true'],
    name: `k8s_${name}_p-${uid}_default_${uid}_${randomBytes(3).toString('hex')}`,
    Labels: labels(uid, 'container', { 'io.kubernetes.container.name': name, 'io.kubernetes.sandbox.id': sandboxId }),
  });
  if (start) {
    await c.start();
    await c.wait();
  }
  return c.id;
}

async function sandbox(uid: string): Promise<string> {
  const c = await docker.createContainer({
    Image: BUSYBOX_IMAGE,
    Cmd: ['true'],
    name: `k8s_POD_p-${uid}_default_${uid}_0`,
    Labels: labels(uid, 'podsandbox', { 'io.kubernetes.container.name': 'POD' }),
  });
  await c.start();
  await c.wait();
  return c.id;
}

const exists = async (id: string): Promise<boolean> =>
  docker
    .getContainer(id)
    .inspect()
    .then(() => true)
    .catch(() => false);

const imageExists = async (ref: string): Promise<boolean> =>
  docker
    .getImage(ref)
    .inspect()
    .then(() => true)
    .catch(() => false);

async function importTiny(ref: string): Promise<void> {
  const [repo, tag] = ref.split(':') as [string, string];
  const tar = buildTar([{ type: 'file', path: 'id', data: randomBytes(64) }]);
  const stream = await docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo, tag } as object);
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream as NodeJS.ReadableStream, (err: Error | null) => (err ? reject(err) : resolve())));
}

describe('garbage collection on the real Docker Engine', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-gc-'));
  const rootDir = path.join(tmp, 'root');
  const logsDir = path.join(tmp, 'logs');
  const desired = new Set<string>(['alive']);
  const recorder = new MemoryRecorder({ log });
  const gc = (imagePolicy = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 120_000 }): GarbageCollector =>
    new GarbageCollector({
      runtime,
      images: {
        // Only this test's images and the pause image are candidates (see the header).
        listImages: async () => (await runtime.listImages()).filter((i: Image) => i.repoTags.some((t) => t.startsWith(`${REPO}:`) || t === PAUSE_IMAGE)),
        removeImage: (ref) => runtime.removeImage(ref),
      },
      nodeName: NODE,
      rootDir,
      podLogsDir: logsDir,
      sandboxImage: PAUSE_IMAGE,
      pods: { allSourcesReady: () => true, isPodDeleted: (uid) => !desired.has(uid), isPodTerminated: () => false },
      imageFs: async () => {
        const fs = (await hostMachineReader({ rootDir, imageFsDir: '/var/lib/docker' }).nodeStats()).imageFs;
        return fs && { capacityBytes: fs.capacityBytes, availableBytes: fs.availableBytes };
      },
      imagePolicy,
      recorder,
      nodeRef: { kind: 'Node', name: NODE },
      log,
    });

  beforeAll(async () => {
    await ensureTestImages(docker);
  }, 120_000);

  afterAll(async () => {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`io.berth.test-run=${run}`] } }))
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const i of await docker.listImages({ filters: { reference: [`${REPO}`] } })) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('removes dead containers beyond one per container, everything dead of a gone pod, then its sandbox and directories', async () => {
    const sbAlive = await sandbox('alive');
    const app: string[] = [];
    for (let i = 0; i < 3; i++) {
      app.push(await deadContainer('alive', 'app', sbAlive));
      await sleep(1100); // Docker's Created has one-second resolution
    }
    const sbGone = await sandbox('gone');
    const gone = await deadContainer('gone', 'app', sbGone);
    for (const uid of ['alive', 'gone']) {
      mkdirSync(path.join(rootDir, 'pods', uid, 'volumes'), { recursive: true });
      mkdirSync(path.join(logsDir, `default_p-${uid}_${uid}`, 'app'), { recursive: true });
    }

    const first = await gc().collectContainers(false);
    expect(first.failed).toBe(0);
    expect(first.containers).toBe(3);
    expect(await exists(app[2]!)).toBe(true); // the last dead instance of app
    expect(await exists(app[1]!)).toBe(false);
    expect(await exists(app[0]!)).toBe(false);
    expect(await exists(gone)).toBe(false);
    expect(await exists(sbAlive)).toBe(true);
    // The gone pod's sandbox still had a container at listing time; the next pass takes it and the directories.
    const second = await gc().collectContainers(false);
    expect(second.sandboxes).toBe(1);
    expect(await exists(sbGone)).toBe(false);
    expect(second.podDirs + second.logDirs).toBe(2);
    expect(existsSync(path.join(rootDir, 'pods', 'gone'))).toBe(false);
    expect(existsSync(path.join(logsDir, 'default_p-gone_gone'))).toBe(false);
    expect(existsSync(path.join(rootDir, 'pods', 'alive'))).toBe(true);
    expect(existsSync(path.join(logsDir, 'default_p-alive_alive'))).toBe(true);
  }, 60_000);

  it('removes dangling /var/log/containers links (container gone, or exited with its log gone) and keeps the rest', async () => {
    const linksDir = path.join(tmp, 'containers'); // dirname(--pod-logs-dir)/containers, as berth makes them
    mkdirSync(linksDir, { recursive: true });
    const side = await deadContainer('alive', 'side', 'none');
    const live = await docker.createContainer({ Image: BUSYBOX_IMAGE, Cmd: ['sleep', '60'], Labels: labels('alive', 'container', { 'io.kubernetes.container.name': 'live' }) });
    await live.start();
    const logFile = path.join(tmp, 'side.json.log');
    writeFileSync(logFile, '{}\n');
    const kubeletPath = path.join(logsDir, 'default_p-gone2_gone2', 'app', '0.log'); // → a Docker file that is gone
    mkdirSync(path.dirname(kubeletPath), { recursive: true });
    symlinkSync(path.join(tmp, 'no-such-json.log'), kubeletPath);
    const goneId = randomBytes(32).toString('hex');
    const gone2Id = randomBytes(32).toString('hex');
    const entries: Record<string, { target: string; kept: boolean }> = {
      [`p-alive_default_side-${side}.log`]: { target: logFile, kept: true }, // exited, log there: `logs --previous`
      [`p-alive_default_live-${live.id}.log`]: { target: path.join(tmp, 'rotating.log'), kept: true }, // running: skipped
      [`p-alive_default_side-x-${side}.log`]: { target: path.join(tmp, 'gone.log'), kept: false }, // exited, log gone
      [`p-gone_default_app-${goneId}.log`]: { target: logFile, kept: false }, // no such container
      [`p-gone2_default_app-${gone2Id}.log`]: { target: kubeletPath, kept: false }, // no container, chain dangles
    };
    for (const [name, e] of Object.entries(entries)) symlinkSync(e.target, path.join(linksDir, name));
    writeFileSync(path.join(linksDir, 'other.log'), 'not a link berth made\n');
    symlinkSync(path.join(tmp, 'gone.log'), path.join(linksDir, `someone-else-${goneId}.log`));

    const summary = await gc().collectContainers(false);
    expect(summary.logLinks).toBe(3);
    const present = (name: string): boolean => {
      try {
        return lstatSync(path.join(linksDir, name)) !== undefined;
      } catch {
        return false;
      }
    };
    for (const [name, e] of Object.entries(entries)) expect(present(name), name).toBe(e.kept);
    expect(present('other.log')).toBe(true);
    expect(present(`someone-else-${goneId}.log`)).toBe(true);
    expect(await exists(side)).toBe(true);
    await live.remove({ force: true });
  }, 60_000);

  it('with the thresholds forced low, removes an unused local image and keeps the one in use and the pause image', async () => {
    await importTiny(`${REPO}:unused`);
    await importTiny(`${REPO}:inuse`);
    await deadContainer('alive', 'user', 'none', `${REPO}:inuse`, false);
    // The pause image exists on any machine that ran a pod; make sure it does here.
    await runtime.ensurePauseImage();
    expect(await imageExists(PAUSE_IMAGE)).toBe(true);

    const summary = await gc({ highThresholdPercent: 1, lowThresholdPercent: 0, minAgeMs: 0 }).collectImages();
    expect(summary.usagePercent).toBeGreaterThanOrEqual(1);
    expect(summary.removed).toEqual([`${REPO}:unused`]);
    expect(summary.failed).toBe(0);
    expect(await imageExists(`${REPO}:unused`)).toBe(false);
    expect(await imageExists(`${REPO}:inuse`)).toBe(true);
    expect(await imageExists(PAUSE_IMAGE)).toBe(true);
    // It could not free "down to 0%": a FreeDiskSpaceFailed Warning on the Node, as upstream.
    expect(recorder.all().some((e) => e.reason === 'FreeDiskSpaceFailed' && e.type === 'Warning')).toBe(true);
  }, 60_000);

  it('honours the minimum age: an image first seen just now is not collected', async () => {
    await importTiny(`${REPO}:young`);
    const summary = await gc({ highThresholdPercent: 1, lowThresholdPercent: 0, minAgeMs: 60_000 }).collectImages();
    expect(summary.removed).toEqual([]);
    expect(await imageExists(`${REPO}:young`)).toBe(true);
  }, 60_000);
});

describe('berth keeps the last dead instance of a crash-looping container', () => {
  const berth = useBerth({ extraArgs: ['--crash-loop-backoff-initial=1s', '--crash-loop-backoff-max=1s'], hookTimeoutMs: 60_000 });
  const { write } = manifestFiles(berth);

  it('after several restarts, one dead instance remains next to the current one', async () => {
    write('crash.yaml', podManifest('crash', { restartPolicy: 'Always', containers: [shContainer('app', 'echo run; exit 3')] }));
    await waitFor(async () => ((await berth.pod('crash'))?.status.containerStatuses?.[0]?.restartCount ?? 0) >= 3, 90_000, 'three restarts');
    // Let the last sync's garbage removal land, then count this pod's app containers in Docker.
    const apps = await waitFor(async () => {
      const cs = (await berth.containers()).filter((c) => c.Labels['io.kubernetes.container.name'] === 'app');
      return cs.length <= 2 && cs;
    }, 20_000, 'at most two app containers');
    expect(apps.length).toBeGreaterThanOrEqual(1);
    const exited = apps.filter((c) => c.State === 'exited');
    expect(exited.length).toBeGreaterThanOrEqual(1);
    expect(exited.length).toBeLessThanOrEqual(2);
  }, 120_000);
});
