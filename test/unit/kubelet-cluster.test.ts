// Pure pieces of cluster mode: admission, mirror-pod planning, the status patch, service env vars.
import { describe, expect, it } from 'vitest';
import type { Node, Pod, PodStatus, Service } from 'kubernetes-types/core/v1';
import { admitPod, allocatableOf, podRequests } from '../../src/kubelet/pod/admission.ts';
import { computeMirrorActions, MIRROR_ANNOTATION } from '../../src/kubelet/sources/mirror-pods.ts';
import { buildStatusPatch, mergeConditions, statusEqual } from '../../src/kubelet/status/status-manager.ts';
import { serviceEnv, servicesForPod } from '../../src/kubelet/sources/service-env.ts';

const pod = (name: string, requests: Record<string, string> = {}, extra: Partial<Pod['spec']> = {}): Pod => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}` },
  spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x', resources: { requests } }], ...extra },
});
const node: Node = { metadata: { name: 'n1', labels: { zone: 'a', 'kubernetes.io/hostname': 'n1' } } };
const alloc = { cpuMillis: 2000, memoryBytes: 4 * 2 ** 30, pods: 3 };

describe('admitPod (lifecycle/predicate.go)', () => {
  it.each([
    ['fits', pod('a', { cpu: '500m', memory: '1Gi' }), [], { admit: true }],
    [
      'cpu over allocatable',
      pod('a', { cpu: '1500m' }),
      [pod('b', { cpu: '1' })],
      { admit: false, reason: 'OutOfcpu', message: "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000" },
    ],
    [
      'memory over allocatable',
      pod('a', { memory: '5Gi' }),
      [],
      { admit: false, reason: 'OutOfmemory', message: `Node didn't have enough resource: memory, requested: ${5 * 2 ** 30}, used: 0, capacity: ${4 * 2 ** 30}` },
    ],
    [
      'too many pods',
      pod('a'),
      [pod('b'), pod('c'), pod('d')],
      { admit: false, reason: 'OutOfpods', message: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3" },
    ],
    ['nodeSelector mismatch', pod('a', {}, { nodeSelector: { zone: 'b' } }), [], { admit: false, reason: 'NodeAffinity', message: 'Predicate NodeAffinity failed' }],
    ['nodeSelector match', pod('a', {}, { nodeSelector: { zone: 'a' } }), [], { admit: true }],
  ] as [string, Pod, Pod[], unknown][])('%s', (_n, p, others, want) => {
    expect(admitPod(p, others, node, alloc)).toEqual(want);
  });

  it('required node affinity with In / NotIn / Exists', () => {
    const aff = (op: string, values?: string[]): Pod =>
      pod('a', {}, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: op, values }] }] } } } });
    expect(admitPod(aff('In', ['a', 'c']), [], node, alloc).admit).toBe(true);
    expect(admitPod(aff('NotIn', ['a']), [], node, alloc).admit).toBe(false);
    expect(admitPod(aff('Exists'), [], node, alloc).admit).toBe(true);
    expect(admitPod(aff('DoesNotExist'), [], node, alloc).admit).toBe(false);
  });

  it('rejects a hostPort already taken on the same protocol and address', () => {
    const hp = (name: string, port: number, protocol = 'TCP'): Pod => ({
      ...pod(name),
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 80, hostPort: port, protocol }] }] },
    });
    expect(admitPod(hp('a', 8080), [hp('b', 8080)], node, alloc)).toMatchObject({ admit: false, reason: 'NodePorts' });
    expect(admitPod(hp('a', 8080, 'UDP'), [hp('b', 8080)], node, alloc).admit).toBe(true);
    expect(admitPod(hp('a', 8081), [hp('b', 8080)], node, alloc).admit).toBe(true);
  });

  it('counts init containers as the max, app containers as the sum', () => {
    const p: Pod = {
      metadata: { name: 'p' },
      spec: {
        initContainers: [{ name: 'i', image: 'x', resources: { requests: { cpu: '3' } } }],
        containers: [
          { name: 'a', image: 'x', resources: { requests: { cpu: '1' } } },
          { name: 'b', image: 'x', resources: { requests: { cpu: '500m' } } },
        ],
      },
    };
    expect(podRequests(p).cpuMillis).toBe(3000);
  });

  it('reads allocatable from the Node status, falling back per resource', () => {
    const n: Node = { status: { allocatable: { cpu: '1500m', memory: '1Gi' } } };
    expect(allocatableOf(n, alloc)).toEqual({ cpuMillis: 1500, memoryBytes: 2 ** 30, pods: 3, ephemeralStorageBytes: undefined });
    expect(allocatableOf(undefined, alloc)).toBe(alloc);
  });
});

