// Stats through the real API server: berth runs as the e2e node, kubectl (admin) reads the kubelet's Summary API
// and Prometheus endpoints through the node proxy (`kubectl get --raw /api/v1/nodes/<node>/proxy/...`), which
// reaches berth's secure kubelet API on :10250. Also `berth stats --no-stream -o json` against the running berth.
// Run under `flock /tmp/berth-e2e.lock` (scripts/test.sh does): two berths as the same node fight.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO, shContainer } from '../helpers/berth.ts';
import { BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { parseExposition } from '../unit/fixtures/exposition-parser.ts';
import { dropRunObjects, e2eNodeName, kubectl, kubectlApply, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';
const RUN = uniqueName('stats');

interface SummaryJson {
  node: { nodeName: string; cpu?: { usageCoreNanoSeconds?: number }; memory?: { workingSetBytes?: number }; fs?: { capacityBytes?: number }; systemContainers?: { name: string }[] };
  pods: { podRef: { name: string; namespace: string; uid: string }; containers: { name: string; memory?: { workingSetBytes?: number } }[] }[];
}

describe.skipIf(!up)('stats of a berth node through the API server', () => {
  const names = [uniqueName('sa'), uniqueName('sb')];
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', '--port=10250', '--housekeeping-interval=2s'],
    replaceNode: true,
    nodeReadyTimeoutMs: 60_000,
    afterReady: async () => {
      for (const name of names)
        await kubectlApply(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: NS, labels: { 'berth-e2e': RUN } },
            spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, containers: [shContainer('c', 'sleep 3600')] },
          }),
        );
      await waitFor(
        async () => {
          const phases = await kubectl(['get', 'pods', '-n', NS, '-l', `berth-e2e=${RUN}`, '-o', 'jsonpath={.items[*].status.phase}']);
          return phases === 'Running Running';
        },
        60_000,
        { what: 'pods Running' },
      );
    },
    hookTimeoutMs: 150_000,
    afterCleanup: () => dropRunObjects({ ns: NS, run: RUN, node: NODE }),
    cleanupTimeoutMs: 90_000,
  });

  it('serves /stats/summary through the node proxy, naming every running pod of the node', async () => {
    const running = (await kubectl(['get', 'pods', '-A', '--field-selector', `spec.nodeName=${NODE},status.phase=Running`, '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}'])).trim().split(' ').filter(Boolean);
    expect(running).toEqual(expect.arrayContaining(names.map((n) => `${NS}/${n}`)));
    // The pods show up in the summary after the next housekeeping pass at the latest.
    const summary = await waitFor(
      async () => {
        const s = JSON.parse(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/stats/summary`])) as SummaryJson;
        const listed = new Set(s.pods.map((p) => `${p.podRef.namespace}/${p.podRef.name}`));
        return running.every((r) => listed.has(r)) && s;
      },
      30_000,
      { what: 'every running pod in the summary' },
    );
    expect(summary.node.nodeName).toBe(NODE);
    expect(summary.node.cpu?.usageCoreNanoSeconds).toBeGreaterThan(0);
    expect(summary.node.memory?.workingSetBytes).toBeGreaterThan(0);
    expect(summary.node.fs?.capacityBytes).toBeGreaterThan(0);
    expect(summary.node.systemContainers?.map((c) => c.name)).toContain('pods');
    const mine = summary.pods.find((p) => p.podRef.name === names[0])!;
    expect(mine.containers.map((c) => c.name)).toEqual(['c']);
    expect(mine.containers[0]!.memory?.workingSetBytes).toBeGreaterThan(0);
  }, 60_000);

  it('serves /metrics/cadvisor and /metrics/resource through the node proxy as valid exposition text', async () => {
    const cad = parseExposition(`${(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics/cadvisor`])).trimEnd()}\n`);
    const ws = cad.get('container_memory_working_set_bytes')!.samples.filter((s) => s.labels.pod === names[0] && s.labels.container === 'c');
    expect(ws).toHaveLength(1);
    expect(ws[0]!.labels).toMatchObject({ namespace: NS, image: BUSYBOX_IMAGE });
    const res = parseExposition(`${(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics/resource`])).trimEnd()}\n`);
    expect(res.get('node_cpu_usage_seconds_total')!.samples[0]!.value).toBeGreaterThan(0);
    expect(res.get('container_cpu_usage_seconds_total')!.samples.map((s) => s.labels.pod)).toEqual(expect.arrayContaining(names));
    expect(res.get('scrape_error')!.samples[0]!.value).toBe(0);
  }, 60_000);

  it('prints the pods in `berth stats --no-stream -o json`', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'stats', '--no-stream', '-o', 'json', `--read-only-port=${berth.port}`], { timeout: 30_000 });
    const rows = JSON.parse(stdout) as { pod: string; container: string; memoryWorkingSetBytes?: number }[];
    for (const n of names) expect(rows).toContainEqual(expect.objectContaining({ pod: n, container: 'c', memoryWorkingSetBytes: expect.any(Number) }));
  }, 60_000);
});
