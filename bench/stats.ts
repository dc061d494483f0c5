// bench/stats: (1) CPU time of one stats housekeeping pass (src/cadvisor Housekeeping.refresh, steady state: no
// relist) over N tracked containers — pods of the test image made through berth's DockerRuntime (sandbox + one
// `sleep` container each, labels and cgroup parents /kubepods/besteffort/pod<uid> exactly as berth makes them;
// sandboxes count as containers) — next to the floor: readFileSync of exactly the files a steady pass opens
// (recorded), with no parsing and no objects. (2) A whole standalone berth idle (no pods, proxy off) over 60 s: CPU % of one core and RSS from
// /proc/<pid>/stat and /proc/<pid>/statm — run from the esbuild bundle (what bin/berth runs) and from the TS
// sources, then from the bundle with --idle-pods static pods (default 110) running — next to a bare `node`
// process idling (the floor).
// Usage: node bench/stats.ts [--sizes 10,110,250] [--passes 15] [--idle-seconds 60] [--idle-pods 110]
//                           [--only housekeeping|idle] [--idle-modes bundle,sources,pods]
//   → JSON on stdout.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Housekeeping } from '../src/cadvisor/index.ts';
import { readKernelFile } from '../src/cadvisor/cgroups.ts';
import { DockerRuntime } from '../src/cri/docker/index.ts';
import { L, type ContainerConfig, type PodSandboxConfig } from '../src/cri/index.ts';
import { silentLogger } from '../src/lib/index.ts';
import { BerthProcess, BIN_BERTH_NODE_FLAGS, docker, REPO, waitFor } from '../test/helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../test/integration/helpers/docker-images.ts';
import { argOpt, median, percentile } from './lib.ts';

const sizes = argOpt('sizes', '10,110,250').split(',').map(Number);
const passes = Number(argOpt('passes', '15'));
const idleSeconds = Number(argOpt('idle-seconds', '60'));
const idlePods = Number(argOpt('idle-pods', '110'));
const NODE = `bench-stats-${randomBytes(3).toString('hex')}`;
const rt = new DockerRuntime({ docker, log: silentLogger });
const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

const cpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

interface Pod {
  sandbox: string;
  containers: string[];
}

async function makePod(i: number): Promise<Pod> {
  const uid = `${NODE}-${i}`;
  const sb: PodSandboxConfig = {
    metadata: { name: `p${i}`, namespace: 'bench', uid, attempt: 0 },
    hostname: `p${i}`,
    portMappings: [],
    labels: { [L.node]: NODE },
    annotations: {},
    linux: { cgroupParent: `/kubepods/besteffort/pod${uid}` },
  };
  const sandbox = await rt.runPodSandbox(sb);
  const cfg: ContainerConfig = { metadata: { name: 'c', attempt: 0 }, image: BUSYBOX_IMAGE, command: ['sleep', '3600'], args: [], envs: [], mounts: [], labels: { [L.node]: NODE }, annotations: {} };
  const id = await rt.createContainer(sandbox, cfg, sb);
  await rt.startContainer(id);
  return { sandbox, containers: [id] };
}

/** Grows the set to `n` tracked containers (2 per pod), a few pods at a time. */
async function growTo(pods: Pod[], n: number): Promise<void> {
  const want = Math.ceil(n / 2);
  while (pods.length < want) {
    const batch = Array.from({ length: Math.min(6, want - pods.length) }, (_, k) => pods.length + k);
    pods.push(...(await Promise.all(batch.map(makePod))));
    log(`  ${pods.length}/${want} pods`);
  }
}

async function housekeepingBench(): Promise<unknown[]> {
  const out: unknown[] = [];
  const pods: Pod[] = [];
  try {
    for (const n of sizes) {
      log(`housekeeping: ${n} containers`);
      await growTo(pods, n);
      // The floor is measured on exactly the files one steady pass opens (recorded through the read seam).
      let recording: string[] | undefined;
      const read = (p: string): string | undefined => {
        recording?.push(p);
        return readKernelFile(p);
      };
      const hk = new Housekeeping({ runtime: rt, images: rt, nodeName: NODE, rootDir: '/var/lib/berth', log: silentLogger, slowPeriodMs: 3_600_000, read });
      const c0 = cpuMicros();
      await hk.refresh(); // relist + inspect of every container: the one-off cost when a set appears
      const firstPassMs = (cpuMicros() - c0) / 1000;
      const tracked = hk.latest()!.pods.reduce((a, p) => a + p.containers.length + (p.sandbox ? 1 : 0), 0);
      const samples: number[] = [];
      for (let i = 0; i < passes; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const t = cpuMicros();
        await hk.refresh();
        samples.push((cpuMicros() - t) / 1000);
      }
      recording = [];
      await hk.refresh();
      const files = recording;
      recording = undefined;
      const floor: number[] = [];
      for (let i = 0; i < passes; i++) {
        const t = cpuMicros();
        for (const f of files) {
          try {
            readFileSync(f, 'utf8');
          } catch {
            // a file this kernel lacks
          }
        }
        floor.push((cpuMicros() - t) / 1000);
      }
      hk.stop();
      const row = {
        containers: n,
        tracked,
        pods: pods.length,
        passCpuMs: { p50: round(median(samples)), p90: round(percentile(samples, 90)), max: round(Math.max(...samples)) },
        firstPassWithRelistCpuMs: round(firstPassMs),
        floorRawReadCpuMs: { p50: round(median(floor)), files: files.length },
        targetMs: n === 110 ? 20 : undefined,
      };
      log(JSON.stringify(row));
      out.push(row);
    }
  } finally {
    log('removing bench pods');
    for (let i = 0; i < pods.length; i += 8) await Promise.all(pods.slice(i, i + 8).map((p) => rt.removePodSandbox(p.sandbox).catch(() => undefined)));
  }
  return out;
}

