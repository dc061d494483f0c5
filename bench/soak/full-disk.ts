// Scenario 4, full disk: berth standalone (static pods, no API server) with its --root-dir on a small filesystem of
// its own (a loop-mounted ext4 image without reserved blocks; a size-limited tmpfs when loop devices do not work,
// `figures.filesystem` says which). A pod runs, then a filler file takes every free block, and berth is driven
// through writes on the full disk: a new pod (pod dir, volumes, /etc/hosts, resolv.conf, termination-message file),
// a container restart (termination-message file, log link), a sandbox restart (a new IP: /etc/hosts rewritten), a
// restart of berth, and a start with its serving
// certificate to generate. After every step: berth is alive (or, for the start that must write its certificate,
// exited with a clear error), every file berth keeps in the root dir is whole (see checkRootDir), errors name ENOSPC
// and the path. Then the filler goes and, with no other action (a berth that exited is started again as systemd's
// Restart=always would), everything must recover: pods Running, files written, log links in place.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthProcess, docker, manifestFiles, podManifest, shContainer, type BerthPods, type PodWithStatus } from '../../test/helpers/berth.ts';
import { makeCA } from '../../test/helpers/pki.ts';
import { ensureTestImages } from '../../test/integration/helpers/docker-images.ts';
import { DOCKER_TYPE_SANDBOX, L } from '../../src/cri/labels.ts';
import { progress, sleep, waitFor, type ScenarioResult } from './common.ts';

export interface FullDiskOptions {
  /** Size of the root dir's filesystem. */
  sizeMiB: number;
  /** Pass bound: filler removed → every pod Running and every file whole again. */
  recoveryBoundMs: number;
}

/** One file of the root dir that is not whole. */
export interface FileProblem {
  file: string;
  problem: string;
}

export interface RootDirReport {
  /** Files checked (regular files and links berth keeps). */
  checked: number;
  corrupt: FileProblem[];
  /** Timestamped payload dirs of an atomic-writer volume that `..data` does not point at (a failed write's litter). */
  strayVersionDirs: string[];
  /** Log links of running containers that are missing or dangle. */
  missingLogLinks: string[];
}

const PEM_CERT = /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n?$/;

/**
 * Judges one file berth keeps in its root dir by what it must hold. Returns the problem, or undefined when whole.
 * `expectPodName` is the pod's name for a downward-API `podname` file.
 */
