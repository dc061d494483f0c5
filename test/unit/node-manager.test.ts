// The node Lease controller and the node manager against a small in-memory fake of the API slice they use (nodes,
// node/status, leases), with a fake clock. The real API server is exercised by test/e2e/node.test.ts.
import { describe, it, expect, afterEach } from 'vitest';
import { Writable } from 'node:stream';
import type { Node } from 'kubernetes-types/core/v1';
import type { Lease } from 'kubernetes-types/coordination/v1';
import { ApiError, ApiNotFoundError, type ResourceRef, type KubeObject } from '../../src/kube/index.ts';
import { createLogger, FakeClock, silentLogger, type Logger } from '../../src/lib/index.ts';
import type { Image } from '../../src/cri/index.ts';
import {
  NodeLeaseController,
  NodeManager,
  type NodeApi,
  type MachineReader,
  type NodeStats,
  type PlegHealth,
} from '../../src/kubelet/node/index.ts';

// ------------------------------------------------------------------ fakes

type Verb = 'get' | 'create' | 'update' | 'patch' | 'patchStatus';
interface Call {
  verb: Verb;
  resource: string;
  name: string;
  at: number;
  body?: unknown;
  patchType?: string;
}

function key(ref: ResourceRef, ns: string | undefined, name: string): string {
  return `${ref.resource}/${ns ?? ''}/${name}`;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Just enough of a strategic merge for node status: conditions by type, `$patch: replace` lists, maps by key. */
function strategicStatus(node: Node, patch: { status: Record<string, unknown> }): Node {
  const status = structuredClone(node.status ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch.status)) {
    if (k === 'conditions') {
      const byType = new Map(((status.conditions as { type: string }[]) ?? []).map((c) => [c.type, c]));
      for (const c of v as { type: string }[]) byType.set(c.type, { ...byType.get(c.type), ...c });
      status.conditions = [...byType.values()];
    } else if (Array.isArray(v)) {
      status[k] = v.filter((e) => !(typeof e === 'object' && e && '$patch' in e));
    } else status[k] = mergePatch(status[k], v);
  }
  return { ...node, status: status as Node['status'] };
}

class FakeApi implements NodeApi {
  readonly store = new Map<string, KubeObject & Record<string, unknown>>();
  readonly calls: Call[] = [];
  private rv = 100;
  private uid = 0;
  /** Return an error to fail the call. */
  fail: ((c: Call) => Error | undefined) | undefined;
  private readonly clock: FakeClock;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  private record(c: Omit<Call, 'at'>): void {
    const call = { ...c, at: this.clock.now() };
    this.calls.push(call);
    const err = this.fail?.(call);
    if (err) throw err;
  }
  count(verb: Verb, resource?: string): number {
    return this.calls.filter((c) => c.verb === verb && (!resource || c.resource === resource)).length;
  }
  private bump<T extends KubeObject>(o: T): T {
    o.metadata = { ...o.metadata, resourceVersion: String(++this.rv) };
    return o;
  }
  put(ref: ResourceRef, obj: KubeObject): void {
    const o = structuredClone(obj) as KubeObject & Record<string, unknown>;
    o.metadata = { ...o.metadata, uid: o.metadata?.uid ?? `uid-${++this.uid}` };
    this.store.set(key(ref, o.metadata?.namespace, o.metadata!.name!), this.bump(o));
  }
  obj<T>(ref: ResourceRef, name: string, ns?: string): T | undefined {
    return this.store.get(key(ref, ns, name)) as T | undefined;
  }
  private must(ref: ResourceRef, name: string, ns: string | undefined): KubeObject & Record<string, unknown> {
    const o = this.store.get(key(ref, ns, name));
    if (!o) throw new ApiNotFoundError(`${ref.resource} "${name}" not found`, { statusCode: 404 });
    return o;
  }

