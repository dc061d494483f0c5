// Scenario 7, two nodes on one host: two berth processes (node-1, node-2: distinct node names, root dirs, read-only
// ports; kubelet API and healthz off) against the same API server and dockerd. The real scheduler spreads a
// Deployment over both (pinned to them by node affinity, spread by a hard topology constraint). Checked: each
// berth's Docker objects belong exactly to the pods bound to it and none to the other's; each berth's /berth/pods
// lists only its own pods; killing node-1 (SIGKILL) changes nothing of node-2's containers or statuses, and
// node-1's restart re-adopts its own without a restart. The service proxy runs on node-2 (iptables, host tables)
// only when the e2e lock can be taken (the `vm` proxy suites share those tables); otherwise on neither.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import type { BerthProcess } from '../../test/helpers/berth.ts';
import { REPO } from '../../test/helpers/berth.ts';
import {
  adminClient,
  BUSYBOX_IMAGE,
  clusterNode,
  createNamespace,
  dockerObjects,
  e2eLock,
  killHard,
  kubectl,
  listPods,
  progress,
  sleep,
  startNode,
  teardown,
  waitFor,
  waitForNodeReady,
  type DockerObj,
  type ScenarioResult,
} from './common.ts';

export interface TwoNodesOptions {
  replicas: number;
  /** Seconds to wait for the e2e lock before running without the proxy. */
  lockWaitSeconds?: number;
}

const NODES = ['node-1', 'node-2'] as const;

function deployment(ns: string, replicas: number): string {
  const labels = { app: 'soak-two-nodes' };
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'spread', namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 1,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [...NODES] }] }],
              },
            },
          },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: labels } }],
          containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"] }],
        },
      },
    },
  });
}

/** Problems with the split of Docker objects and reports between the nodes (empty = each only has its own). */
function ownership(pods: Pod[], objs: Record<string, DockerObj[]>, reported: Record<string, string[]>): string[] {
  const problems: string[] = [];
  for (const node of NODES) {
    const mine = new Set(pods.filter((p) => p.spec?.nodeName === node).map((p) => p.metadata!.uid!));
    const theirs = new Set(pods.filter((p) => p.spec?.nodeName !== node).map((p) => p.metadata!.uid!));
    for (const o of objs[node]!) {
      if (theirs.has(o.uid)) problems.push(`${node} holds ${o.sandbox ? 'sandbox' : o.container} of ${o.podName}, bound to the other node`);
      else if (!mine.has(o.uid)) problems.push(`${node} holds ${o.id.slice(0, 12)} of unknown pod ${o.podName}`);
    }
    for (const uid of mine) if (!objs[node]!.some((o) => o.uid === uid && o.sandbox && o.running)) problems.push(`${node}: pod ${uid} has no running sandbox`);
    const rep = [...reported[node]!].sort();
    const want = pods.filter((p) => p.spec?.nodeName === node).map((p) => p.metadata!.name!).sort();
    if (JSON.stringify(rep) !== JSON.stringify(want)) problems.push(`${node} /berth/pods lists [${rep.join(',')}], bound to it: [${want.join(',')}]`);
  }
  return problems;
}

async function reportedPods(b: BerthProcess, ns: string): Promise<string[]> {
  const items = (await b.pods()).items;
  const foreign = items.filter((p) => p.spec?.nodeName !== b.nodeName);
  if (foreign.length) throw new Error(`${b.nodeName} reports pods of another node: ${foreign.map((p) => p.metadata?.name).join(', ')}`);
  return items.filter((p) => p.metadata?.namespace === ns).map((p) => p.metadata!.name!);
}

