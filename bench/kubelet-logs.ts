// bench/kubelet-logs: container log streaming through berth's kubelet API (GET /containerLogs over HTTPS with a client
// certificate, standalone berth) next to its floor measured in the same run: Docker reading the same json-file log
// (`docker logs` through the Engine API). Then berth's RSS while `--streams` follow streams stay open for `--hold-s`.
// Usage: node bench/kubelet-logs.ts [--mb 64] [--runs 3] [--streams 20] [--hold-s 20]  → JSON on stdout.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { BerthProcess, docker, manifestFiles, podManifest, shContainer, waitFor } from '../test/helpers/berth.ts';
import { makeCA, signClient } from '../test/helpers/pki.ts';
import { ensureTestImages } from '../test/integration/helpers/docker-images.ts';
import { argOpt, median } from './lib.ts';

const mb = Number(argOpt('mb', '64'));
const runs = Number(argOpt('runs', '3'));
const streams = Number(argOpt('streams', '20'));
const holdS = Number(argOpt('hold-s', '20'));

const pki = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-pki-'));
const ca = makeCA(pki, 'ca');
const client = signClient(pki, ca, 'bench', '/CN=bench');
const port = 20000 + Math.floor(Math.random() * 20000);
const berth = new BerthProcess({ extraArgs: [`--port=${port}`, '--address=127.0.0.1', `--client-ca-file=${ca.certFile}`, '--container-log-max-size=1Gi', '--log-level=warn'] });

/** GETs a path and counts the body bytes; resolves with bytes and milliseconds. */
function get(p: string, signal?: AbortSignal): Promise<{ bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    const req = https.get({ host: '127.0.0.1', port, path: p, rejectUnauthorized: false, cert: client.cert, key: client.key, signal }, (res) => {
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ bytes, ms: performance.now() - t0 }));
      res.on('error', () => resolve({ bytes, ms: performance.now() - t0 }));
    });
    req.on('error', (err) => (signal?.aborted ? resolve({ bytes, ms: performance.now() - t0 }) : reject(err)));
  });
}

async function dockerLogs(id: string): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const stream = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: true })) as NodeJS.ReadableStream;
  let bytes = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.on('end', () => resolve());
  });
  return { bytes, ms: performance.now() - t0 };
}

const rssMB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function main(): Promise<void> {
  await ensureTestImages(docker);
  mkdirSync(berth.manifestDir, { recursive: true });
  // 100-byte lines, `mb` MiB in all, then the container exits (a finished log: both sides read to the end).
  const lines = Math.floor((mb * 1024 * 1024) / 100);
  manifestFiles(berth).write(
    'writer.yaml',
    podManifest('writer', { restartPolicy: 'Never', containers: [shContainer('c', `yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -n ${lines}`)] }),
  );
  manifestFiles(berth).write('idle.yaml', podManifest('idle', { terminationGracePeriodSeconds: 1, containers: [shContainer('c', 'echo started; sleep 3600')] }));
  berth.start();
  try {
    const pod = await waitFor(async () => (await berth.pod('writer'))?.status.containerStatuses?.[0]?.state?.terminated && (await berth.pod('writer')), 180_000, 'writer done');
    const id = pod.status.containerStatuses![0]!.containerID!.replace('docker://', '');
    await waitFor(async () => (await berth.pod('idle'))?.status.containerStatuses?.[0]?.state?.running, 60_000, 'idle running');
    const logPath = `/containerLogs/default/writer-${berth.nodeName}/c`;
    const berthRuns: number[] = [];
    const floorRuns: number[] = [];
    let outMB = 0;
    for (let i = 0; i < runs; i++) {
      const b = await get(logPath);
      const f = await dockerLogs(id);
      outMB = b.bytes / 1e6;
      berthRuns.push(b.bytes / 1e6 / (b.ms / 1000));
      floorRuns.push(f.bytes / 1e6 / (f.ms / 1000));
    }
    // Follow streams held open on a running container: berth's RSS before, with them open, and after they close.
    const pid = berth.pid!;
    const before = rssMB(pid);
    const ac = new AbortController();
    const open = Array.from({ length: streams }, () => get(`/containerLogs/default/idle-${berth.nodeName}/c?follow=true`, ac.signal));
    await new Promise((r) => setTimeout(r, 2000));
    const samples: number[] = [];
    for (let t = 0; t < holdS; t += 5) {
      await new Promise((r) => setTimeout(r, 5000));
      samples.push(rssMB(pid));
    }
    ac.abort();
    await Promise.all(open);
    await new Promise((r) => setTimeout(r, 1000));
    process.stdout.write(
      `${JSON.stringify(
        {
          logStreaming: {
            outputMB: Number(outMB.toFixed(1)),
            berthMBps: { median: Number(median(berthRuns).toFixed(0)), runs: berthRuns.map((x) => Number(x.toFixed(0))) },
            floorDockerLogsMBps: { median: Number(median(floorRuns).toFixed(0)), runs: floorRuns.map((x) => Number(x.toFixed(0))) },
            target: '>= 50 MB/s',
          },
          followStreams: { streams, holdS, rssMB: { before: Math.round(before), whileOpen: samples.map(Math.round), after: Math.round(rssMB(pid)) } },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await berth.cleanup();
    rmSync(pki, { recursive: true, force: true });
  }
}

await main();