  async get<T = unknown>(ref: ResourceRef, name: string, opts?: { namespace?: string }): Promise<T> {
    this.record({ verb: 'get', resource: ref.resource, name });
    return structuredClone(this.must(ref, name, opts?.namespace)) as T;
  }
  async create<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: { namespace?: string }): Promise<T> {
    const name = obj.metadata!.name!;
    this.record({ verb: 'create', resource: ref.resource, name, body: structuredClone(obj) });
    const ns = opts?.namespace ?? obj.metadata?.namespace;
    if (this.store.has(key(ref, ns, name))) {
      throw new ApiError('AlreadyExists', `${ref.resource} "${name}" already exists`, { statusCode: 409, status: { reason: 'AlreadyExists' } });
    }
    this.put(ref, { ...obj, metadata: { ...obj.metadata, namespace: ns } });
    return structuredClone(this.must(ref, name, ns)) as T;
  }
  async update<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: { namespace?: string }): Promise<T> {
    const name = obj.metadata!.name!;
    this.record({ verb: 'update', resource: ref.resource, name, body: structuredClone(obj) });
    const ns = opts?.namespace ?? obj.metadata?.namespace;
    const cur = this.must(ref, name, ns);
    if (obj.metadata?.resourceVersion !== cur.metadata?.resourceVersion) {
      throw new ApiError('Conflict', 'the object has been modified; please apply your changes to the latest version and try again', { statusCode: 409, status: { reason: 'Conflict' } });
    }
    const next = this.bump(structuredClone(obj) as KubeObject & Record<string, unknown>);
    next.metadata = { ...next.metadata, uid: cur.metadata?.uid };
    this.store.set(key(ref, ns, name), next);
    return structuredClone(next) as unknown as T;
  }
  async patch<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: { type: string; namespace?: string }): Promise<T> {
    this.record({ verb: 'patch', resource: ref.resource, name, body: structuredClone(patch), patchType: opts.type });
    const cur = this.must(ref, name, opts.namespace);
    const next = this.bump(mergePatch(cur, patch) as KubeObject & Record<string, unknown>);
    this.store.set(key(ref, opts.namespace, name), next);
    return structuredClone(next) as T;
  }
  async patchStatus<T = unknown>(ref: ResourceRef, name: string, patch: unknown, opts: { type: string }): Promise<T> {
    this.record({ verb: 'patchStatus', resource: ref.resource, name, body: structuredClone(patch), patchType: opts.type });
    const cur = this.must(ref, name, undefined) as Node;
    const next = this.bump(strategicStatus(cur, patch as { status: Record<string, unknown> }));
    this.store.set(key(ref, undefined, name), next as KubeObject & Record<string, unknown>);
    return structuredClone(next) as T;
  }
}

const nodesRef: ResourceRef = { group: '', version: 'v1', resource: 'nodes', namespaced: false };
const leasesRef: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespaced: true };

const forbidden = (msg: string): ApiError => new ApiError('Forbidden', msg, { statusCode: 403, status: { reason: 'Forbidden', message: msg } });
const unavailable = (): ApiError => new ApiError('ApiUnavailable', 'connect ECONNREFUSED 127.0.0.1:6443', { statusCode: 0 });

/** Lets promise chains settle (several rounds: the loops await more than once between sleeps). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Advances the fake clock in steps, letting the loops run at each step. */
async function advance(clock: FakeClock, ms: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await flush();
  }
}

function captureLog(): { log: Logger; lines: () => { level: number; msg: string; err?: { message?: string } }[] } {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination: dest });
  return { log, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } }) };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

// ------------------------------------------------------------------ lease

