// The service proxy end to end: berth runs as the cluster node with --proxy-mode iptables, runs two pods
// behind a NodePort Service, and the Service answers from the host on its ClusterIP and on its NodePort
// (127.0.0.1, route_localnet) with both endpoints. This is the one test that programs the host's own nat
// table, as berth does on a real node; it removes everything with `berth cleanup` and restores the sysctl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Service } from 'kubernetes-types/core/v1';
import { BerthProcess, docker, REPO, shContainer } from '../helpers/berth.ts';
import { ensureTestImages } from '../integration/helpers/docker-images.ts';
import { e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';
const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/all/route_localnet';

function kubeChains(): string[] {
  const out: string[] = [];
  for (const save of ['iptables-nft-save', 'iptables-legacy-save']) {
    try {
      out.push(...execFileSync(save, ['-t', 'nat'], { encoding: 'utf8' }).split('\n').filter((l) => /^:KUBE-/.test(l)).map((l) => `${save}: ${l}`));
      out.push(...execFileSync(save, ['-t', 'filter'], { encoding: 'utf8' }).split('\n').filter((l) => /^:KUBE-/.test(l)).map((l) => `${save}: ${l}`));
    } catch {
      // variant not installed
    }
  }
  return out;
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return (await res.text()).trim();
}

describe.skipIf(!up)('service proxy on the node (host tables)', () => {
  const run = uniqueName('svc');
  const berth = new BerthProcess({ nodeName: NODE, extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(NODE)}`, '--node-ip=127.0.0.1', '--proxy-mode=iptables'] });
  let routeLocalnet = '0';
  let chainsBefore: string[] = [];

  beforeAll(async () => {
    await ensureTestImages(docker);
    routeLocalnet = readFileSync(ROUTE_LOCALNET, 'utf8').trim();
    chainsBefore = kubeChains();
    mkdirSync(berth.manifestDir, { recursive: true });
    berth.start();
    await waitFor(async () => (await kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True', 40_000, {
      what: 'node Ready',
    });
  }, 60_000);

  afterAll(async () => {
    await berth.cleanup();
    execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'cleanup'], { stdio: 'ignore' });
    writeFileSync(ROUTE_LOCALNET, routeLocalnet);
    await kubectl(['delete', 'svc,pod', '-n', NS, '-l', `berth-e2e=${run}`, '--ignore-not-found', '--grace-period=0', '--force']).catch(() => undefined);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined);
    // `berth cleanup` leaves no chain of berth's behind.
    expect(kubeChains()).toEqual(chainsBefore);
  }, 90_000);

  it('reaches pods behind a Service by ClusterIP and NodePort from the host, spread over both endpoints', async () => {
    for (const i of [1, 2]) {
      const name = `${run}-${i}`;
      await kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: NS, labels: { app: run, 'berth-e2e': run } },
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
    // First the control plane's part: berth reports both pods Ready, the endpointslice controller publishes
    // them (it may still be reconnecting after another test restarted the API server, hence the long wait).
    await waitFor(
      async () => {
        const out = await kubectl(['get', 'endpointslices', '-n', NS, '-l', `kubernetes.io/service-name=${run}`, '-o', 'json']);
        const slices = JSON.parse(out) as { items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] };
        return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready).length === 2;
      },
      150_000,
      { what: 'EndpointSlice with 2 ready endpoints', intervalMs: 500 },
    );
    // Both endpoints become ready (berth's status → endpointslice controller → berth's proxy).
    for (const [what, url] of [
      ['ClusterIP', `http://${clusterIP}:80/`],
      ['NodePort', `http://127.0.0.1:${nodePort}/`],
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
    const rules = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'rules', `${NS}/${run}`], { encoding: 'utf8' });
    expect(rules).toMatch(/KUBE-SVC-[A-Z0-9]{16}/);
    expect(rules).toMatch(/--probability 0\.5/);
    const metrics = await get(`http://127.0.0.1:${berth.port}/metrics/proxy`);
    expect(metrics).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds [1-9]/);
  }, 240_000);
});