describe('computeMirrorActions (mirror_client.go)', () => {
  const sp = (name: string, hash: string): Pod => ({ metadata: { name, namespace: 'default', uid: hash, annotations: { 'kubernetes.io/config.hash': hash } }, spec: { containers: [] } });
  const mirror = (name: string, hash: string, deleting = false): Pod => ({
    metadata: { name, namespace: 'default', uid: `m-${name}`, annotations: { [MIRROR_ANNOTATION]: hash }, deletionTimestamp: deleting ? '2026-01-01T00:00:00Z' : undefined },
    spec: { containers: [] },
  });
  const n = { name: 'n1', uid: 'node-uid' };
  it('creates a missing mirror owned by the node', () => {
    const a = computeMirrorActions([sp('web-n1', 'h1')], [], n);
    expect(a.delete).toEqual([]);
    expect(a.create).toHaveLength(1);
    expect(a.create[0]!.metadata?.annotations?.[MIRROR_ANNOTATION]).toBe('h1');
    expect(a.create[0]!.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid', controller: true }]);
  });
  it('keeps a matching mirror', () => {
    expect(computeMirrorActions([sp('web-n1', 'h1')], [mirror('web-n1', 'h1')], n)).toEqual({ create: [], delete: [] });
  });
  it('replaces a stale or deleted mirror, and deletes an orphan', () => {
    const stale = computeMirrorActions([sp('web-n1', 'h2')], [mirror('web-n1', 'h1')], n);
    expect(stale.delete.map((m) => m.metadata?.uid)).toEqual(['m-web-n1']);
    expect(stale.create).toHaveLength(1);
    const deleting = computeMirrorActions([sp('web-n1', 'h1')], [mirror('web-n1', 'h1', true)], n);
    expect(deleting.delete).toHaveLength(1);
    expect(deleting.create).toHaveLength(1);
    expect(computeMirrorActions([], [mirror('old-n1', 'h9')], n)).toEqual({ create: [], delete: [mirror('old-n1', 'h9')] });
  });
});

describe('status patch (status_manager.go mergePodStatus)', () => {
  const ours: PodStatus = {
    phase: 'Running',
    conditions: [
      { type: 'Ready', status: 'True' },
      { type: 'PodScheduled', status: 'True' },
    ],
    podIP: '10.0.0.2',
  };
  const server: PodStatus = {
    phase: 'Pending',
    reason: 'Old',
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'example.com/gate', status: 'True' },
    ],
  };
  it("keeps conditions the kubelet does not own, replaces the kubelet's", () => {
    expect(mergeConditions(server.conditions, ours.conditions).map((c) => c.type)).toEqual(['example.com/gate', 'Ready', 'PodScheduled']);
  });
  it('nulls the kubelet-owned fields it no longer sets, and carries the UID precondition', () => {
    const p = buildStatusPatch('uid-1', ours, server);
    expect(p.metadata).toEqual({ uid: 'uid-1' });
    expect(p.status.phase).toBe('Running');
    expect(p.status.reason).toBeNull();
    expect(p.status.podIP).toBe('10.0.0.2');
  });
  it('compares what matters: equal after the server applied it, different otherwise', () => {
    const applied: PodStatus = { ...ours, conditions: mergeConditions(server.conditions, ours.conditions) };
    expect(statusEqual(ours, applied)).toBe(true);
    expect(statusEqual(ours, server)).toBe(false);
    expect(statusEqual(ours, undefined)).toBe(false);
  });
});

describe('service env vars (pkg/kubelet/envvars)', () => {
  const svc = (ns: string, name: string, ip: string, ports: { name?: string; port: number; protocol?: string }[]): Service => ({
    metadata: { namespace: ns, name },
    spec: { clusterIP: ip, ports: ports.map((p) => ({ ...p, protocol: p.protocol ?? 'TCP' })) },
  });
  const all = [
    svc('default', 'kubernetes', '10.96.0.1', [{ name: 'https', port: 443 }]),
    svc('app', 'my-db', '10.96.0.7', [{ name: 'sql', port: 5432 }, { port: 9187, protocol: 'UDP' }]),
    svc('app', 'headless', 'None', [{ port: 80 }]),
    svc('other', 'x', '10.96.0.9', [{ port: 80 }]),
  ];
  it('gives docker-links variables for the namespace and the master service', () => {
    const env = serviceEnv(servicesForPod(all, 'app', true));
    expect(env).toMatchObject({
      MY_DB_SERVICE_HOST: '10.96.0.7',
      MY_DB_SERVICE_PORT: '5432',
      MY_DB_SERVICE_PORT_SQL: '5432',
      MY_DB_PORT: 'tcp://10.96.0.7:5432',
      MY_DB_PORT_9187_UDP: 'udp://10.96.0.7:9187',
      MY_DB_PORT_9187_UDP_PROTO: 'udp',
      MY_DB_PORT_9187_UDP_ADDR: '10.96.0.7',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
    });
    expect(Object.keys(env).some((k) => k.startsWith('HEADLESS') || k.startsWith('X_'))).toBe(false);
  });
  it('keeps only the master service without service links', () => {
    const env = serviceEnv(servicesForPod(all, 'app', false));
    expect(Object.keys(env).every((k) => k.startsWith('KUBERNETES_'))).toBe(true);
    expect(env.KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
  });
});
