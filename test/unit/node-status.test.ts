// Pure node status computation: conditions and their transition times, capacity/allocatable, images, change
// detection, the status patch, registration and adoption, the Lease object.
import { describe, it, expect } from 'vitest';
import type { NodeStatus } from 'kubernetes-types/core/v1';
import type { Image } from '../../src/cri/index.ts';
import {
  buildInitialNode,
  buildLease,
  buildNodeStatusPatch,
  computeAdoptionPatch,
  computeNodeImages,
  computeNodeStatus,
  computePlegHealth,
  computePressure,
  computeReadinessErrors,
  computeResources,
  computeRuntimeNotReady,
  formatAggregate,
  computeThresholdsCrossed,
  formatBinaryQuantity,
  formatCpuQuantity,
  formatGoDuration,
  formatMicroTime,
  formatTime,
  isNodeStatusChanged,
  KUBELET_VERSION,
  DEFAULT_EVICTION_HARD,
  type MachineInfo,
  type NodeStatusInput,
} from '../../src/kubelet/node/index.ts';

const Mi = 2 ** 20;
const Gi = 2 ** 30;
const T0 = Date.parse('2024-05-01T10:00:00Z');

const machine: MachineInfo = {
  numCores: 2,
  memoryCapacityBytes: 8038468 * 1024,
  machineID: 'm-id',
  systemUUID: 's-uuid',
  bootID: 'b-id',
  kernelVersion: '6.1.0-18-amd64',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
  hugePages: [
    { sizeBytes: 2 * Mi, count: 0 },
    { sizeBytes: Gi, count: 0 },
  ],
};

function input(over: Partial<NodeStatusInput> = {}): NodeStatusInput {
  return {
    machine,
    nodeFsCapacityBytes: 100 * Gi,
    hostIP: '192.0.2.2',
    hostname: 'node-1',
    maxPods: 110,
    kubeletPort: 10250,
    containerRuntimeVersion: 'docker://20.10.24',
    images: [],
    pressure: { memory: false, disk: false, pid: false },
    readinessErrors: [],
    ...over,
  };
}

