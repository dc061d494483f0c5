// Node registration, status and the node Lease against the rig's real kube-apiserver (v1.20.2, Node authorizer +
// NodeRestriction, a controller-manager running the node lifecycle controller), as node-1 with node-1's credentials,
// the real Docker runtime for the runtime version and images, and kubectl (admin) as the user.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Node } from 'kubernetes-types/core/v1';
import type { Lease } from 'kubernetes-types/coordination/v1';
import { loadClientConfig, KubeClient, resources, type ClientConfig } from '../../src/kube/index.ts';
import { createLogger, silentLogger, type Logger } from '../../src/lib/index.ts';
import { DockerRuntime } from '../../src/cri/docker/index.ts';
import { NodeManager, KUBELET_VERSION, type PlegHealth } from '../../src/kubelet/node/index.ts';
import { requireCluster, paths, kubectl, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = 'node-1';
const OTHER = 'node-2';

interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string };
  [k: string]: unknown;
}

function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { log: createLogger({ level: 'info', destination: dest }), lines };
}

function hostIP(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  return '127.0.0.1';
}

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === 'Ready');

async function cleanup(name: string): Promise<void> {
  await kubectl(['delete', 'node', name, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await kubectl(['-n', 'kube-node-lease', 'delete', 'lease', name, '--ignore-not-found', '--wait=false']).catch(() => undefined);
}

describe.skipIf(!up)('node registration, status and Lease against a real API server', () => {
  let config: ClientConfig;
  let client: KubeClient;
  let runtime: DockerRuntime;
  let tmp: string;
  const managers: NodeManager[] = [];
  let pleg: PlegHealth = { ok: true };

  function manager(opts: { nodeName?: string; log?: Logger; api?: KubeClient } = {}): NodeManager {
    const m = new NodeManager({
      api: opts.api ?? client,
      nodeName: opts.nodeName ?? NODE,
      hostIP,
      runtime,
      plegHealth: () => pleg,
      rootDir: tmp,
      nodeLabels: { 'berth.test/e2e': 'node' },
      nodeStatusUpdateFrequencyMs: 1000,
      log: opts.log ?? silentLogger,
    });
    managers.push(m);
    return m;
  }

  beforeAll(async () => {
    config = await loadClientConfig({ kubeconfigPath: paths.nodeKubeconfig(NODE), env: {} });
    client = new KubeClient({ config, requestTimeoutMs: 15_000 });
    runtime = new DockerRuntime({ log: silentLogger });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'berth-node-e2e-'));
    await cleanup(NODE);
    await cleanup(OTHER);
    await waitFor(async () => (await kubectl(['get', 'nodes', NODE, '--ignore-not-found'])).trim() === '', 30_000, { what: 'old node gone' });
  });

  afterAll(async () => {
    for (const m of managers) await m.stop();
    await cleanup(NODE);
    await cleanup(OTHER);
    await client?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('registers the node, which shows Ready with addresses, capacity, nodeInfo and labels', async () => {
    const m = manager();
    await m.start();
    await waitFor(async () => (await kubectl(['get', 'nodes', NODE])).match(new RegExp(`^${NODE}\\s+Ready\\s`, 'm')), 30_000, { what: 'node Ready in kubectl get nodes' });
    const n = await getJson<Node>(['get', 'node', NODE]);
    expect(n.metadata?.labels).toMatchObject({
      'kubernetes.io/hostname': NODE,
      'kubernetes.io/os': 'linux',
      'beta.kubernetes.io/os': 'linux',
      'berth.test/e2e': 'node',
    });
    expect(['amd64', 'arm64']).toContain(n.metadata?.labels?.['kubernetes.io/arch']);
    expect(n.metadata?.labels?.['beta.kubernetes.io/arch']).toBe(n.metadata?.labels?.['kubernetes.io/arch']);
    expect(n.metadata?.annotations?.['volumes.kubernetes.io/controller-managed-attach-detach']).toBe('true');
    expect(n.status?.addresses).toEqual([
      { type: 'InternalIP', address: hostIP() },
      { type: 'Hostname', address: NODE },
    ]);
    expect(n.status?.capacity?.pods).toBe('110');
    expect(n.status?.allocatable?.pods).toBe('110');
    for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
      expect(n.status?.capacity?.[r]).toBeTruthy();
      expect(n.status?.allocatable?.[r]).toBeTruthy();
    }
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^docker:\/\/\d+\.\d+/);
    expect(n.status?.nodeInfo?.kubeletVersion).toBe(KUBELET_VERSION);
    expect(n.status?.nodeInfo).toMatchObject({ operatingSystem: 'linux', architecture: n.metadata?.labels?.['kubernetes.io/arch'] });
    expect(n.status?.nodeInfo?.bootID).toBeTruthy();
    expect(n.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(10250);
    expect(n.status?.conditions?.map((c) => c.type)).toEqual(expect.arrayContaining(['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready']));
    expect(ready(n)).toMatchObject({ status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' });
    const images = await runtime.listImages();
    if (images.some((i) => i.repoTags.length + i.repoDigests.length > 0)) expect(n.status?.images?.length).toBeGreaterThan(0);
    expect(m.registered).toBe(true);
    expect(m.node().metadata?.uid).toBe(n.metadata?.uid);
    expect(m.healthy()).toBe(true);
  });

  it('the Lease in kube-node-lease is owned by the Node and renews', async () => {
    const node = await getJson<Node>(['get', 'node', NODE]);
    const first = await waitFor(
      async () => {
        const l = await getJson<Lease>(['-n', 'kube-node-lease', 'get', 'lease', NODE]);
        return l.metadata?.ownerReferences?.length ? l : undefined;
      },
      15_000,
      { what: 'lease with owner reference' },
    );
    expect(first.spec).toMatchObject({ holderIdentity: NODE, leaseDurationSeconds: 40 });
    expect(first.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(first.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: node.metadata?.uid }]);
    const t1 = Date.parse(first.spec!.renewTime!);
    const second = await waitFor(
      async () => {
        const l = await getJson<Lease>(['-n', 'kube-node-lease', 'get', 'lease', NODE]);
        return Date.parse(l.spec!.renewTime!) > t1 ? l : undefined;
      },
      15_000,
      { what: 'lease renewTime to advance', intervalMs: 500 },
    );
    const t2 = Date.parse(second.spec!.renewTime!);
    expect(t2 - t1).toBeGreaterThanOrEqual(9_000);
    expect(t2 - t1).toBeLessThan(13_000);
  });

  it('posts status changes with a strategic merge that keeps other agents\' conditions', async () => {
    // another agent (a network plugin) owns NetworkUnavailable (kubectl 1.20 cannot patch the status subresource)
    const admin = new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.adminKubeconfig, env: {} }) });
    try {
      await admin.patchStatus(resources.nodes, NODE, {
        status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', message: 'e2e' }] },
      }, { type: 'strategic' });
    } finally {
      await admin.close();
    }
    const before = ready(await getJson<Node>(['get', 'node', NODE]));
    pleg = { ok: false, message: 'pleg was last seen active 3m5s ago; threshold is 3m0s' };
    const notReady = await waitFor(
      async () => {
        const n = await getJson<Node>(['get', 'node', NODE]);
        return ready(n)?.status === 'False' ? n : undefined;
      },
      15_000,
      { what: 'node NotReady' },
    );
    expect(ready(notReady)).toMatchObject({
      reason: 'KubeletNotReady',
      message: 'PLEG is not healthy: pleg was last seen active 3m5s ago; threshold is 3m0s',
    });
    expect(ready(notReady)?.lastTransitionTime).not.toBe(before?.lastTransitionTime);
    expect(notReady.status?.conditions?.find((c) => c.type === 'NetworkUnavailable')).toMatchObject({ status: 'False', reason: 'RouteCreated' });
    expect(notReady.status?.addresses).toHaveLength(2);
    pleg = { ok: true };
    await waitFor(async () => ready(await getJson<Node>(['get', 'node', NODE]))?.status === 'True', 15_000, { what: 'node Ready again' });
  });

  it('registers the Node again after it was deleted', async () => {
    const old = await getJson<Node>(['get', 'node', NODE]);
    await kubectl(['delete', 'node', NODE, '--wait=true']);
    const again = await waitFor(
      async () => {
        const out = await kubectl(['get', 'node', NODE, '--ignore-not-found', '-o', 'json']);
        if (!out.trim()) return undefined;
        const n = JSON.parse(out) as Node;
        return n.metadata?.uid !== old.metadata?.uid ? n : undefined;
      },
      20_000,
      { what: 'node registered again' },
    );
    expect(again.metadata?.labels?.['kubernetes.io/hostname']).toBe(NODE);
    await waitFor(async () => ready(await getJson<Node>(['get', 'node', NODE]))?.status === 'True', 15_000, { what: 'node Ready' });
  });

  it('adopts a Node created beforehand by an admin: fixes its labels, keeps the others and the taints', async () => {
    for (const m of managers.splice(0)) await m.stop();
    await kubectl(['delete', 'node', NODE, '--wait=true']);
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: NODE, labels: { 'kubernetes.io/arch': 'wrong', 'berth.test/team': 'e2e' } },
        spec: { taints: [{ key: 'berth.test/admin', value: 'x', effect: 'NoSchedule' }] },
      }),
    });
    const created = await getJson<Node>(['get', 'node', NODE]);
    const cap = captureLog();
    const m = manager({ log: cap.log });
    await m.start();
    const adopted = await waitFor(
      async () => {
        const n = await getJson<Node>(['get', 'node', NODE]);
        return ready(n)?.status === 'True' && n.metadata?.labels?.['kubernetes.io/arch'] !== 'wrong' ? n : undefined;
      },
      30_000,
      { what: 'adopted node Ready with its labels fixed' },
    );
    expect(adopted.metadata?.uid).toBe(created.metadata?.uid);
    expect(adopted.metadata?.labels).toMatchObject({
      'berth.test/team': 'e2e',
      'kubernetes.io/hostname': NODE,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': expect.stringMatching(/^(amd64|arm64)$/),
    });
    // --node-labels apply at creation only (as upstream)
    expect(adopted.metadata?.labels?.['berth.test/e2e']).toBeUndefined();
    expect(adopted.spec?.taints).toEqual(expect.arrayContaining([{ key: 'berth.test/admin', value: 'x', effect: 'NoSchedule' }]));
    expect(adopted.metadata?.annotations?.['volumes.kubernetes.io/controller-managed-attach-detach']).toBe('true');
    expect(cap.lines.some((l) => l.msg === 'node already registered; adopted it')).toBe(true);
  });

  it('registering as another node with node-1 credentials: the 403 is reported once, not retried in a tight loop', async () => {
    const cap = captureLog();
    const m = manager({ nodeName: OTHER, log: cap.log });
    await m.start();
    await new Promise((r) => setTimeout(r, 5000));
    // 100 ms doubling to 7 s: attempts at about 0, 0.2, 0.6, 1.4, 3.0 s in the first 5 s
    expect(m.registrationAttempts).toBeGreaterThanOrEqual(3);
    expect(m.registrationAttempts).toBeLessThanOrEqual(7);
    const registerWarnings = cap.lines.filter((l) => l.msg === 'unable to register node with the API server');
    expect(registerWarnings).toHaveLength(1);
    expect(registerWarnings[0]?.err?.message).toContain(`node "${NODE}" is not allowed to modify node "${OTHER}"`);
    expect(registerWarnings[0]?.statusCode).toBe(403);
    const leaseWarnings = cap.lines.filter((l) => l.msg === 'failed to ensure node lease exists, will retry');
    expect(leaseWarnings).toHaveLength(1);
    expect(m.registered).toBe(false);
    expect((await kubectl(['get', 'node', OTHER, '--ignore-not-found'])).trim()).toBe('');
    await m.stop();

    // node-2's own identity may register node-2: the 403 above was about identity
    const own = new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.nodeKubeconfig(OTHER), env: {} }) });
    try {
      const m2 = manager({ nodeName: OTHER, api: own });
      await m2.start();
      await waitFor(() => m2.registered, 15_000, { what: `${OTHER} registered with its own credentials` });
      await m2.stop();
    } finally {
      await own.close();
    }
  });
});
