// A real Prometheus (Debian's package) scrapes a real standalone berth's /metrics/cadvisor on its read-only port:
// the target is up (Prometheus' own parser accepted the exposition) and a query returns one series per running
// container of the pod. Prometheus listens on a random loopback port with its data in a temporary directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthProcess, docker, waitFor } from '../helpers/berth.ts';
import { requireEnv } from '../helpers/require.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

const hasProm = spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;
const ok = requireEnv('prometheus binary', hasProm ? undefined : 'prometheus is not installed', { hint: 'apt-get install prometheus (scripts/setup.sh does)' });

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

describe.skipIf(!ok)('a real Prometheus scraping berth', () => {
  const berth = new BerthProcess({ extraArgs: ['--housekeeping-interval=1s'] });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-prom-'));
  const promPort = 30000 + Math.floor(Math.random() * 20000);
  const prom = `http://127.0.0.1:${promPort}`;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await ensureTestImages(docker);
    mkdirSync(berth.manifestDir, { recursive: true });
    const container = (name: string) => ({ name, image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] });
    writeFileSync(path.join(berth.manifestDir, 'two.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'scraped', namespace: 'default' }, spec: { containers: [container('a'), container('b')] } }));
    berth.start();
    await waitFor(async () => (await berth.pod('scraped').catch(() => undefined))?.status.phase === 'Running', 60_000, 'pod Running');
    writeFileSync(
      path.join(tmp, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, scrape_timeout: 1s}',
        'scrape_configs:',
        '  - job_name: berth-cadvisor',
        '    metrics_path: /metrics/cadvisor',
        `    static_configs: [{targets: ['127.0.0.1:${berth.port}']}]`,
        '',
      ].join('\n'),
    );
    child = spawn('prometheus', [`--config.file=${path.join(tmp, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(tmp, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`${prom}/-/ready`).catch(() => undefined))?.ok === true, 30_000, 'prometheus ready');
  }, 120_000);

  afterAll(async () => {
    child?.kill('SIGTERM');
    await berth.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('shows the target up and one working-set series per running container', async () => {
    const targets = await waitFor(
      async () => {
        const t = await getJson<{ data: { activeTargets: { health: string; lastError: string; scrapeUrl: string }[] } }>(`${prom}/api/v1/targets`);
        return t.data.activeTargets[0]?.health === 'up' && t.data.activeTargets;
      },
      30_000,
      'target up',
    );
    expect(targets[0]!.scrapeUrl).toBe(`http://127.0.0.1:${berth.port}/metrics/cadvisor`);
    expect(targets[0]!.lastError).toBe('');
    const q = encodeURIComponent(`container_memory_working_set_bytes{pod="scraped-${berth.nodeName}",container!="",container!="POD"}`);
    const series = await waitFor(
      async () => {
        const r = await getJson<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(`${prom}/api/v1/query?query=${q}`);
        return r.data.result.length === 2 && r.data.result;
      },
      30_000,
      'two series',
    );
    expect(series.map((s) => s.metric.container).sort()).toEqual(['a', 'b']);
    for (const s of series) {
      expect(s.metric).toMatchObject({ namespace: 'default', image: BUSYBOX_IMAGE, job: 'berth-cadvisor' });
      expect(s.metric.id).toMatch(/^\/kubepods\/besteffort\/pod[0-9a-f-]+\/[0-9a-f]{64}$/);
      expect(Number(s.value[1])).toBeGreaterThan(0);
    }
  }, 90_000);
});
