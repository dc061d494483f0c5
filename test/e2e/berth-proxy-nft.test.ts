// The nftables proxy end to end: berth runs as the cluster node with --proxy-mode nftables, runs two pods behind a
// NodePort Service, and the Service answers from the host on its ClusterIP and on its NodePort at the host's own
// address (upstream's nftables mode serves no NodePorts on 127.0.0.1). This test programs the host's own
// `ip kube-proxy` table, as berth does on a real node; `berth cleanup` removes it afterwards and the test checks
// that no such table is left. Run it under `flock /tmp/berth-e2e.lock` (it is the node `vm`).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/berth.ts';
import { waitFor } from '../helpers/wait.ts';
import { answersFromAll, applyWebService, dropRunObjects, e2eNodeName, getText, requireCluster, uniqueName, useClusterBerth, waitReadyEndpoints } from './helpers/cluster.ts';

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

const berthCli = (...args: string[]): string =>
  execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), ...args], { encoding: 'utf8' });

describe.skipIf(!up)('service proxy on the node in nftables mode (host ip kube-proxy table)', () => {
  const run = uniqueName('nft');
  const nodeIP = hostAddress();
  let hadTable = false;
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: [`--node-ip=${nodeIP}`, '--proxy-mode=nftables'],
    beforeStart: () => {
      hadTable = nftTables().includes('table ip kube-proxy');
    },
    hookTimeoutMs: 60_000,
    afterCleanup: async () => {
      try {
        berthCli('cleanup');
      } catch {
        // reported by the assertion below
      }
      await dropRunObjects({ ns: NS, run, node: NODE, kinds: 'svc,pod' });
      expect(nftTables()).not.toContain('table ip kube-proxy');
    },
    cleanupTimeoutMs: 90_000,
  });

  it('reaches pods behind a NodePort Service on the ClusterIP and on the NodePort at the host address', async () => {
    expect(hadTable).toBe(false);
    const svc = await applyWebService({ ns: NS, run, node: NODE });
    const clusterIP = svc.spec!.clusterIP!;
    const nodePort = svc.spec!.ports![0]!.nodePort!;
    const names = new Set([`${run}-1`, `${run}-2`]);
    await waitReadyEndpoints(NS, run, 2);
    // berth's proxy writes them a sync later (the API server's view comes first): traffic sent before that leaves by
    // the default route and proves nothing.
    await waitFor(() => /numgen random mod 2 vmap/.test(berthCli('rules', '--proxy-mode=nftables', `${NS}/${run}`)), 30_000, 'both endpoints in the nftables rules');
    expect(nftTables()).toContain('table ip kube-proxy');
    for (const [what, url] of [
      ['ClusterIP', `http://${clusterIP}:80/`],
      ['NodePort', `http://${nodeIP}:${nodePort}/`],
    ] as const) {
      const seen = await answersFromAll(url, names, what);
      expect([...seen].every((s) => names.has(s))).toBe(true);
    }
    const rules = berthCli('rules', '--proxy-mode=nftables', `${NS}/${run}`);
    expect(rules).toContain(`element of service-ips: ${clusterIP} . tcp . 80 : goto service-`);
    expect(rules).toMatch(/numgen random mod 2 vmap/);
    const metrics = await getText(`http://127.0.0.1:${berth.port}/metrics/proxy`);
    expect(metrics).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds [1-9]/);
  }, 240_000);
});
