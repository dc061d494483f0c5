// The service proxy end to end: berth runs as the cluster node with --proxy-mode iptables, runs two pods
// behind a NodePort Service, and the Service answers from the host on its ClusterIP and on its NodePort
// (127.0.0.1, route_localnet) with both endpoints. This is the one test that programs the host's own nat
// table, as berth does on a real node; it removes everything with `berth cleanup` and restores the sysctl.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../helpers/berth.ts';
import { waitFor } from '../helpers/wait.ts';
import { answersFromAll, applyWebService, dropRunObjects, e2eNodeName, getText, requireCluster, uniqueName, useClusterBerth, waitReadyEndpoints } from './helpers/cluster.ts';

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

describe.skipIf(!up)('service proxy on the node (host tables)', () => {
  const run = uniqueName('svc');
  let routeLocalnet = '0';
  let chainsBefore: string[] = [];
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', '--proxy-mode=iptables'],
    beforeStart: () => {
      routeLocalnet = readFileSync(ROUTE_LOCALNET, 'utf8').trim();
      chainsBefore = kubeChains();
    },
    hookTimeoutMs: 60_000,
    afterCleanup: async () => {
      execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'cleanup'], { stdio: 'ignore' });
      writeFileSync(ROUTE_LOCALNET, routeLocalnet);
      await dropRunObjects({ ns: NS, run, node: NODE, kinds: 'svc,pod' });
      // `berth cleanup` leaves no chain of berth's behind.
      expect(kubeChains()).toEqual(chainsBefore);
    },
    cleanupTimeoutMs: 90_000,
  });

  it('reaches pods behind a Service by ClusterIP and NodePort from the host, spread over both endpoints', async () => {
    const svc = await applyWebService({ ns: NS, run, node: NODE });
    const clusterIP = svc.spec!.clusterIP!;
    const nodePort = svc.spec!.ports![0]!.nodePort!;
    const names = new Set([`${run}-1`, `${run}-2`]);
    // First the control plane's part: berth reports both pods Ready, the endpointslice controller publishes
    // them (it may still be reconnecting after another test restarted the API server, hence the long wait).
    await waitReadyEndpoints(NS, run, 2);
    // Both endpoints become ready (berth's status → endpointslice controller → berth's proxy); the proxy writes them
    // a sync later, and traffic sent before that leaves by the default route and proves nothing.
    const berthRules = (): string => execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'rules', `${NS}/${run}`], { encoding: 'utf8' });
    await waitFor(() => /--probability 0\.5/.test(berthRules()), 30_000, 'both endpoints in the iptables rules');
    for (const [what, url] of [
      ['ClusterIP', `http://${clusterIP}:80/`],
      ['NodePort', `http://127.0.0.1:${nodePort}/`],
    ] as const) {
      const seen = await answersFromAll(url, names, what);
      expect([...seen].every((s) => names.has(s))).toBe(true);
    }
    const rules = berthRules();
    expect(rules).toMatch(/KUBE-SVC-[A-Z0-9]{16}/);
    expect(rules).toMatch(/--probability 0\.5/);
    const metrics = await getText(`http://127.0.0.1:${berth.port}/metrics/proxy`);
    expect(metrics).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds [1-9]/);
  }, 240_000);
});
