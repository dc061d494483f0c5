// bench/pod-startup: N pods created at once through the API server, berth as the node; for each pod the
// time from its create request to a watch seeing it Running (ms precision; creationTimestamp has only 1 s),
// as p50/p90/p99/max, next to the raw Docker floor (sandbox + container through the Engine API, same
// parallelism). Needs the e2e API server (bash test/e2e/apiserver.sh). Usage:
//   node bench/pod-startup.ts [--sizes 1,30,100] [--runs 1]   → JSON on stdout
import type { Pod } from 'kubernetes-types/core/v1';
import { BerthProcess, docker, waitFor } from '../test/helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../test/integration/helpers/docker-images.ts';
import { e2eNodeName, paths } from '../test/e2e/helpers/cluster.ts';
import { Informer, KubeClient, loadClientConfig, resources } from '../src/kube/index.ts';
import { createLogger } from '../src/lib/index.ts';
import { argOpt, percentile, rawDockerFloor } from './lib.ts';
import { mkdirSync } from 'node:fs';

const sizes = argOpt('sizes', '1,30,100').split(',').map(Number);
const runs = Number(argOpt('runs', '1'));
const NS = 'default';
const log = createLogger({ level: 'warn' });

const stats = (xs: number[]): Record<string, number> => ({
  p50: Math.round(percentile(xs, 50)),
  p90: Math.round(percentile(xs, 90)),
  p99: Math.round(percentile(xs, 99)),
  max: Math.round(Math.max(...xs)),
});

async function main(): Promise<void> {
  await ensureTestImages(docker);
  const admin = new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.adminKubeconfig, env: {} }), log });
  const node = e2eNodeName;
  const berth = new BerthProcess({ nodeName: node, extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(node)}`, '--node-ip=127.0.0.1', '--log-level=warn', '--max-pods=250'] });
  mkdirSync(berth.manifestDir, { recursive: true });
  berth.start();
  const informer = new Informer<Pod>({ api: admin, ref: resources.pods, namespace: NS, labelSelector: 'bench=pod-startup', log });
  const runningAt = new Map<string, number>();
  const seen = (p: Pod): void => {
    if (p.status?.phase === 'Running' && !runningAt.has(p.metadata!.name!)) runningAt.set(p.metadata!.name!, performance.now());
  };
  informer.addEventHandler({ onAdd: seen, onUpdate: (_o, n) => seen(n) });
  informer.start();
  await informer.waitForSync();
  await waitFor(async () => {
    const n = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(resources.nodes, node).catch(() => undefined);
    return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  }, 60_000, 'node Ready');

  const results = [];
  for (const n of sizes) {
    for (let r = 0; r < runs; r++) {
      const floor = await rawDockerFloor(n, `ps${n}x${r}`);
      const tag = `ps-${n}-${r}-${Date.now().toString(36)}`;
      const sentAt = new Map<string, number>();
      runningAt.clear();
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const name = `${tag}-${i}`;
          sentAt.set(name, performance.now());
          await admin.create(resources.pods, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: NS, labels: { bench: 'pod-startup' } },
            spec: {
              nodeName: node,
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }],
            },
          } as Pod);
        }),
      );
      await waitFor(() => [...sentAt.keys()].every((k) => runningAt.has(k)), 300_000, `${n} pods Running`);
      const lat = [...sentAt].map(([k, t]) => runningAt.get(k)! - t);
      const floorStats = stats(floor.perPodMs);
      const berthStats = stats(lat);
      results.push({
        pods: n,
        run: r,
        berthCreateToRunningMs: berthStats,
        rawDockerFloorMs: { ...floorStats, wall: Math.round(floor.wallMs) },
        p99VsFloor: Number((berthStats.p99! / floorStats.p99!).toFixed(2)),
        targets: n === 30 ? { p99Ms: Math.round(1.3 * floorStats.p99! + 200) } : n === 100 ? { p99Ms: 5000 } : {},
      });
      // Clean up: delete through the API server (grace 0) and wait until berth removed the containers.
      await Promise.all([...sentAt.keys()].map((name) => admin.delete(resources.pods, name, { namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined)));
      await waitFor(async () => (await berth.containers()).length === 0, 300_000, 'containers removed');
    }
  }
  await informer.stop();
  await berth.cleanup();
  await admin.delete(resources.nodes, node).catch(() => undefined);
  await admin.close();
  process.stdout.write(JSON.stringify({ bench: 'pod-startup', node: process.version, results }, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