const cond = (s: NodeStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('quantities', () => {
  it.each([
    [0, '0'],
    [512, '512'],
    [1024, '1Ki'],
    [2 * Mi, '2Mi'],
    [Gi, '1Gi'],
    [8038468 * 1024, '8038468Ki'],
    [32847216396, '32847216396'],
    [1536 * Mi, '1536Mi'],
  ])('binary %d → %s', (n, want) => expect(formatBinaryQuantity(n)).toBe(want));
  it.each([
    [2000, '2'],
    [1500, '1500m'],
    [0, '0'],
  ])('cpu %d → %s', (n, want) => expect(formatCpuQuantity(n)).toBe(want));
  it.each([
    [180_000, '3m0s'],
    [185_500, '3m5.5s'],
    [250, '250ms'],
    [7_200_000, '2h0m0s'],
    [12_000, '12s'],
  ])('go duration %d → %s', (ms, want) => expect(formatGoDuration(ms)).toBe(want));
  it('times: seconds for Time, microseconds for MicroTime', () => {
    expect(formatTime(T0 + 1234)).toBe('2024-05-01T10:00:01Z');
    expect(formatMicroTime(T0 + 1234)).toBe('2024-05-01T10:00:01.234000Z');
  });
});

describe('computeResources', () => {
  it('capacity from the machine; allocatable minus the hard eviction thresholds', () => {
    const { capacity, allocatable } = computeResources(input());
    expect(capacity).toEqual({
      cpu: '2',
      memory: '8038468Ki',
      pods: '110',
      'ephemeral-storage': '100Gi',
      'hugepages-2Mi': '0',
      'hugepages-1Gi': '0',
    });
    // memory.available<100Mi is held back from allocatable memory
    expect(allocatable.memory).toBe(formatBinaryQuantity(8038468 * 1024 - 100 * Mi));
    expect(allocatable.memory).toBe('7936068Ki');
    // nodefs.available<10%: float32(0.1) × capacity, truncated (GetThresholdQuantity)
    expect(allocatable['ephemeral-storage']).toBe(String(100 * Gi - Math.trunc(100 * Gi * Math.fround(0.1))));
    expect(allocatable).toMatchObject({ cpu: '2', pods: '110', 'hugepages-2Mi': '0', 'hugepages-1Gi': '0' });
  });

  it('reservations and reserved huge pages come off allocatable; never negative', () => {
    const m = { ...machine, hugePages: [{ sizeBytes: 2 * Mi, count: 100 }] };
    const { capacity, allocatable } = computeResources(
      input({ machine: m, maxPods: 30, reserved: { cpuMillis: 500, memoryBytes: Gi, ephemeralStorageBytes: Gi } }),
    );
    expect(capacity['hugepages-2Mi']).toBe('200Mi');
    expect(allocatable['hugepages-2Mi']).toBe('200Mi');
    expect(allocatable.cpu).toBe('1500m');
    expect(allocatable.pods).toBe('30');
    expect(allocatable.memory).toBe(formatBinaryQuantity(8038468 * 1024 - Gi - 100 * Mi - 200 * Mi));
    const tiny = computeResources(input({ machine: { ...machine, memoryCapacityBytes: 50 * Mi } }));
    expect(tiny.allocatable.memory).toBe('0');
  });

  it('unknown root filesystem: no ephemeral-storage', () => {
    const { capacity, allocatable } = computeResources(input({ nodeFsCapacityBytes: undefined }));
    expect(capacity['ephemeral-storage']).toBeUndefined();
    expect(allocatable['ephemeral-storage']).toBeUndefined();
  });
});

describe('computeNodeStatus', () => {
  it('a fresh status: addresses, nodeInfo, daemon endpoint, conditions in upstream order', () => {
    const s = computeNodeStatus(input(), undefined, T0);
    expect(s.addresses).toEqual([
      { type: 'InternalIP', address: '192.0.2.2' },
      { type: 'Hostname', address: 'node-1' },
    ]);
    expect(s.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(s.nodeInfo).toMatchObject({
      machineID: 'm-id',
      systemUUID: 's-uuid',
      bootID: 'b-id',
      kernelVersion: '6.1.0-18-amd64',
      osImage: 'Debian GNU/Linux 12 (bookworm)',
      containerRuntimeVersion: 'docker://20.10.24',
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: 'linux',
    });
    expect(['amd64', 'arm64']).toContain(s.nodeInfo?.architecture);
    expect(KUBELET_VERSION).toMatch(/^v1\.\d+\.\d+-berth\.\d+\.\d+\.\d+$/);
    const now = '2024-05-01T10:00:00Z';
    expect(s.conditions).toEqual([
      { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
    ]);
  });

  const later = T0 + 10_000;
  const laterText = '2024-05-01T10:00:10Z';
  it.each([
    {
      name: 'unchanged status keeps the transition time, moves the heartbeat',
      over: {},
      type: 'Ready',
      want: { status: 'True', reason: 'KubeletReady', lastTransitionTime: '2024-05-01T10:00:00Z', lastHeartbeatTime: laterText },
    },
    {
      name: 'runtime down: NotReady with the reason, new transition time',
      over: { readinessErrors: ['container runtime is down'] },
      type: 'Ready',
      want: { status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down', lastTransitionTime: laterText },
    },
    {
      name: 'several reasons read as upstream aggregate errors: in brackets, comma-space separated',
      over: { readinessErrors: ['container runtime is down', 'PLEG is not healthy: pleg was last seen active 3m0s ago; threshold is 3m0s'] },
      type: 'Ready',
      want: { status: 'False', message: '[container runtime is down, PLEG is not healthy: pleg was last seen active 3m0s ago; threshold is 3m0s]' },
    },
    {
      name: 'missing capacity makes the node NotReady',
      over: { nodeFsCapacityBytes: undefined },
      type: 'Ready',
      want: { status: 'False', message: 'Missing node capacity for resources: ephemeral-storage' },
    },
    {
      name: 'memory pressure',
      over: { pressure: { memory: true, disk: false, pid: false } },
      type: 'MemoryPressure',
      want: { status: 'True', reason: 'KubeletHasInsufficientMemory', message: 'kubelet has insufficient memory available', lastTransitionTime: laterText },
    },
    {
      name: 'disk pressure',
      over: { pressure: { memory: false, disk: true, pid: false } },
      type: 'DiskPressure',
      want: { status: 'True', reason: 'KubeletHasDiskPressure', message: 'kubelet has disk pressure', lastTransitionTime: laterText },
    },
    {
      name: 'pid pressure',
      over: { pressure: { memory: false, disk: false, pid: true } },
      type: 'PIDPressure',
      want: { status: 'True', reason: 'KubeletHasInsufficientPID', message: 'kubelet has insufficient PID available', lastTransitionTime: laterText },
    },
    {
      name: 'pressure elsewhere leaves memory untouched',
      over: { pressure: { memory: false, disk: true, pid: false } },
      type: 'MemoryPressure',
      want: { status: 'False', lastTransitionTime: '2024-05-01T10:00:00Z', lastHeartbeatTime: laterText },
    },
  ])('$name', ({ over, type, want }) => {
    const prev = computeNodeStatus(input(), undefined, T0);
    const next = computeNodeStatus(input(over), prev, later);
    expect(cond(next, type)).toMatchObject(want);
  });

  it('a changed Ready message with the same status keeps the transition time', () => {
    const a = computeNodeStatus(input({ readinessErrors: ['container runtime is down'] }), undefined, T0);
    const b = computeNodeStatus(input({ readinessErrors: ['PLEG is not healthy: x'] }), a, later);
    expect(cond(b, 'Ready')).toMatchObject({ status: 'False', message: 'PLEG is not healthy: x', lastTransitionTime: '2024-05-01T10:00:00Z' });
    const c = computeNodeStatus(input(), b, later + 10_000);
    expect(cond(c, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2024-05-01T10:00:20Z' });
  });

  it('an Unknown status left by the node lifecycle controller is a transition', () => {
    const prev = computeNodeStatus(input(), undefined, T0);
    for (const c of prev.conditions ?? []) c.status = 'Unknown';
    const next = computeNodeStatus(input(), prev, later);
    for (const c of next.conditions ?? []) expect(c.lastTransitionTime).toBe(laterText);
  });
});

describe('computeNodeImages', () => {
  const img = (id: string, size: number, tags: string[], digests: string[] = []): Image => ({ id, sizeBytes: size, repoTags: tags, repoDigests: digests });

  it('biggest first, digests then tags, at most 5 names, untagged names dropped', () => {
    const out = computeNodeImages([
      img('a', 10, ['small:1']),
      img('b', 300, ['big:1', 'big:2', 'big:3', 'big:4'], ['big@sha256:1', 'big@sha256:2']),
      img('c', 200, ['<none>:<none>'], ['<none>@<none>']),
      img('d', 100, ['mid:1'], ['mid@sha256:9']),
    ]);
    expect(out).toEqual([
      { names: ['big@sha256:1', 'big@sha256:2', 'big:1', 'big:2', 'big:3'], sizeBytes: 300 },
      { names: ['mid@sha256:9', 'mid:1'], sizeBytes: 100 },
      { names: ['small:1'], sizeBytes: 10 },
    ]);
  });

  it('caps the list at 50', () => {
    const many = Array.from({ length: 70 }, (_, i) => img(`id${i}`, i, [`img:${i}`]));
    const out = computeNodeImages(many);
    expect(out).toHaveLength(50);
    expect(out[0]).toEqual({ names: ['img:69'], sizeBytes: 69 });
    expect(out[49]).toEqual({ names: ['img:20'], sizeBytes: 20 });
  });
});

describe('pressure and readiness', () => {
  const fs = (cap: number, avail: number, inodes = 1000, free = 900) => ({ capacityBytes: cap, availableBytes: avail, inodes, inodesFree: free });
  it.each([
    { name: 'plenty', stats: { memoryAvailableBytes: Gi, nodeFs: fs(100, 50), imageFs: fs(100, 50), pids: { max: 1000, running: 10 } }, want: { memory: false, disk: false, pid: false } },
    { name: 'memory below 100Mi', stats: { memoryAvailableBytes: 99 * Mi }, want: { memory: true, disk: false, pid: false } },
    { name: 'nodefs below 10%', stats: { nodeFs: fs(100, 9) }, want: { memory: false, disk: true, pid: false } },
    { name: 'nodefs at 10% exactly', stats: { nodeFs: fs(100, 10) }, want: { memory: false, disk: false, pid: false } },
    { name: 'nodefs inodes below 5%', stats: { nodeFs: fs(100, 50, 1000, 40) }, want: { memory: false, disk: true, pid: false } },
    { name: 'imagefs below 15%', stats: { imageFs: fs(100, 14) }, want: { memory: false, disk: true, pid: false } },
    { name: 'no pid threshold by default', stats: { pids: { max: 1000, running: 999 } }, want: { memory: false, disk: false, pid: false } },
    { name: 'nothing known', stats: {}, want: { memory: false, disk: false, pid: false } },
  ])('thresholds: $name', ({ stats, want }) => {
    expect(computeThresholdsCrossed(stats)).toEqual(want);
  });

  it('pid threshold when configured', () => {
    const t = { ...DEFAULT_EVICTION_HARD, pidAvailablePercent: 10 };
    expect(computeThresholdsCrossed({ pids: { max: 1000, running: 950 } }, t).pid).toBe(true);
    expect(computeThresholdsCrossed({ pids: { max: 1000, running: 800 } }, t).pid).toBe(false);
  });

  it('a pressure condition stays for the transition period after the threshold clears', () => {
    const none = { memory: false, disk: false, pid: false };
    let r = computePressure({ ...none, memory: true }, {}, T0, 300_000);
    expect(r.pressure.memory).toBe(true);
    r = computePressure(none, r.observations, T0 + 299_000, 300_000);
    expect(r.pressure.memory).toBe(true);
    r = computePressure(none, r.observations, T0 + 300_000, 300_000);
    expect(r.pressure.memory).toBe(false);
  });

  it.each([
    { name: 'healthy', i: { runtimeLastOkAt: T0, runtimeChecked: true, pleg: { ok: true } }, want: [] },
    { name: 'not checked yet', i: { runtimeLastOkAt: undefined, runtimeChecked: false }, want: ['container runtime status check may not have completed yet'] },
    { name: 'never answered', i: { runtimeLastOkAt: undefined, runtimeChecked: true }, want: ['container runtime is down'] },
    { name: 'silent for 20 s: tolerated', i: { runtimeLastOkAt: T0 - 20_000, runtimeChecked: true }, want: [] },
    { name: 'silent for 30 s', i: { runtimeLastOkAt: T0 - 30_000, runtimeChecked: true }, want: ['container runtime is down'] },
    { name: "the runtime's own error at once", i: { runtimeLastOkAt: T0 - 10_000, runtimeChecked: true, runtimeError: 'Container runtime not ready: x' }, want: ['Container runtime not ready: x'] },
    {
      name: "down for 30 s, then the runtime's own error after the health checks",
      i: { runtimeLastOkAt: T0 - 30_000, runtimeChecked: true, pleg: { ok: false, message: 'p' }, runtimeError: 'Container runtime not ready: x' },
      want: ['container runtime is down', 'PLEG is not healthy: p', 'Container runtime not ready: x'],
    },
    {
      name: 'pleg and extra',
      i: { runtimeLastOkAt: T0, runtimeChecked: true, pleg: { ok: false, message: 'pleg was last seen active 3m5s ago; threshold is 3m0s' }, extra: ['network plugin is not ready'] },
      want: ['PLEG is not healthy: pleg was last seen active 3m5s ago; threshold is 3m0s', 'network plugin is not ready'],
    },
  ])('readiness: $name', ({ i, want }) => {
    expect(computeReadinessErrors({ now: T0, runtimeThresholdMs: 30_000, ...i })).toEqual(want);
  });

  it("a failed version call reads as dockershim's RuntimeReady=false condition through updateRuntimeUp", () => {
    expect(computeRuntimeNotReady('docker version: cannot reach the Docker daemon: connect ENOENT /var/run/docker.sock')).toBe(
      'Container runtime not ready: RuntimeReady=false reason:DockerDaemonNotReady message:docker: failed to get docker version: cannot reach the Docker daemon: connect ENOENT /var/run/docker.sock',
    );
    expect(computeRuntimeNotReady('runtime version timed out after 10000 ms')).toBe('Container runtime not ready: RuntimeReady=false reason:DockerDaemonNotReady message:docker: failed to get docker version: runtime version timed out after 10000 ms');
  });

  it('aggregates messages as utilerrors.NewAggregate: one as is, repeats once, several in brackets', () => {
    expect(formatAggregate(['a'])).toBe('a');
    expect(formatAggregate(['a', 'a'])).toBe('a');
    expect(formatAggregate(['a', 'b', 'a'])).toBe('[a, b]');
  });

  it('pleg health messages', () => {
    expect(computePlegHealth(0, 180_000, T0)).toEqual({ ok: false, message: 'pleg has yet to be successful' });
    expect(computePlegHealth(T0 - 1000, 180_000, T0)).toEqual({ ok: true });
    expect(computePlegHealth(T0 - 185_000, 180_000, T0)).toEqual({ ok: false, message: 'pleg was last seen active 3m5s ago; threshold is 3m0s' });
  });
});

describe('isNodeStatusChanged and the patch', () => {
  it('heartbeats alone are no change; a condition, an image or a quantity is', () => {
    const a = computeNodeStatus(input(), undefined, T0);
    expect(isNodeStatusChanged(undefined, a)).toBe(true);
    expect(isNodeStatusChanged(a, computeNodeStatus(input(), a, T0 + 10_000))).toBe(false);
    expect(isNodeStatusChanged(a, computeNodeStatus(input({ readinessErrors: ['x'] }), a, T0 + 10_000))).toBe(true);
    expect(isNodeStatusChanged(a, computeNodeStatus(input({ images: [{ id: 'i', sizeBytes: 1, repoTags: ['x:1'], repoDigests: [] }] }), a, T0))).toBe(true);
    expect(isNodeStatusChanged(a, computeNodeStatus(input({ maxPods: 20 }), a, T0))).toBe(true);
    expect(isNodeStatusChanged(a, computeNodeStatus(input({ hostIP: '10.0.0.1' }), a, T0))).toBe(true);
  });

  it('the server writing quantities in another form is no change; foreign conditions and resources are ignored', () => {
    const a = computeNodeStatus(input(), undefined, T0);
    const server: NodeStatus = structuredClone(a);
    server.capacity = { ...server.capacity, memory: String(8038468 * 1024), 'example.com/dongle': '4' };
    server.conditions = [...(server.conditions ?? []), { type: 'NetworkUnavailable', status: 'False' }];
    expect(isNodeStatusChanged(server, computeNodeStatus(input(), server, T0 + 10_000))).toBe(false);
  });

  it('a huge page size no longer reported is removed by the patch', () => {
    const prev = computeNodeStatus(input(), undefined, T0);
    const next = computeNodeStatus(input({ machine: { ...machine, hugePages: [{ sizeBytes: 2 * Mi, count: 0 }] } }), prev, T0);
    expect(isNodeStatusChanged(prev, next)).toBe(true);
    const patch = buildNodeStatusPatch(prev, next);
    expect(patch.status.capacity).toMatchObject({ 'hugepages-1Gi': null, 'hugepages-2Mi': '0' });
    expect(patch.status.allocatable).toMatchObject({ 'hugepages-1Gi': null });
  });

  it('the patch merges conditions by type and replaces addresses', () => {
    const next = computeNodeStatus(input(), undefined, T0);
    const patch = buildNodeStatusPatch(undefined, next);
    expect(patch.status.conditions).toHaveLength(4);
    expect(patch.status.addresses).toEqual([{ $patch: 'replace' }, ...(next.addresses ?? [])]);
    expect(patch.status.nodeInfo).toEqual(next.nodeInfo);
    expect(patch.status.images).toEqual([]);
  });
});

describe('registration', () => {
  const status = computeNodeStatus(input(), undefined, T0);
  it('the initial Node: default labels, --node-labels, taints, attach/detach annotation, status', () => {
    const n = buildInitialNode({
      nodeName: 'node-1',
      hostname: 'node-1',
      nodeLabels: { 'example.com/team': 'a' },
      taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }],
      status,
    });
    const arch = status.nodeInfo?.architecture;
    expect(n.metadata).toEqual({
      name: 'node-1',
      labels: {
        'kubernetes.io/hostname': 'node-1',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': arch,
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': arch,
        'example.com/team': 'a',
      },
      annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
    });
    expect(n.spec?.taints).toEqual([{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }]);
    expect(n.status).toBe(status);
  });

  it('adoption fixes the labels berth owns and keeps the rest', () => {
    const desired = buildInitialNode({ nodeName: 'node-1', hostname: 'node-1', status });
    const arch = status.nodeInfo!.architecture;
    const existing = {
      metadata: {
        name: 'node-1',
        labels: { 'kubernetes.io/hostname': 'node-1', 'kubernetes.io/arch': 'wrong', team: 'a' },
        annotations: { other: 'x' },
      },
      spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] },
    };
    expect(computeAdoptionPatch(desired, existing)).toEqual({
      metadata: {
        labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': arch, 'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': arch },
        annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
      },
    });
    expect(computeAdoptionPatch(desired, desired)).toBeUndefined();
  });
});

describe('buildLease', () => {
  const id = { nodeName: 'node-1', leaseDurationSeconds: 40, nodeUid: undefined };
  it('a new Lease held by the node', () => {
    expect(buildLease(undefined, id, T0)).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'node-1', namespace: 'kube-node-lease' },
      spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40, renewTime: '2024-05-01T10:00:00.000000Z' },
    });
  });
  it('owner reference once the uid is known; replaced for a new incarnation of the Node; the base is not mutated', () => {
    const base = buildLease(undefined, id, T0);
    const owned = buildLease(base, { ...id, nodeUid: 'u1' }, T0 + 10_000);
    expect(base.metadata?.ownerReferences).toBeUndefined();
    expect(owned.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'u1' }]);
    expect(owned.spec?.renewTime).toBe('2024-05-01T10:00:10.000000Z');
    const again = buildLease(owned, { ...id, nodeUid: 'u1' }, T0 + 20_000);
    expect(again.metadata?.ownerReferences).toEqual(owned.metadata?.ownerReferences);
    const reborn = buildLease(owned, { ...id, nodeUid: 'u2' }, T0 + 30_000);
    expect(reborn.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'u2' }]);
  });
});