const round = (x: number): number => Math.round(x * 100) / 100;
const CLK_TCK = 100;
const PAGE = 4096;

function procCpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}
function procRssBytes(pid: number): number {
  const f = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
  return Number(f[1]) * PAGE;
}

/** CPU % of one core and RSS (mean, max) of `pid` over `seconds`, sampled every 5 s. */
async function observe(pid: number, seconds: number): Promise<{ cpuPercentOfCore: number; rssMiB: { mean: number; max: number } }> {
  const t0 = performance.now();
  const k0 = procCpuTicks(pid);
  const rss: number[] = [];
  while (performance.now() - t0 < seconds * 1000) {
    rss.push(procRssBytes(pid));
    await new Promise((r) => setTimeout(r, 5000));
  }
  const cpu = (procCpuTicks(pid) - k0) / CLK_TCK / ((performance.now() - t0) / 1000);
  const mib = (b: number): number => round(b / 2 ** 20);
  return { cpuPercentOfCore: round(cpu * 100), rssMiB: { mean: mib(rss.reduce((a, b) => a + b, 0) / rss.length), max: mib(Math.max(...rss)) } };
}

/** A standalone berth with no pods, run from `entry` (the esbuild bundle bin/berth runs, or the TS sources). */
async function idleBerth(entry: string | undefined, pods = 0): Promise<unknown> {
  const berth = new BerthProcess({ extraArgs: ['--log-level=warn'], ...(entry ? { entry, nodeFlags: BIN_BERTH_NODE_FLAGS } : {}) });
  mkdirSync(berth.manifestDir, { recursive: true });
  for (let i = 0; i < pods; i++)
    writeFileSync(
      path.join(berth.manifestDir, `idle-${i}.json`),
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `idle-${i}`, namespace: 'default' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }] } }),
    );
  berth.start();
  try {
    await waitFor(() => berth.pods(), 30_000, 'berth up');
    if (pods > 0) {
      await waitFor(async () => (await berth.pods()).items.filter((p) => p.status.phase === 'Running').length >= pods, 600_000, `${pods} pods Running`);
      log(`  ${pods} pods running`);
    }
    await new Promise((r) => setTimeout(r, 15_000));
    return await observe(berth.pid!, idleSeconds);
  } finally {
    await berth.cleanup();
  }
}

async function idleBench(): Promise<unknown> {
  // Two levels under the repository, as dist/cli/main.mjs: the bundle finds ../../package.json.
  const bundleDir = path.join(REPO, 'dist', `bench-stats-${randomBytes(3).toString('hex')}`);
  const bundle = path.join(bundleDir, 'main.mjs');
  execFileSync(process.execPath, [path.join(REPO, 'scripts/build.ts'), '--outfile', bundle], { stdio: 'ignore' });
  try {
    const modes = argOpt('idle-modes', 'bundle,sources,pods').split(',');
    if (modes.includes('bundle')) log(`berth idle (bundle, as bin/berth runs it): ${idleSeconds} s after 15 s to settle`);
    const bundled = modes.includes('bundle') ? await idleBerth(bundle) : undefined;
    if (modes.includes('sources')) log(`berth idle (TypeScript sources through Node's type stripping): ${idleSeconds} s`);
    const sources = modes.includes('sources') ? await idleBerth(undefined) : undefined;
    const pods = idlePods > 0 && modes.includes('pods');
    if (pods) log(`berth (bundle) with ${idlePods} idle pods: ${idleSeconds} s once they run`);
    const withPods = pods ? await idleBerth(bundle, idlePods) : undefined;
    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const floor = await observe(bare.pid!, Math.min(idleSeconds, 30));
      return {
        seconds: idleSeconds,
        berthBundle: bundled,
        berthSources: sources,
        ...(withPods ? { [`berthBundleWith${idlePods}Pods`]: withPods } : {}),
        floorBareNode: floor,
        target: { noPods: { cpuPercentOfCore: 1, rssMiB: 90 }, pods110: { cpuPercentOfCore: 4, rssMiB: 150 } },
      };
    } finally {
      bare.kill();
    }
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await ensureTestImages(docker);
  const only = argOpt('only', 'all');
  const housekeeping = only === 'idle' ? undefined : await housekeepingBench();
  const idle = only === 'housekeeping' ? undefined : await idleBench();
  process.stdout.write(`${JSON.stringify({ bench: 'stats', date: new Date().toISOString(), housekeeping, idle }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/stats failed: ${String(err)}\n`);
  process.exit(1);
});
