// Stats wiring for `berth run` (the housekeeping provider, its Prometheus registries and HTTP routes) and the
// `berth stats` command: a live table like `docker stats` (POD, CONTAINER, CPU %, MEM working set / limit,
// NET I/O, BLOCK I/O, PIDS) read from the running berth's read-only port, or sampled in-process from the
// cgroups when berth is not running. `-o json` prints rows as JSON; `--no-stream` prints one sample.
import http from 'node:http';
import type { DockerRuntime } from '../cri/docker/index.ts';
import {
  Housekeeping,
  createBerthMetrics,
  createCadvisorRegistry,
  createProbeMetrics,
  createResourceRegistry,
  createStatsRoutes,
  routesHandler,
  type HttpRoute,
  type MachineInfo,
  type StatsSnapshot,
} from '../cadvisor/index.ts';
import { createLogger, errorMessage, type Logger } from '../lib/index.ts';
import type { Kubelet } from '../kubelet/index.ts';
import type { BerthConfig } from './config.ts';
import { table } from './print.ts';

export interface RunningStats {
  provider: Housekeeping;
  /** For the kubelet API server (:10250) and, until it serves them, the read-only port. */
  routes: HttpRoute[];
  /** KubeletServer `extra` adapter. */
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  stop(): void;
}

export function startStats(o: { cfg: BerthConfig; log: Logger; runtime: DockerRuntime; kubelet: Kubelet }): RunningStats {
  const provider = new Housekeeping({
    runtime: o.runtime,
    images: o.runtime,
    nodeName: o.cfg.nodeName,
    rootDir: o.cfg.rootDir,
    intervalMs: o.cfg.housekeepingIntervalMs,
    log: o.log.child({ component: 'stats' }),
  });
  provider.start();
  const probes = createProbeMetrics();
  o.kubelet.probes.onProbeRun = (run) => probes.record(run);
  const berth = createBerthMetrics(provider);
  o.kubelet.pleg.onRelist = (ms) => berth.plegRelistDuration.observe(ms / 1000);
  o.kubelet.onPodSync = (ms) => berth.podWorkerDuration.observe({ operation: 'sync' }, ms / 1000);
  const routes = createStatsRoutes({
    provider,
    nodeName: o.cfg.nodeName,
    cadvisor: createCadvisorRegistry(provider),
    resource: createResourceRegistry(provider),
    probes: probes.registry,
    berth: berth.registry,
  });
  return { provider, routes, handler: routesHandler(routes), stop: () => provider.stop() };
}

export interface StatsRow {
  pod: string;
  namespace: string;
  container: string;
  id: string;
  cpuPercent?: number;
  memoryWorkingSetBytes?: number;
  memoryLimitBytes?: number;
  netRxBytes?: number;
  netTxBytes?: number;
  blockReadBytes?: number;
  blockWriteBytes?: number;
  pids?: number;
}

/** One row per running container; CPU % is of one core (100 % = one core busy), as `docker stats`. */
export function buildStatsRows(snap: StatsSnapshot, machine: MachineInfo): StatsRow[] {
  const rows: StatsRow[] = [];
  for (const p of snap.pods) {
    const eth = p.network?.interfaces.find((i) => i.name === (p.network?.defaultInterface ?? 'eth0'));
    for (const c of p.containers)
      rows.push({
        pod: p.pod.name,
        namespace: p.pod.namespace,
        container: c.name,
        id: c.id.slice(0, 12),
        cpuPercent: c.cpu?.usageNanoCores === undefined ? undefined : c.cpu.usageNanoCores / 1e7,
        memoryWorkingSetBytes: c.memory?.workingSetBytes,
        memoryLimitBytes: c.memory ? (c.memory.limitBytes ?? machine.memoryCapacityBytes) : undefined,
        netRxBytes: eth?.rxBytes,
        netTxBytes: eth?.txBytes,
        blockReadBytes: c.blkio?.readBytes,
        blockWriteBytes: c.blkio?.writeBytes,
        pids: c.pids?.current,
      });
  }
  return rows.sort((a, b) => `${a.namespace}/${a.pod}/${a.container}`.localeCompare(`${b.namespace}/${b.pod}/${b.container}`));
}