export function judgeFile(rel: string, content: Buffer, expectPodName?: string): string | undefined {
  const base = path.basename(rel);
  const text = content.toString('utf8');
  if (base === 'etc-hosts') {
    if (!text.endsWith('\n')) return `${content.length} bytes, no final newline (truncated)`;
    if (!/^127\.0\.0\.1\s+localhost$/m.test(text)) return 'no localhost line';
    return undefined;
  }
  if (base === 'resolv.conf') {
    if (text === '') return 'empty';
    if (!text.endsWith('\n')) return 'no final newline (truncated)';
    if (!text.split('\n').filter(Boolean).every((l) => /^(nameserver|search|options) \S/.test(l))) return 'a line that is not nameserver/search/options';
    return undefined;
  }
  if (base === 'kubelet.crt') {
    if (!PEM_CERT.test(text)) return `${content.length} bytes, not one PEM certificate`;
    try {
      new X509Certificate(content);
    } catch (err: unknown) {
      return `does not parse: ${String(err)}`;
    }
    return undefined;
  }
  if (base === 'kubelet.key') {
    try {
      createPrivateKey(content);
    } catch (err: unknown) {
      return `${content.length} bytes, does not parse: ${String(err)}`;
    }
    return undefined;
  }
  if (base === 'podname' && expectPodName !== undefined) return text === expectPodName ? undefined : `holds ${JSON.stringify(text)}, not ${expectPodName}`;
  return undefined;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/**
 * Reads every file berth keeps under `root` (skipping `skip`: the filler, lost+found) and judges it: etc-hosts,
 * resolv.conf, the serving certificate and key, downward-API payloads (`..data` must resolve, every visible name
 * through it, `podname` = the pod's name), log links of the running containers given (`logLinks`: path → container).
 */
export function checkRootDir(root: string, o: { skip: string[]; podNames: Map<string, string>; logLinks: Map<string, string> }): RootDirReport {
  const r: RootDirReport = { checked: 0, corrupt: [], strayVersionDirs: [], missingLogLinks: [] };
  if (!existsSync(root)) return r;
  const files = walk(root).filter((f) => !o.skip.some((s) => f === s || f.startsWith(s + '/')));
  for (const f of files) {
    const rel = path.relative(root, f);
    const st = lstatSync(f);
    const uid = /^pods\/([^/]+)\//.exec(rel)?.[1];
    if (st.isSymbolicLink()) {
      if (rel.startsWith('logs/')) continue; // judged below, for running containers
      r.checked++;
      try {
        realpathSync(f);
      } catch {
        r.corrupt.push({ file: rel, problem: `link to ${readlinkSync(f)} dangles` });
      }
      continue;
    }
    if (!st.isFile()) continue;
    // A version dir of an atomic-writer volume: only the one ..data names counts; others are litter of a failed write.
    const ver = /^(pods\/[^/]+\/volumes\/[^/]+\/[^/]+)\/(\.\.\d{4}_[^/]+)\//.exec(rel);
    if (ver) {
      const vol = path.join(root, ver[1]!);
      let current = '';
      try {
        current = readlinkSync(path.join(vol, '..data'));
      } catch {
        // no ..data: the volume was never completed
      }
      if (ver[2] !== current) {
        if (!r.strayVersionDirs.includes(path.join(ver[1]!, ver[2]!))) r.strayVersionDirs.push(path.join(ver[1]!, ver[2]!));
        continue;
      }
    }
    r.checked++;
    const problem = judgeFile(rel, readFileSync(f), uid ? o.podNames.get(uid) : undefined);
    if (problem) r.corrupt.push({ file: rel, problem });
  }
  for (const [link, container] of o.logLinks) {
    try {
      realpathSync(link);
    } catch {
      r.missingLogLinks.push(`${container}: ${path.relative(root, link)}`);
    }
  }
  return r;
}

/** Writes `file` until the filesystem refuses (1 MiB, then 4 KiB, then 512-byte writes); returns the bytes written. */
export function fillDisk(file: string): number {
  const fd = openSync(file, 'a');
  let n = 0;
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          n += writeSync(fd, buf);
        } catch (err: unknown) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
    try {
      fsyncSync(fd);
    } catch {
      // delayed allocation failing at fsync still leaves the disk full
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

const sh = (cmd: string, args: string[]): { ok: boolean; out: string } => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
};

/** A small filesystem at `mnt`: ext4 on a loop device (no reserved blocks: root may not dip into them), else tmpfs. */
function makeSmallFs(image: string, mnt: string, sizeMiB: number): { filesystem: string; note?: string } {
  mkdirSync(mnt, { recursive: true });
  execFileSync('truncate', ['-s', `${sizeMiB}M`, image]);
  const mk = sh('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  const mnted = mk.ok ? sh('mount', ['-o', 'loop', image, mnt]) : mk;
  if (mnted.ok) return { filesystem: 'ext4 on loop' };
  rmSync(image, { force: true });
  const t = sh('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'berth-soak-disk', mnt]);
  if (!t.ok) throw new Error(`no small filesystem: loop mount failed (${mnted.out}); tmpfs failed (${t.out})`);
  return { filesystem: 'tmpfs (size-limited)', note: `loop mount failed: ${mnted.out}` };
}

/** Unmounts everything under and at `mnt` (deepest first). */
function unmountAll(mnt: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === mnt || m.startsWith(mnt + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) sh('umount', [m]).ok || sh('umount', ['-l', m]);
}

/** The pod's shape: an emptyDir, a downward-API volume on the disk, the default termination-message file. */
function diskPod(name: string): string {
  return podManifest(
    name,
    {
      terminationGracePeriodSeconds: 1,
      containers: [
        shContainer('app', "trap 'exit 0' TERM; echo started; while true; do sleep 1; done", {
          volumeMounts: [
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'info', mountPath: '/info' },
          ],
        }),
      ],
      volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'info', downwardAPI: { items: [{ path: 'podname', fieldRef: { fieldPath: 'metadata.name' } }] } },
      ],
    },
    { labels: { 'berth-soak': 'full-disk' } },
  );
}

const ENOSPC = /ENOSPC|no space left on device/i;

interface PodView {
  running: boolean;
  containerId: string;
  restartCount: number;
  waiting: string;
}

function view(p: PodWithStatus | undefined): PodView | undefined {
  if (!p) return undefined;
  const c = p.status.containerStatuses?.find((s) => s.name === 'app');
  const w = c?.state?.waiting;
  return {
    running: p.status.phase === 'Running' && !!c?.state?.running && !!c.ready,
    containerId: (c?.containerID ?? '').replace('docker://', ''),
    restartCount: c?.restartCount ?? 0,
    waiting: w ? `${w.reason ?? ''}: ${w.message ?? ''}` : '',
  };
}

