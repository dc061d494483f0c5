// bench/startup: time from static pod manifests appearing to their containers running, through berth,
// next to the raw Docker Engine API floor for the same sandboxes and containers with the same parallelism.
// Usage: node bench/startup.ts [--sizes 1,30] [--runs 3]   → JSON on stdout.
import { writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BerthProcess, docker, waitFor } from '../test/helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../test/integration/helpers/docker-images.ts';
import { argOpt, median, rawDockerFloor } from './lib.ts';

const sizes = argOpt('sizes', '1,30').split(',').map(Number);
const runs = Number(argOpt('runs', '3'));

const rawFloor = async (n: number, tag: string): Promise<number> => (await rawDockerFloor(n, tag)).wallMs;

function manifest(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'sleep 3600'] }] },
  });
}

/** berth: write n manifests at once; time until n app containers have a Docker `start` event. */
async function throughBerth(berth: BerthProcess, n: number, tag: string): Promise<number> {
  const started = new Set<string>();
  const stream = (await docker.getEvents({ filters: { type: ['container'], event: ['start'], label: [`io.berth.node=${berth.nodeName}`] } })) as NodeJS.ReadableStream;
  let last = 0;
  stream.on('data', (buf: Buffer) => {
    for (const line of buf.toString().split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { id: string; Actor: { Attributes: Record<string, string> } };
      if (e.Actor.Attributes['io.kubernetes.container.name'] === 'c') {
        started.add(e.id);
        last = performance.now();
      }
    }
  });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) writeFileSync(path.join(berth.manifestDir, `${tag}-${i}.json`), manifest(`${tag}-${i}`));
  await waitFor(() => started.size >= n, 120_000, `${n} containers started`);
  (stream as unknown as { destroy: () => void }).destroy();
  return last - t0;
}

async function clearPods(berth: BerthProcess): Promise<void> {
  for (const f of readdirSync(berth.manifestDir)) rmSync(path.join(berth.manifestDir, f));
  await waitFor(async () => (await berth.containers()).length === 0, 120_000, 'pods removed');
}

async function main(): Promise<void> {
  await ensureTestImages(docker);
  const berth = new BerthProcess({ extraArgs: ['--log-level=warn'] });
  mkdirSync(berth.manifestDir, { recursive: true });
  berth.start();
  await waitFor(() => berth.pods(), 20_000, 'berth up');
  // Warm-up: pause image built, caches filled.
  await throughBerth(berth, 1, 'warm');
  await clearPods(berth);
  await rawFloor(1, 'warm');
  const results = [];
  for (const n of sizes) {
    const raw: number[] = [];
    const viaBerth: number[] = [];
    for (let r = 0; r < runs; r++) {
      raw.push(await rawFloor(n, `r${n}x${r}`));
      viaBerth.push(await throughBerth(berth, n, `b${n}x${r}`));
      await clearPods(berth);
    }
    results.push({
      pods: n,
      runs,
      rawDockerMs: { median: Math.round(median(raw)), all: raw.map(Math.round) },
      berthMs: { median: Math.round(median(viaBerth)), all: viaBerth.map(Math.round) },
      ratio: Number((median(viaBerth) / median(raw)).toFixed(2)),
      target: 1.25,
    });
  }
  await berth.cleanup();
  process.stdout.write(JSON.stringify({ bench: 'startup', node: process.version, results }, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
