// bench/kubelet-logs: container log streaming through berth's kubelet API (GET /containerLogs over HTTPS with a client
// certificate, standalone berth) next to its floor measured in the same run: Docker reading the same json-file log
// (`docker logs` through the Engine API). Then berth's RSS while `--streams` follow streams stay open for `--hold-s`.
// Usage: node bench/kubelet-logs.ts [--mb 64] [--runs 3] [--streams 20] [--hold-s 20]  → JSON on stdout.
// `--hold-minutes N` is the issue's memory target instead ("berth's RSS does not grow with follow streams held open
// for 10 minutes"): `--streams` (default 50 there) follow streams on a container writing a line per second, berth's
// RSS from /proc every `--sample-s` (30) seconds, the series and its least-squares slope, with berth's V8 heap and
// live handles from its read-only /metrics at each sample.
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
const holdMinutes = Number(argOpt('hold-minutes', '0'));
const streams = Number(argOpt('streams', holdMinutes > 0 ? '50' : '20'));
const holdS = Number(argOpt('hold-s', '20'));
const sampleS = Number(argOpt('sample-s', '30'));

const pki = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-pki-'));
const ca = makeCA(pki, 'ca');
const client = signClient(pki, ca, 'bench', '/CN=bench');
const port = 20000 + Math.floor(Math.random() * 20000);
const berth = new BerthProcess({ extraArgs: [`--port=${port}`, '--address=127.0.0.1', `--client-ca-file=${ca.certFile}`, '--container-log-max-size=1Gi', '--log-level=warn'] });

/** GETs a path and counts the body bytes; resolves with bytes and milliseconds. */
function get(p: string, signal?: AbortSignal, onData?: (bytes: number) => void): Promise<{ bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    const req = https.get({ host: '127.0.0.1', port, path: p, rejectUnauthorized: false, cert: client.cert, key: client.key, signal }, (res) => {
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        onData?.(c.length);
      });
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
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** berth's own gauges from its read-only /metrics (prom-client defaults): V8 heap in use and live handles. */
async function heapOf(): Promise<{ heapUsedMB?: number; heapTotalMB?: number; handles?: number }> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${berth.port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const g = (name: string): number | undefined => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const mb = (x: number | undefined): number | undefined => (x === undefined ? undefined : Number((x / 1048576).toFixed(1)));
    return { heapUsedMB: mb(g('nodejs_heap_size_used_bytes')), heapTotalMB: mb(g('nodejs_heap_size_total_bytes')), handles: g('nodejs_active_handles_total') };
  } catch {
    return {};
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Lowest and highest RSS in the first and the second half of the hold (after the first minute). */
function halves(series: { s: number; rssMB: number }[]): { first: { min: number; max: number }; second: { min: number; max: number } } {
  const steady = series.filter((p) => p.s >= 60);
  const mid = Math.floor(steady.length / 2);
  const range = (xs: { rssMB: number }[]): { min: number; max: number } => ({ min: Math.min(...xs.map((p) => p.rssMB)), max: Math.max(...xs.map((p) => p.rssMB)) });
  return { first: range(steady.slice(0, mid)), second: range(steady.slice(mid)) };
}

/**
 * `--hold-minutes`: `streams` follow streams on a container logging a line a second for `holdMinutes`; berth's RSS
 * every `sampleS`. Each stream's bytes are counted so that a stream that stalled or closed shows in the result.
 */
async function hold(): Promise<void> {
  mkdirSync(berth.manifestDir, { recursive: true });
  manifestFiles(berth).write(
    'ticker.yaml',
    podManifest('ticker', { terminationGracePeriodSeconds: 1, containers: [shContainer('c', 'i=0; while true; do i=$((i+1)); echo "tick $i $(date +%s) xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; sleep 1; done')] }),
  );
  berth.start();
  try {
    await waitFor(async () => (await berth.pod('ticker'))?.status.containerStatuses?.[0]?.state?.running, 120_000, 'ticker running');
    const pid = berth.pid!;
    await sleep(5000);
    const idleMB = rssMB(pid);
    const ac = new AbortController();
    const perStream = Array.from({ length: streams }, () => 0);
    const open = perStream.map((_, i) =>
      get(`/containerLogs/default/ticker-${berth.nodeName}/c?follow=true`, ac.signal, (n) => (perStream[i]! += n)),
    );
    const t0 = performance.now();
    const series: { s: number; rssMB: number; streamBytesMin: number; heapUsedMB?: number; heapTotalMB?: number; handles?: number }[] = [];
    const endMs = holdMinutes * 60_000;
    for (let next = 0; next <= endMs; next += sampleS * 1000) {
      await sleep(Math.max(0, next - (performance.now() - t0)));
      series.push({ s: Math.round((performance.now() - t0) / 1000), rssMB: Number(rssMB(pid).toFixed(1)), streamBytesMin: Math.min(...perStream), ...(await heapOf()) });
      process.stderr.write(`hold: ${JSON.stringify(series.at(-1))}\n`);
    }
    ac.abort();
    await Promise.all(open);
    await sleep(2000);
    const afterMB = rssMB(pid);
    const xsMin = series.map((p) => p.s / 60);
    const ys = series.map((p) => p.rssMB);
    // The first minute holds the streams' one-off setup (TLS sessions, buffers); the slope after it is the growth.
    const steady = series.filter((p) => p.s >= 60);
    process.stdout.write(
      `${JSON.stringify(
        {
          followStreamsHold: {
            streams,
            holdMinutes,
            sampleS,
            rssMB: { idleBefore: Number(idleMB.toFixed(1)), series: series.map((p) => [p.s, p.rssMB]), afterClose: Number(afterMB.toFixed(1)) },
            // V8's heap in use (live data plus garbage not yet collected) and berth's live handles (sockets, timers).
            heapUsedMB: series.map((p) => [p.s, p.heapUsedMB ?? null]),
            heapTotalMB: series.map((p) => [p.s, p.heapTotalMB ?? null]),
            handles: series.map((p) => [p.s, p.handles ?? null]),
            slopeMBPerMin: Number(slope(xsMin, ys).toFixed(3)),
            // V8's heap grows and shrinks in steps, so a straight line over one window depends on where it ends in
            // that cycle: the lows and highs of each half say whether the floor or the ceiling moves.
            halvesMB: halves(series),
            slopeAfterFirstMinuteMBPerMin: steady.length > 1 ? Number(slope(steady.map((p) => p.s / 60), steady.map((p) => p.rssMB)).toFixed(3)) : null,
            bytesPerStream: { min: Math.min(...perStream), max: Math.max(...perStream) },
            target: 'RSS does not grow with follow streams held open for 10 minutes',
          },
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

async function main(): Promise<void> {
  await ensureTestImages(docker);
  if (holdMinutes > 0) return hold();
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