describe('NodeLeaseController', () => {
  function setup(uid?: () => string | undefined) {
    const clock = new FakeClock(Date.parse('2024-05-01T10:00:00Z'));
    const api = new FakeApi(clock);
    const ctl = new NodeLeaseController({ api, nodeName: 'node-1', nodeUid: uid ?? (() => undefined), log: silentLogger, clock });
    stops.push(() => ctl.stop());
    return { clock, api, ctl };
  }
  const lease = (api: FakeApi) => api.obj<Lease>(leasesRef, 'node-1', 'kube-node-lease');

  it('creates the Lease, then renews every 10 s from the last write without a GET', async () => {
    const { clock, api, ctl } = setup();
    ctl.start();
    await flush();
    expect(api.calls.map((c) => c.verb)).toEqual(['get', 'create']);
    expect(lease(api)?.spec).toEqual({ holderIdentity: 'node-1', leaseDurationSeconds: 40, renewTime: '2024-05-01T10:00:00.000000Z' });
    expect(ctl.healthy()).toBe(true);
    await advance(clock, 10_000);
    await advance(clock, 10_000);
    expect(api.calls.map((c) => c.verb)).toEqual(['get', 'create', 'update', 'update']);
    expect(lease(api)?.spec?.renewTime).toBe('2024-05-01T10:00:20.000000Z');
    expect(ctl.lastRenewAt).toBe(clock.now());
  });

  it('adds the owner reference once the Node uid is known', async () => {
    let uid: string | undefined;
    const { clock, api, ctl } = setup(() => uid);
    ctl.start();
    await flush();
    expect(lease(api)?.metadata?.ownerReferences).toBeUndefined();
    uid = 'node-uid-1';
    await advance(clock, 10_000);
    expect(lease(api)?.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'node-uid-1' }]);
  });

  it('a conflict re-reads the Lease and retries', async () => {
    const { clock, api, ctl } = setup();
    ctl.start();
    await flush();
    // someone else writes the Lease: our last version is stale
    api.put(leasesRef, { ...lease(api)!, spec: { ...lease(api)!.spec, holderIdentity: 'someone' } } as Lease);
    api.calls.length = 0;
    await advance(clock, 10_000);
    expect(api.calls.map((c) => c.verb)).toEqual(['update', 'get', 'update']);
    expect(lease(api)?.spec?.holderIdentity).toBe('node-1');
    expect(ctl.lastRenewAt).toBe(clock.now());
  });

  it('a deleted Lease is created again', async () => {
    const { clock, api, ctl } = setup();
    ctl.start();
    await flush();
    api.store.clear();
    await advance(clock, 10_000);
    expect(lease(api)?.spec?.renewTime).toBe('2024-05-01T10:00:10.000000Z');
  });

  it('failures back off from 200 ms doubling up to 7 s, then recover', async () => {
    const { clock, api, ctl } = setup();
    const t0 = clock.now();
    api.fail = (c) => (c.verb === 'get' ? unavailable() : undefined);
    ctl.start();
    await flush();
    await advance(clock, 40_000, 50);
    const gets = api.calls.filter((c) => c.verb === 'get').map((c) => c.at - t0);
    const gaps = gets.slice(1).map((t, i) => t - gets[i]!);
    expect(gaps.slice(0, 8)).toEqual([200, 400, 800, 1600, 3200, 6400, 7000, 7000]);
    expect(ctl.healthy()).toBe(false);
    api.fail = undefined;
    await advance(clock, 7_000, 50);
    expect(lease(api)).toBeDefined();
    expect(ctl.healthy()).toBe(true);
  });
});

// ------------------------------------------------------------------ node manager

const machine: MachineReader = {
  machineInfo: async () => ({
    numCores: 2,
    memoryCapacityBytes: 4 * 2 ** 30,
    machineID: 'mid',
    systemUUID: '',
    bootID: 'bid',
    kernelVersion: '6.1.0',
    osImage: 'Debian GNU/Linux 12 (bookworm)',
    hugePages: [{ sizeBytes: 2 ** 21, count: 0 }],
  }),
  nodeStats: async (): Promise<NodeStats> => ({
    memoryAvailableBytes: 2 ** 31,
    nodeFs: { capacityBytes: 100 * 2 ** 30, availableBytes: 50 * 2 ** 30 },
    imageFs: { capacityBytes: 100 * 2 ** 30, availableBytes: 50 * 2 ** 30 },
  }),
};

function managerSetup(over: { nodeName?: string; log?: Logger; pleg?: () => PlegHealth; runtimeDown?: () => boolean } = {}) {
  const clock = new FakeClock(Date.parse('2024-05-01T10:00:00Z'));
  const api = new FakeApi(clock);
  const images: Image[] = [{ id: 'sha256:1', repoTags: ['busybox:1.36'], repoDigests: [], sizeBytes: 4_000_000 }];
  const mgr = new NodeManager({
    api,
    nodeName: over.nodeName ?? 'node-1',
    hostIP: () => '192.0.2.2',
    runtime: {
      version: async () => {
        if (over.runtimeDown?.()) throw new Error('connect ENOENT /var/run/docker.sock');
        return { runtimeName: 'docker', runtimeVersion: '20.10.24', runtimeApiVersion: '1.41' };
      },
      listImages: async () => images,
    },
    plegHealth: over.pleg,
    rootDir: '/var/lib/berth',
    machine,
    nodeLabels: { 'example.com/pool': 'blue' },
    registerWithTaints: [{ key: 'dedicated', value: 'berth', effect: 'NoSchedule' }],
    log: over.log ?? silentLogger,
    clock,
  });
  stops.push(() => mgr.stop());
  return { clock, api, mgr };
}
const nodeOf = (api: FakeApi, name = 'node-1') => api.obj<Node>(nodesRef, name);
const ready = (n: Node | undefined) => n?.status?.conditions?.find((c) => c.type === 'Ready');

