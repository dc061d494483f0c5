// The nftables proxy end to end: berth runs as the cluster node with --proxy-mode nftables, runs two pods behind a
// NodePort Service, and the Service answers from the host on its ClusterIP and on its NodePort at the host's own
// address (upstream's nftables mode serves no NodePorts on 127.0.0.1). This test programs the host's own
// `ip kube-proxy` table, as berth does on a real node; `berth cleanup` removes it afterwards and the test checks
// that no such table is left. Run it under `flock /tmp/berth-e2e.lock` (it is the node `vm`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Service } from 'kubernetes-types/core/v1';
import { BerthProcess, docker, REPO, shContainer } from '../helpers/berth.ts';
import { ensureTestImages } from '../integration/helpers/docker-images.ts';
import { e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';

function nftTables(): string {
  try {
    return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** A non-loopback IPv4 address of this host (the NodePort is reached on it, as from another machine). */
function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this host');
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return (await res.text()).trim();
}

const berthCli = (...args: string[]): string =>
  execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), ...args], { encoding: 'utf8' });

describe.skipIf(!up)('service proxy on the node in nftables mode (host ip kube-proxy table)', () => {
  const run = uniqueName('nft');
  const nodeIP = hostAddress();
  const berth = new BerthProcess({ nodeName: NODE, extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(NODE)}`, `--node-ip=${nodeIP}`, '--proxy-mode=nftables'] });
  let hadTable = false;

  beforeAll(async () => {
    await ensureTestImages(docker);
    hadTable = nftTables().includes('table ip kube-proxy');
    mkdirSync(berth.manifestDir, { recursive: true });
    berth.start();
    await waitFor(async () => (await kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True', 40_000, {
      what: 'node Ready',
    });
  }, 60_000);

  afterAll(async () => {
    await berth.cleanup();
    try {
      berthCli('cleanup');
    } catch {
      // reported by the assertion below
    }
    await kubectl(['delete', 'svc,pod', '-n', NS, '-l', `berth-e2e=${run}`, '--ignore-not-found', '--grace-period=0', '--force']).catch(() => undefined);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined);
    expect(nftTables()).not.toContain('table ip kube-proxy');
  }, 90_000);

  it('reaches pods behind a NodePort Service on the ClusterIP and on the NodePort at the host address', async () => {
    expect(hadTable).toBe(false);
    for (const i of [1, 2]) {
      await kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `${run}-${i}`, namespace: NS, labels: { app: run, 'berth-e2e': run } },
          spec: {
            nodeName: NODE,
            terminationGracePeriodSeconds: 1,
            containers: [
              shContainer('web', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www', {
                ports: [{ containerPort: 8080, name: 'http' }],
                readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
              }),
            ],
          },
        }),
      });
    }
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: run, namespace: NS, labels: { 'berth-e2e': run } },
        spec: { type: 'NodePort', selector: { app: run }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }] },
      }),
    });
    const svc = JSON.parse(await kubectl(['get', 'svc', '-n', NS, run, '-o', 'json'])) as Service;
    const clusterIP = svc.spec!.clusterIP!;
    const nodePort = svc.spec!.ports![0]!.nodePort!;
    const names = new Set([`${run}-1`, `${run}-2`]);
    await waitFor(
      async () => {
        const out = await kubectl(['get', 'endpointslices', '-n', NS, '-l', `kubernetes.io/service-name=${run}`, '-o', 'json']);
        const slices = JSON.parse(out) as { items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] };
        return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready).length === 2;
      },
      150_000,
      { what: 'EndpointSlice with 2 ready endpoints', intervalMs: 500 },
    );
    expect(nftTables()).toContain('table ip kube-proxy');
    for (const [what, url] of [
      ['ClusterIP', `http://${clusterIP}:80/`],
      ['NodePort', `http://${nodeIP}:${nodePort}/`],
    ] as const) {
      const seen = new Set<string>();
      await waitFor(
        async () => {
          for (let i = 0; i < 10; i++) seen.add(await get(url));
          return [...names].every((n) => seen.has(n));
        },
        30_000,
        { what: `${what} answering from both pods`, intervalMs: 500 },
      );
      expect([...seen].every((s) => names.has(s))).toBe(true);
    }
    const rules = berthCli('rules', '--proxy-mode=nftables', `${NS}/${run}`);
    expect(rules).toContain(`element of service-ips: ${clusterIP} . tcp . 80 : goto service-`);
    expect(rules).toMatch(/numgen random mod 2 vmap/);
    const metrics = await get(`http://127.0.0.1:${berth.port}/metrics/proxy`);
    expect(metrics).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds [1-9]/);
  }, 240_000);
});