export async function fullDisk(o: FullDiskOptions): Promise<ScenarioResult> {
  const failures: string[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-soak-disk-'));
  const image = path.join(tmp, 'root.img');
  const mnt = path.join(tmp, 'root');
  const filler = path.join(mnt, 'filler');
  const node = `soak-disk-${Math.random().toString(36).slice(2, 8)}`;
  const kubeletPort = 30000 + Math.floor(Math.random() * 10000);
  const figures: Record<string, unknown> = { sizeMiB: o.sizeMiB, node, recoveryBoundMs: o.recoveryBoundMs };
  const steps: Record<string, unknown>[] = [];
  let berth: BerthProcess | undefined;
  const exits: { step: string; code: number | null; enospcInOutput: boolean; line: string }[] = [];
  try {
    Object.assign(figures, makeSmallFs(image, mnt, o.sizeMiB));
    await ensureTestImages(docker);
    const ca = makeCA(tmp, 'client-ca');
    berth = new BerthProcess({
      nodeName: node,
      rootDir: mnt,
      extraArgs: [
        '--log-level=warn',
        // The kubelet API on so the serving certificate is generated into <root-dir>/pki.
        `--port=${kubeletPort}`,
        '--address=127.0.0.1',
        `--client-ca-file=${ca.certFile}`,
        '--authorization-mode=AlwaysAllow',
        // The shared dockerd's images are not this scenario's to collect.
        '--image-gc-high-threshold=100',
        '--crash-loop-backoff-initial=1s',
        '--crash-loop-backoff-max=2s',
      ],
    });
    const b = berth;
    mkdirSync(b.manifestDir, { recursive: true });
    const files = manifestFiles(b);
    const logOffset = { n: 0 };
    const newLogLines = (): string[] => {
      const text = b.logs();
      const lines = text.slice(logOffset.n).split('\n').filter(Boolean);
      logOffset.n = text.length;
      return lines;
    };
    const pods = async (): Promise<BerthPods> => b.pods();
    const podView = async (name: string): Promise<PodView | undefined> => view(await b.pod(name));

    /** Every running container's log link (from berth's Docker labels) → pod/container. */
    const logLinks = async (): Promise<Map<string, string>> => {
      const m = new Map<string, string>();
      for (const c of await b.containers()) {
        const link = c.Labels[L.containerLogPath];
        if (c.State === 'running' && link && c.Labels[L.dockerType] !== DOCKER_TYPE_SANDBOX) m.set(link, `${c.Labels[L.podName]}/${c.Labels[L.containerName]}`);
      }
      return m;
    };
    const check = async (step: string, extra: Record<string, unknown> = {}): Promise<void> => {
      const list = await pods().catch(() => undefined);
      const podNames = new Map((list?.items ?? []).map((p) => [p.metadata!.uid!, p.metadata!.name!]));
      const report = checkRootDir(mnt, { skip: [filler, path.join(mnt, 'lost+found')], podNames, logLinks: await logLinks() });
      const lines = newLogLines();
      const enospc = lines.filter((l) => ENOSPC.test(l));
      const entry = {
        step,
        berthAlive: b.alive(),
        freeBytes: statfsSync(mnt).bavail * statfsSync(mnt).bsize,
        filesChecked: report.checked,
        corrupt: report.corrupt,
        strayVersionDirs: report.strayVersionDirs.length,
        missingLogLinks: report.missingLogLinks,
        enospcLogLines: enospc.length,
        enospcLogLinesWithPath: enospc.filter((l) => l.includes(mnt)).length,
        sampleError: enospc[0]?.slice(0, 400),
        ...extra,
      };
      steps.push(entry);
      progress(`full-disk: ${step}: ${JSON.stringify({ ...entry, sampleError: undefined })}`);
      for (const c of report.corrupt) failures.push(`${step}: ${c.file}: ${c.problem}`);
      if (enospc.length > enospc.filter((l) => l.includes(mnt)).length) failures.push(`${step}: ${enospc.length - entry.enospcLogLinesWithPath} ENOSPC log lines without the path, e.g. ${enospc.find((l) => !l.includes(mnt))?.slice(0, 300)}`);
    };
    const waitRunning = (name: string, ms: number, pred: (v: PodView) => boolean = () => true): Promise<PodView> =>
      waitFor(async () => {
        if (!b.alive()) throw new Error(`berth exited: ${b.logs().slice(-1500)}`);
        const v = await podView(name);
        return v?.running && pred(v) ? v : undefined;
      }, ms, { what: `pod ${name} Running`, intervalMs: 200 });
    const startAndAnswer = async (): Promise<number> => {
      const t0 = performance.now();
      b.start();
      await waitFor(() => {
        if (!b.alive()) throw new Error('exited');
        return b.pods();
      }, 30_000, { what: 'berth answering', intervalMs: 100 });
      return Math.round(performance.now() - t0);
    };

    // 1. Before the disk fills: pod a Running; berth has written its certificate, pod dir, volumes, log links.
    files.write('a.json', diskPod('a'));
    await startAndAnswer();
    const a0 = await waitRunning('a', 60_000);
    await check('1-baseline');

    // 2. The disk fills.
    figures.fillerBytes = fillDisk(filler);
    await sleep(3000);
    await check('2-disk-full');

    // 3. A new pod on the full disk: it must not run, and say why (an upstream reason with ENOSPC and the path).
    files.write('b.json', diskPod('b'));
    const bName = `b-${node}`;
    const told = await waitFor(async () => {
      const l = await pods();
      const ev = l.events.filter((e) => e.object.name === bName && ENOSPC.test(e.message));
      const v = view(l.items.find((p) => p.metadata?.name === bName));
      return ev.length && v ? { events: ev.map((e) => `${e.type} ${e.reason}: ${e.message}`), waiting: v.waiting, running: v.running } : undefined;
    }, 30_000, { what: 'pod b to report ENOSPC', intervalMs: 250 }).catch((err: unknown) => ({ events: [] as string[], waiting: '', running: false, error: String(err) }));
    figures.newPodOnFullDisk = told;
    if (!told.events.length) failures.push(`3: pod b reported no event naming ENOSPC (${'error' in told ? told.error : ''})`);
    else if (!told.events.some((e) => e.includes(mnt))) failures.push(`3: pod b's ENOSPC events name no path: ${told.events[0]}`);
    await check('3-new-pod-on-full-disk', { podB: told });

    // 4. A container restart on the full disk: pod a's app is killed; berth starts attempt 1.
    await docker.getContainer(a0.containerId).kill().catch(() => undefined);
    const a1 = await waitRunning('a', 30_000, (v) => v.containerId !== a0.containerId).catch((err: unknown) => {
      failures.push(`4: pod a's app not restarted on the full disk: ${String(err)}`);
      return undefined;
    });
    await sleep(1000);
    await check('4-container-restart-on-full-disk', { restartCount: a1?.restartCount });

    // 4b. A sandbox restart on the full disk: pod a's pause container is killed; berth makes a new sandbox (a new IP:
    // /etc/hosts rewritten) and starts the app again in it.
    const pause = (await b.containers()).find((c) => c.Labels[L.dockerType] === DOCKER_TYPE_SANDBOX && c.Labels[L.podName] === `a-${node}` && c.State === 'running');
    if (pause) await docker.getContainer(pause.Id).kill().catch(() => undefined);
    const a1b = await waitRunning('a', 30_000, (v) => v.containerId !== a1?.containerId).catch((err: unknown) => {
      failures.push(`4b: pod a not running again after its sandbox died on the full disk: ${String(err)}`);
      return undefined;
    });
    await sleep(1000);
    await check('4b-sandbox-restart-on-full-disk', { restartCount: a1b?.restartCount });

    // 5. berth restarted (SIGTERM) on the full disk: it comes up and re-adopts pod a (same container).
    await b.stop();
    figures.restartOnFullDiskMs = await startAndAnswer();
    const a2 = await waitRunning('a', 30_000);
    const aLast = a1b ?? a1;
    if (aLast && a2.containerId !== aLast.containerId) failures.push(`5: pod a's container changed across a berth restart on the full disk: ${aLast.containerId.slice(0, 12)} → ${a2.containerId.slice(0, 12)}`);
    await check('5-berth-restart-on-full-disk');

    // 6. kill -9, and the serving certificate to be generated on the full disk (pki dir kept, its files removed):
    // berth may refuse to start, but then with a clear error and without a half-written certificate or key.
    process.kill(b.pid!, 'SIGKILL');
    await waitFor(() => !b.alive(), 10_000, 'berth gone after SIGKILL');
    await b.stop();
    const pki = path.join(mnt, 'pki');
    for (const f of ['kubelet.crt', 'kubelet.key']) rmSync(path.join(pki, f), { force: true });
    fillDisk(filler); // what the removal freed
    const before = b.logs().length;
    b.start();
    const up = await waitFor(async () => (!b.alive() ? 'exited' : (await b.pods().then(() => 'answering'))), 30_000, { what: 'berth answering or exited', intervalMs: 100 }).catch(() => 'neither');
    await sleep(1000);
    const out = b.logs().slice(before);
    if (!b.alive()) {
      const code = await b.stop();
      // The fatal line (`berth: …` on stderr, or pino's fatal) must say what and where.
      const lines = out.split('\n').filter(Boolean);
      const line = lines.find((l) => l.startsWith('berth: ') || l.includes('"level":60')) ?? lines.slice(-1)[0] ?? '';
      exits.push({ step: '6', code, enospcInOutput: ENOSPC.test(line), line: line.slice(0, 400) });
      if (!ENOSPC.test(line) || !line.includes(pki)) failures.push(`6: berth exited on the full disk without naming ENOSPC and ${pki}: ${line.slice(0, 300)}`);
    } else if (up === 'neither') failures.push('6: berth neither answered nor exited in 30 s');
    await check('6-start-needing-its-certificate-on-full-disk', { berthStarted: up });

    // 7. Space returns. Nothing else is done (a berth that exited is started again, as systemd's Restart=always).
    rmSync(filler);
    const t0 = performance.now();
    if (!b.alive()) {
      await sleep(1000);
      await startAndAnswer();
    }
    let recovered: RootDirReport | undefined;
    const recovery = await waitFor(async () => {
      if (!b.alive()) throw new Error(`berth exited: ${b.logs().slice(-800)}`);
      const l = await pods();
      const va = view(l.items.find((p) => p.metadata?.name === `a-${node}`));
      const vb = view(l.items.find((p) => p.metadata?.name === bName));
      if (!va?.running || !vb?.running) return undefined;
      const podNames = new Map(l.items.map((p) => [p.metadata!.uid!, p.metadata!.name!]));
      recovered = checkRootDir(mnt, { skip: [path.join(mnt, 'lost+found')], podNames, logLinks: await logLinks() });
      const certOk = ['kubelet.crt', 'kubelet.key'].every((f) => existsSync(path.join(pki, f)));
      return recovered.corrupt.length === 0 && recovered.missingLogLinks.length === 0 && certOk ? Math.round(performance.now() - t0) : undefined;
    }, o.recoveryBoundMs * 2, { what: 'recovery after the filler went', intervalMs: 200 }).catch((err: unknown) => {
      failures.push(`7: not recovered within ${o.recoveryBoundMs * 2} ms: ${String(err)}; ${JSON.stringify(recovered ?? {})}`);
      return undefined;
    });
    figures.recoveryMs = recovery ?? null;
    if (recovery !== undefined && recovery > o.recoveryBoundMs) failures.push(`7: recovery took ${recovery} ms > ${o.recoveryBoundMs} ms`);
    await check('7-space-returned');

    // 8. One more restart on the recovered disk: the same containers, every file whole.
    const before8 = await Promise.all(['a', 'b'].map(podView));
    await b.stop();
    await startAndAnswer();
    const after8 = await Promise.all(['a', 'b'].map((n) => waitRunning(n, 30_000)));
    for (const [i, n] of ['a', 'b'].entries())
      if (before8[i]?.containerId !== after8[i]!.containerId) failures.push(`8: pod ${n}'s container changed across the restart`);
    await check('8-restart-after-recovery');
  } catch (err: unknown) {
    failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    if (berth) {
      await berth.stop();
      await berth.cleanup().catch((err: unknown) => progress(`full-disk: cleanup: ${String(err)}`));
      // berth's own temp dir (manifests, its log): kept, and named in the figures, when something failed.
      if (!failures.length) rmSync(path.dirname(berth.logFile), { recursive: true, force: true });
      else figures.berthLog = berth.logFile;
    }
    unmountAll(mnt);
    if (!existsSync(mnt) || !readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `)) {
      rmSync(image, { force: true });
      rmSync(mnt, { recursive: true, force: true });
      if (!failures.length) rmSync(tmp, { recursive: true, force: true });
    } else failures.push(`cleanup: ${mnt} still mounted`);
  }
  const all = steps.flatMap((s) => s.corrupt as FileProblem[]);
  Object.assign(figures, {
    corruptFiles: all.length,
    enospcLogLines: steps.reduce((s, e) => s + (e.enospcLogLines as number), 0),
    strayVersionDirsMax: Math.max(0, ...steps.map((s) => s.strayVersionDirs as number)),
    berthExits: exits,
    steps,
  });
  return { scenario: '4-full-disk', pass: failures.length === 0 && steps.length === 9, failures, figures };
}

/** Leftovers of earlier runs that died before their cleanup: mounts under the tmp dir. */
export function strayFullDiskMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => /\/berth-soak-disk-[^/]+\/root$/.test(m) && statSync(m, { throwIfNoEntry: false }) !== undefined);
}