/** docker's units.HumanSize / BytesSize style: 1.5MiB, 12kB. */
export function humanBytes(n: number | undefined, binary = true): string {
  if (n === undefined) return '--';
  const base = binary ? 1024 : 1000;
  const units = binary ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '')}${units[i]}`;
}

export function formatStatsTable(rows: StatsRow[]): string {
  return table(
    ['POD', 'CONTAINER', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
    rows.map((r) => [
      r.namespace === 'default' ? r.pod : `${r.namespace}/${r.pod}`,
      r.container,
      r.cpuPercent === undefined ? '--' : `${r.cpuPercent.toFixed(2)}%`,
      `${humanBytes(r.memoryWorkingSetBytes)} / ${humanBytes(r.memoryLimitBytes)}`,
      r.memoryWorkingSetBytes === undefined || !r.memoryLimitBytes ? '--' : `${((100 * r.memoryWorkingSetBytes) / r.memoryLimitBytes).toFixed(2)}%`,
      `${humanBytes(r.netRxBytes, false)} / ${humanBytes(r.netTxBytes, false)}`,
      `${humanBytes(r.blockReadBytes, false)} / ${humanBytes(r.blockWriteBytes, false)}`,
      r.pids === undefined ? '--' : String(r.pids),
    ]),
  );
}

type Source = () => Promise<{ snapshot: StatsSnapshot; machine: MachineInfo }>;

function fetchJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}: ${body.trim()}`));
        try {
          resolve(JSON.parse(body));
        } catch (err: unknown) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
  });
}

/** The running berth's snapshots, or, when nothing listens on the read-only port, an in-process sampler. */
async function openSource(cfg: BerthConfig, makeRuntime: () => DockerRuntime): Promise<{ source: Source; close(): void }> {
  const url = `http://127.0.0.1:${cfg.readOnlyPort}/berth/stats?fresh=true`;
  if (cfg.readOnlyPort > 0) {
    try {
      await fetchJson(url);
      return { source: async () => fetchJson(url) as Promise<{ snapshot: StatsSnapshot; machine: MachineInfo }>, close: () => undefined };
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err;
    }
  }
  const rt = makeRuntime();
  const hk = new Housekeeping({ runtime: rt, images: rt, nodeName: cfg.nodeName, rootDir: cfg.rootDir, log: createLogger({ level: 'silent' }), slowPeriodMs: 3_600_000 });
  await hk.refresh();
  await new Promise((r) => setTimeout(r, 1000)); // a second sample for CPU rates
  return { source: async () => ({ snapshot: await hk.refresh(), machine: hk.machine() }), close: () => hk.stop() };
}

export async function cmdStats(cfg: BerthConfig, o: { output?: string; noStream: boolean; makeRuntime: () => DockerRuntime }): Promise<number> {
  const json = o.output === 'json';
  if (o.output && !json) {
    process.stderr.write(`berth stats: unknown output format ${JSON.stringify(o.output)} (json)\n`);
    return 2;
  }
  let src: Awaited<ReturnType<typeof openSource>>;
  try {
    src = await openSource(cfg, o.makeRuntime);
  } catch (err: unknown) {
    process.stderr.write(`berth stats: ${errorMessage(err)}\n`);
    return 1;
  }
  const render = async (): Promise<void> => {
    const { snapshot, machine } = await src.source();
    const rows = buildStatsRows(snapshot, machine);
    if (json) process.stdout.write(`${JSON.stringify(o.noStream ? rows : { time: new Date(snapshot.timeMs).toISOString(), items: rows })}\n`);
    else process.stdout.write(`${o.noStream ? '' : '\x1b[2J\x1b[H'}${formatStatsTable(rows)}\n`);
  };
  try {
    await render();
    if (o.noStream) return 0;
    let stop = false;
    const onSig = (): void => {
      stop = true;
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    while (!stop) {
      await new Promise((r) => setTimeout(r, 2000));
      if (!stop) await render();
    }
    return 0;
  } catch (err: unknown) {
    process.stderr.write(`berth stats: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    src.close();
  }
}