describe('NodeManager', () => {
  it('registers the Node with labels, taints, annotation and status; node() answers before and after', async () => {
    const { api, mgr } = managerSetup();
    const seen: Node[] = [];
    mgr.onNode((n) => seen.push(n));
    await mgr.start();
    expect(mgr.node().metadata?.name).toBe('node-1');
    await flush();
    expect(mgr.registered).toBe(true);
    const created = api.calls.find((c) => c.verb === 'create' && c.resource === 'nodes')!.body as Node;
    expect(created.metadata?.labels).toMatchObject({ 'kubernetes.io/hostname': 'node-1', 'kubernetes.io/os': 'linux', 'example.com/pool': 'blue' });
    expect(created.metadata?.annotations).toEqual({ 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' });
    expect(created.spec?.taints).toEqual([{ key: 'dedicated', value: 'berth', effect: 'NoSchedule' }]);
    expect(created.status?.capacity).toMatchObject({ cpu: '2', memory: '4Gi', pods: '110', 'ephemeral-storage': '100Gi', 'hugepages-2Mi': '0' });
    expect(created.status?.nodeInfo?.containerRuntimeVersion).toBe('docker://20.10.24');
    expect(created.status?.images).toEqual([{ names: ['busybox:1.36'], sizeBytes: 4_000_000 }]);
    expect(ready(created)).toMatchObject({ status: 'True', reason: 'KubeletReady' });
    expect(mgr.node().metadata?.uid).toBe(nodeOf(api)?.metadata?.uid);
    expect(seen.length).toBeGreaterThan(0);
    // the Lease is owned by the registered Node from its first renewal on
    expect(api.obj<Lease>(leasesRef, 'node-1', 'kube-node-lease')).toBeDefined();
  });

  it('posts status only when it changed or the report frequency passed (KEP-589)', async () => {
    let pleg: PlegHealth = { ok: true };
    const { clock, api, mgr } = managerSetup({ pleg: () => pleg });
    await mgr.start();
    await flush();
    await advance(clock, 60_000, 1000);
    expect(api.count('patchStatus')).toBe(0);
    expect(api.count('get', 'nodes')).toBeGreaterThanOrEqual(6);

    pleg = { ok: false, message: 'pleg was last seen active 3m0s ago; threshold is 3m0s' };
    await advance(clock, 10_000, 1000);
    expect(api.count('patchStatus')).toBe(1);
    const patch = api.calls.find((c) => c.verb === 'patchStatus')!;
    expect(patch.patchType).toBe('strategic');
    expect(ready(nodeOf(api))).toMatchObject({
      status: 'False',
      reason: 'KubeletNotReady',
      message: 'PLEG is not healthy: pleg was last seen active 3m0s ago; threshold is 3m0s',
      lastTransitionTime: '2024-05-01T10:01:10Z',
    });

    pleg = { ok: true };
    mgr.requestStatusUpdate();
    await flush();
    expect(api.count('patchStatus')).toBe(2);
    expect(ready(nodeOf(api))?.status).toBe('True');

    await advance(clock, 5 * 60_000, 1000);
    expect(api.count('patchStatus')).toBe(3);
    expect(mgr.healthy()).toBe(true);
  });

  it('adopts an existing Node: fixes the labels it owns, keeps the others and the taints', async () => {
    const { api, mgr } = managerSetup();
    api.put(nodesRef, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1', labels: { 'kubernetes.io/arch': 'wrong', team: 'a' } },
      spec: { taints: [{ key: 'admin', effect: 'NoExecute' }] },
    } as Node);
    await mgr.start();
    await flush();
    const n = nodeOf(api)!;
    expect(n.metadata?.labels).toMatchObject({ team: 'a', 'kubernetes.io/hostname': 'node-1', 'kubernetes.io/os': 'linux' });
    expect(n.metadata?.labels?.['kubernetes.io/arch']).not.toBe('wrong');
    // --node-labels and --register-with-taints apply at creation only (as upstream)
    expect(n.metadata?.labels?.['example.com/pool']).toBeUndefined();
    expect(n.spec?.taints).toEqual([{ key: 'admin', effect: 'NoExecute' }]);
    expect(api.calls.find((c) => c.verb === 'patch')?.patchType).toBe('merge');
    expect(ready(n)?.status).toBe('True');
  });

  it('a 403 is logged once with the server message and retried with back-off, not in a tight loop', async () => {
    const cap = captureLog();
    const msg = 'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"';
    const { clock, api, mgr } = managerSetup({ nodeName: 'node-2', log: cap.log });
    api.fail = (c) => (c.resource === 'nodes' || c.resource === 'leases' ? forbidden(msg) : undefined);
    await mgr.start();
    await advance(clock, 60_000, 100);
    const creates = api.calls.filter((c) => c.verb === 'create' && c.resource === 'nodes');
    // 100 ms doubling to 7 s: about a dozen attempts a minute
    expect(creates.length).toBeGreaterThan(5);
    expect(creates.length).toBeLessThan(16);
    const warned = cap.lines().filter((l) => l.msg === 'unable to register node with the API server');
    expect(warned).toHaveLength(1);
    expect(warned[0]?.err?.message).toBe(msg);
    expect(mgr.registered).toBe(false);
    expect(mgr.healthy()).toBe(false);
  });

  it('re-registers a deleted Node', async () => {
    const { clock, api, mgr } = managerSetup();
    await mgr.start();
    await flush();
    const uid = nodeOf(api)?.metadata?.uid;
    api.store.delete('nodes//node-1');
    await advance(clock, 10_000, 1000);
    expect(nodeOf(api)).toBeDefined();
    expect(nodeOf(api)?.metadata?.uid).not.toBe(uid);
    expect(mgr.node().metadata?.uid).toBe(nodeOf(api)?.metadata?.uid);
    await advance(clock, 10_000, 1000);
    expect(api.obj<Lease>(leasesRef, 'node-1', 'kube-node-lease')?.metadata?.ownerReferences?.[0]?.uid).toBe(nodeOf(api)?.metadata?.uid);
  });

  it('retries a conflicting status write', async () => {
    let pleg: PlegHealth = { ok: true };
    const { clock, api, mgr } = managerSetup({ pleg: () => pleg });
    await mgr.start();
    await flush();
    let conflicts = 2;
    api.fail = (c) => (c.verb === 'patchStatus' && conflicts-- > 0 ? new ApiError('Conflict', 'conflict', { statusCode: 409 }) : undefined);
    pleg = { ok: false, message: 'x' };
    await advance(clock, 10_000, 1000);
    expect(api.count('patchStatus')).toBe(3);
    expect(ready(nodeOf(api))?.status).toBe('False');
  });

  it("a failed runtime check makes the node NotReady with the runtime's reason at the next update; 30 s silent adds 'container runtime is down'; back up makes it Ready", async () => {
    let down = false;
    const { clock, api, mgr } = managerSetup({ runtimeDown: () => down });
    await mgr.start();
    await flush();
    down = true;
    await advance(clock, 10_000, 1000);
    const notReady = 'Container runtime not ready: RuntimeReady=false reason:DockerDaemonNotReady message:docker: failed to get docker version: connect ENOENT /var/run/docker.sock';
    expect(ready(nodeOf(api))).toMatchObject({ status: 'False', reason: 'KubeletNotReady', message: notReady });
    await advance(clock, 30_000, 1000);
    expect(ready(nodeOf(api))).toMatchObject({ status: 'False', message: `[container runtime is down, ${notReady}]` });
    expect(nodeOf(api)?.status?.nodeInfo?.containerRuntimeVersion).toBe('docker://20.10.24');
    down = false;
    await advance(clock, 10_000, 1000);
    expect(ready(nodeOf(api))?.status).toBe('True');
  });
});