export async function twoNodes(o: TwoNodesOptions): Promise<ScenarioResult> {
  const admin = await adminClient();
  const ns = `soak-2n-${Date.now().toString(36)}`;
  const failures: string[] = [];
  const figures: Record<string, unknown> = { replicas: o.replicas };
  const release = await e2eLock(o.lockWaitSeconds ?? 60);
  figures.proxy = release ? 'iptables on node-2 (host tables, under the e2e lock)' : 'none (e2e lock busy)';
  const [n1, n2] = [await clusterNode('node-1'), await clusterNode('node-2', release ? ['--proxy-mode=iptables'] : [])] as const;
  const berths: Record<string, BerthProcess> = { 'node-1': n1, 'node-2': n2 };
  const snapshot = async () => {
    const pods = (await listPods(admin, ns)).filter((p) => !p.metadata?.deletionTimestamp);
    const objs = { 'node-1': await dockerObjects('node-1'), 'node-2': await dockerObjects('node-2') };
    const reported = { 'node-1': await reportedPods(n1, ns), 'node-2': await reportedPods(n2, ns) };
    return { pods, objs, reported };
  };
  try {
    const ready = await Promise.all([startNode(admin, n1), startNode(admin, n2)]);
    figures.nodeReadyMs = { 'node-1': ready[0], 'node-2': ready[1] };
    await createNamespace(admin, ns);
    const t0 = performance.now();
    await kubectl(['apply', '-f', '-'], { input: deployment(ns, o.replicas) });
    const running = await waitFor(
      async () => {
        const pods = await listPods(admin, ns);
        return pods.length === o.replicas && pods.every((p) => p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.ready) && pods;
      },
      120_000,
      { what: `${o.replicas} replicas Running`, intervalMs: 250 },
    );
    figures.deploymentRunningMs = Math.round(performance.now() - t0);
    const perNode = Object.fromEntries(NODES.map((n) => [n, running.filter((p) => p.spec?.nodeName === n).length]));
    figures.podsPerNode = perNode;
    progress(`two-nodes: ${o.replicas} replicas Running in ${figures.deploymentRunningMs} ms: ${JSON.stringify(perNode)}`);
    if (NODES.some((n) => perNode[n] === 0)) failures.push(`not spread over both nodes: ${JSON.stringify(perNode)}`);

    // Ownership once the berths' reports caught up with the API.
    let s = await snapshot();
    await waitFor(async () => ownership((s = await snapshot()).pods, s.objs, s.reported).length === 0, 15_000, { what: 'ownership settled', intervalMs: 500 }).catch(
      () => undefined,
    );
    const own = ownership(s.pods, s.objs, s.reported);
    figures.ownershipProblems = own.length;
    failures.push(...own);

    if (release) {
      // In `berth run` the proxy's figures are on the read-only port: it must have synced its rules at least once.
      const synced = await waitFor(
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${n2.port}/metrics/proxy`, { signal: AbortSignal.timeout(3000) })).text();
          const m = /^kubeproxy_sync_proxy_rules_last_timestamp_seconds (\S+)$/m.exec(text);
          return m && Number(m[1]) > 0;
        },
        20_000,
        { what: 'node-2 proxy synced', intervalMs: 500 },
      ).catch((err: unknown) => String(err));
      figures.proxySynced = synced;
      if (synced !== true) failures.push(`node-2 proxy: ${synced}`);
    }

    // Kill node-1: node-2's containers and statuses stay exactly as they were; node-1's containers keep running.
    const before = s;
    await killHard(n1);
    await sleep(8000);
    const after2 = await dockerObjects('node-2');
    const after1 = await dockerObjects('node-1');
    const changed2 = before.objs['node-2'].filter((b) => !after2.some((a) => a.id === b.id && a.running === b.running));
    const extra2 = after2.filter((a) => !before.objs['node-2'].some((b) => b.id === a.id));
    const stopped1 = before.objs['node-1'].filter((b) => b.running && !after1.some((a) => a.id === b.id && a.running));
    const pods2 = (await listPods(admin, ns, 'node-2')).filter((p) => !p.metadata?.deletionTimestamp);
    const notReady2 = pods2.filter((p) => {
      const st = p.status?.containerStatuses?.[0];
      return p.status?.phase !== 'Running' || !st?.ready || st.restartCount !== 0 || !after2.some((a) => `docker://${a.id}` === st.containerID && a.running);
    });
    figures.afterKillingNode1 = { node2ObjectsChanged: changed2.length, node2ObjectsAdded: extra2.length, node2PodsNotRunning: notReady2.length, node1ContainersStopped: stopped1.length };
    if (changed2.length || extra2.length) failures.push(`killing node-1 changed node-2's containers: ${changed2.length} changed, ${extra2.length} added`);
    if (notReady2.length) failures.push(`killing node-1 disturbed node-2's pods: ${notReady2.map((p) => p.metadata?.name).join(', ')}`);
    if (stopped1.length) failures.push(`node-1's containers stopped while it was down: ${stopped1.length}`);
    if (!n2.alive()) failures.push('node-2 exited');

    // node-1 back: it re-adopts its own containers (same IDs, still running) and node-2's are untouched.
    const t1 = performance.now();
    n1.start();
    await waitForNodeReady(admin, n1, 60_000);
    await waitFor(async () => (await reportedPods(n1, ns)).length === before.reported['node-1'].length, 20_000, { what: 'node-1 reports its pods again', intervalMs: 250 });
    await sleep(3000);
    figures.node1RestartToReportingMs = Math.round(performance.now() - t1);
    const again1 = await dockerObjects('node-1');
    const again2 = await dockerObjects('node-2');
    const readopted = before.objs['node-1'].filter((b) => b.running).every((b) => again1.some((a) => a.id === b.id && a.running));
    const untouched2 = before.objs['node-2'].every((b) => again2.some((a) => a.id === b.id && a.running === b.running)) && again2.length === before.objs['node-2'].length;
    figures.afterNode1Restart = { readoptedWithoutRestart: readopted, node2Untouched: untouched2 };
    if (!readopted) failures.push('node-1 did not re-adopt its running containers after restart');
    if (!untouched2) failures.push("node-1's restart changed node-2's containers");
  } catch (err: unknown) {
    failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await teardown(admin, { ns: [ns], nodes: Object.values(berths) });
    if (release) {
      // The proxy's chains stay after it stops (as kube-proxy's): remove them, then let the next suite have the lock.
      try {
        execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'cleanup'], { stdio: 'ignore', timeout: 60_000 });
      } catch (err: unknown) {
        failures.push(`berth cleanup failed: ${String(err)}`);
      }
      await release();
    }
    await admin.close();
  }
  return { scenario: '7-two-nodes', pass: failures.length === 0, failures, figures };
}
