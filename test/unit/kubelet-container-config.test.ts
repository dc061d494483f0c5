// Container and sandbox configs against pkg/kubelet/cm/helpers_linux.go (shares, quota), pkg/kubelet/qos/policy.go
// (OOM score), kuberuntime_container.go / labels.go (generateContainerConfig, annotations), kuberuntime_sandbox.go
// (generatePodSandboxConfig) and pkg/kubelet/network/dns/dns.go (GetPodDNS).
import { describe, expect, it } from 'vitest';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import { A, L } from '../../src/cri/index.ts';
import {
  buildContainerConfig,
  buildSandboxConfig,
  milliCPUToQuota,
  milliCPUToShares,
  oomScoreAdjust,
  podCgroupParent,
  type NodeFacts,
} from '../../src/kubelet/runtime/container-config.ts';
import { containerHash, type ContainerToStart } from '../../src/kubelet/pod/pod-actions.ts';
import { pod, spec } from './helpers/kubelet-fixtures.ts';

const GiB = 2 ** 30;
const NODE: NodeFacts = {
  nodeName: 'node-1',
  hostname: 'node-1.example',
  memoryCapacityBytes: 10 * GiB,
  clusterDNS: ['10.96.0.10'],
  clusterDomain: 'cluster.local',
  rootDir: '/var/lib/berth',
  podLogsDir: '/var/log/pods',
};
const res = (requests?: Record<string, string>, limits?: Record<string, string>): Partial<Container> => ({ resources: { requests, limits } });

describe('milliCPUToShares / milliCPUToQuota (helpers_linux.go)', () => {
  it.each([
    [0, 2],
    [1, 2],
    [2, 2],
    [100, 102],
    [250, 256],
    [1000, 1024],
    [1500, 1536],
    [256_000, 262_144],
    [300_000, 262_144],
  ])('shares(%i m) = %i', (m, shares) => {
    expect(milliCPUToShares(m)).toBe(shares);
  });

  it.each([
    [0, 0],
    [1, 1000],
    [5, 1000],
    [10, 1000],
    [100, 10_000],
    [250, 25_000],
    [1500, 150_000],
  ])('quota(%i m, period 100000) = %i', (m, quota) => {
    expect(milliCPUToQuota(m)).toBe(quota);
  });
});

describe('oomScoreAdjust (qos/policy.go)', () => {
  const oneContainer = (c: Partial<Container>, extra: Partial<Pod['spec']> = {}): [Pod, Container] => {
    const p = pod({ containers: [spec('app', c)], spec: extra });
    return [p, p.spec!.containers[0]!];
  };
  const cases: { name: string; c: Partial<Container>; extra?: Partial<Pod['spec']>; want: number }[] = [
    { name: 'Guaranteed', c: res({ cpu: '1', memory: '1Gi' }, { cpu: '1', memory: '1Gi' }), want: -997 },
    { name: 'BestEffort', c: {}, want: 1000 },
    { name: 'Burstable, no memory request → 1000 becomes 999', c: res({ cpu: '100m' }), want: 999 },
    { name: 'Burstable, 10% of memory → 900', c: res({ memory: '1Gi' }), want: 900 },
    { name: 'Burstable, 25% of memory → 750', c: res({ memory: '2560Mi' }), want: 750 },
    { name: 'Burstable, integer division truncates', c: res({ memory: `${Math.floor(0.3333 * 10 * GiB)}` }), want: 667 },
    { name: 'Burstable, all the memory → clamped to 3', c: res({ memory: '10Gi' }), want: 3 },
    { name: 'Burstable, more than the node → clamped to 3', c: res({ memory: '20Gi' }), want: 3 },
    { name: 'system-node-critical → -997', c: {}, extra: { priorityClassName: 'system-node-critical' }, want: -997 },
  ];
  it.each(cases)('$name', ({ c, extra, want }) => {
    const [p, ctr] = oneContainer(c, extra);
    expect(oomScoreAdjust(p, ctr, NODE.memoryCapacityBytes)).toBe(want);
  });
});

describe('podCgroupParent (cgroupfs naming)', () => {
  it.each([
    [res({ cpu: '1', memory: '1Gi' }, { cpu: '1', memory: '1Gi' }), '/kubepods/poduid-1'],
    [res({ cpu: '1' }), '/kubepods/burstable/poduid-1'],
    [{}, '/kubepods/besteffort/poduid-1'],
  ])('%j → %s', (c, parent) => {
    expect(podCgroupParent(pod({ containers: [spec('app', c)] }))).toBe(parent);
  });
});

describe('buildContainerConfig', () => {
  const build = (c: Container, o: { p?: Pod; start?: Partial<ContainerToStart>; envs?: { key: string; value: string }[]; volumes?: Map<string, string>; subPaths?: Map<number, string>; terminationMessageFile?: string } = {}) => {
    const p = o.p ?? pod({ containers: [c] });
    return buildContainerConfig({
      pod: p,
      start: { spec: c, kind: 'app', restartCount: 0, ...o.start },
      envs: o.envs ?? [],
      volumes: o.volumes ?? new Map(),
      subPaths: o.subPaths,
      node: NODE,
      terminationMessageFile: o.terminationMessageFile,
    });
  };

  it('expands $(VAR) in command and args from the environment; $$ escapes; unknown references stay', () => {
    const c = spec('app', { command: ['/bin/$(BIN)', '$(MISSING)'], args: ['--port=$(PORT)', '$$(PORT)', 'cost: $$5', '$(PORT'] });
    const cfg = build(c, { envs: [{ key: 'BIN', value: 'server' }, { key: 'PORT', value: '8080' }] });
    expect(cfg.command).toEqual(['/bin/server', '$(MISSING)']);
    expect(cfg.args).toEqual(['--port=8080', '$(PORT)', 'cost: $5', '$(PORT']);
  });

  it('passes envs through in order', () => {
    const envs = [
      { key: 'B', value: '2' },
      { key: 'A', value: '1' },
    ];
    expect(build(spec('app'), { envs }).envs).toEqual(envs);
  });

  it('mounts: host path from the volume map, prepared subPath target, readOnly, propagation; unknown volumes skipped', () => {
    const c = spec('app', {
      volumeMounts: [
        { name: 'data', mountPath: '/data' },
        { name: 'conf', mountPath: '/etc/app', subPath: 'app.d', readOnly: true },
        { name: 'shared', mountPath: '/mnt', mountPropagation: 'Bidirectional' },
        { name: 'host', mountPath: '/host', mountPropagation: 'HostToContainer' },
        { name: 'missing', mountPath: '/nope' },
      ],
    });
    const volumes = new Map([
      ['data', '/var/lib/berth/pods/uid-1/volumes/data'],
      ['conf', '/var/lib/berth/pods/uid-1/volumes/conf'],
      ['shared', '/srv/shared'],
      ['host', '/'],
    ]);
    const subPaths = new Map([[1, '/var/lib/berth/pods/uid-1/volume-subpaths/conf/app/1']]);
    expect(build(c, { volumes, subPaths, terminationMessageFile: '/var/lib/berth/pods/uid-1/containers/app/termination-log' }).mounts).toEqual([
      { containerPath: '/data', hostPath: '/var/lib/berth/pods/uid-1/volumes/data', readonly: false, propagation: 'private' },
      { containerPath: '/etc/app', hostPath: '/var/lib/berth/pods/uid-1/volume-subpaths/conf/app/1', readonly: true, propagation: 'private' },
      { containerPath: '/mnt', hostPath: '/srv/shared', readonly: false, propagation: 'rshared' },
      { containerPath: '/host', hostPath: '/', readonly: false, propagation: 'rslave' },
    ]);
  });

  it('mounts the termination message file at terminationMessagePath', () => {
    const c = spec('app', { terminationMessagePath: '/dev/termination-log' });
    expect(build(c, { terminationMessageFile: '/tmp/tm' }).mounts).toEqual([{ containerPath: '/dev/termination-log', hostPath: '/tmp/tm' }]);
  });

  it('annotations: spec hash, restart count, container type, grace period; back-off only when recorded', () => {
    const c = spec('app', { ports: [{ name: 'http', containerPort: 80 }] });
    const p = pod({ containers: [c], spec: { terminationGracePeriodSeconds: 45 } });
    const first = build(c, { p, start: { restartCount: 0 } });
    expect(first.annotations).toMatchObject({
      [A.containerHash]: containerHash(c),
      [A.restartCount]: '0',
      [A.containerType]: 'app',
      [A.terminationGracePeriod]: '45',
      [A.containerPorts]: JSON.stringify([{ name: 'http', containerPort: 80, protocol: 'TCP' }]),
    });
    expect(first.annotations[A.backoffMs]).toBeUndefined();
    const again = build(c, { p, start: { restartCount: 4, kind: 'init', backoff: { durationMs: 40_000, updatedAt: 1_700_000_000_000 } } });
    expect(again.annotations).toMatchObject({
      [A.restartCount]: '4',
      [A.containerType]: 'init',
      [A.backoffMs]: '40000',
      [A.backoffUpdatedAt]: '1700000000000',
    });
    expect(again.metadata).toEqual({ name: 'app', attempt: 4 });
    expect(again.logPath).toBe('app/4.log');
  });

  it('labels: pod labels plus the io.kubernetes identity labels and the node', () => {
    const p = pod();
    p.metadata!.labels = { app: 'web' };
    expect(build(p.spec!.containers[0]!, { p }).labels).toEqual({
      app: 'web',
      [L.node]: 'node-1',
      [L.podName]: 'web',
      [L.podNamespace]: 'default',
      [L.podUid]: 'uid-1',
      [L.containerName]: 'app',
    });
  });

  it('resources: shares from the request (or the limit), quota and memory from the limits, OOM score', () => {
    const burst = spec('app', res({ cpu: '250m', memory: '1Gi' }, { cpu: '1500m', memory: '2Gi' }));
    expect(build(burst).linux?.resources).toEqual({
      cpuShares: 256,
      cpuQuota: 150_000,
      cpuPeriod: 100_000,
      memoryLimitInBytes: 2 * GiB,
      oomScoreAdj: 900,
    });
    const limitOnly = spec('app', res(undefined, { cpu: '500m' }));
    expect(build(limitOnly).linux?.resources?.cpuShares).toBe(512);
    const none = build(spec('app')).linux?.resources;
    expect(none).toMatchObject({ cpuShares: 2, oomScoreAdj: 1000 });
    expect(none?.cpuQuota).toBeUndefined();
    expect(none?.memoryLimitInBytes).toBeUndefined();
  });

  it('security context: container settings win over the pod ones', () => {
    const c = spec('app', { securityContext: { runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } } });
    const p = pod({ containers: [c], spec: { securityContext: { runAsUser: 0, runAsGroup: 2000, supplementalGroups: [3000] } } });
    expect(build(c, { p }).linux?.securityContext).toMatchObject({
      runAsUser: 1000,
      runAsGroup: 2000,
      supplementalGroups: [3000],
      readonlyRootfs: true,
      noNewPrivs: true,
      privileged: false,
      capabilities: { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'] },
      namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
    });
  });
});

describe('buildSandboxConfig', () => {
  it('pod network: hostPort mappings only for ports with a hostPort, name/uid/attempt metadata, log directory, cgroup', () => {
    const p = pod({
      containers: [
        spec('app', { ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 9090 }] }),
        spec('dns', { ports: [{ containerPort: 53, hostPort: 5353, protocol: 'UDP', hostIP: '127.0.0.1' }] }),
      ],
    });
    const cfg = buildSandboxConfig(p, 3, NODE);
    expect(cfg.metadata).toEqual({ name: 'web', namespace: 'default', uid: 'uid-1', attempt: 3 });
    expect(cfg.portMappings).toEqual([
      { protocol: 'TCP', containerPort: 80, hostPort: 8080, hostIp: undefined },
      { protocol: 'UDP', containerPort: 53, hostPort: 5353, hostIp: '127.0.0.1' },
    ]);
    expect(cfg.hostname).toBe('web');
    expect(cfg.logDirectory).toBe('/var/log/pods/default_web_uid-1');
    expect(cfg.labels[L.containerName]).toBe('POD');
    expect(cfg.linux?.cgroupParent).toBe('/kubepods/besteffort/poduid-1');
    expect(cfg.linux?.securityContext?.namespaceOptions).toEqual({ network: 'POD', pid: 'CONTAINER', ipc: 'POD' });
  });

  it('hostNetwork: NODE network namespace and the node hostname', () => {
    const cfg = buildSandboxConfig(pod({ hostNetwork: true }), 0, NODE);
    expect(cfg.linux?.securityContext?.namespaceOptions?.network).toBe('NODE');
    expect(cfg.hostname).toBe('node-1.example');
  });

  it('hostname: spec.hostname wins; long pod names are cut to 63 characters without a trailing dash', () => {
    expect(buildSandboxConfig(pod({ spec: { hostname: 'box' } }), 0, NODE).hostname).toBe('box');
    const long = `${'a'.repeat(62)}-bbbb`;
    expect(buildSandboxConfig(pod({ name: long }), 0, NODE).hostname).toBe('a'.repeat(62));
  });

  it('DNS ClusterFirst with cluster DNS: cluster server, <ns>.svc / svc / domain searches, ndots:5', () => {
    const cfg = buildSandboxConfig(pod({ namespace: 'shop' }), 0, NODE);
    expect(cfg.dnsConfig).toEqual({
      servers: ['10.96.0.10'],
      searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      options: ['ndots:5'],
    });
  });

  it('DNS ClusterFirst without cluster DNS falls back to Default (the host resolv.conf)', () => {
    expect(buildSandboxConfig(pod(), 0, { ...NODE, clusterDNS: [] }).dnsConfig).toBeUndefined();
  });

  it('DNS: hostNetwork + ClusterFirst → Default; ClusterFirstWithHostNet → cluster DNS', () => {
    expect(buildSandboxConfig(pod({ hostNetwork: true }), 0, NODE).dnsConfig).toBeUndefined();
    const cfg = buildSandboxConfig(pod({ hostNetwork: true, spec: { dnsPolicy: 'ClusterFirstWithHostNet' } }), 0, NODE);
    expect(cfg.dnsConfig?.servers).toEqual(['10.96.0.10']);
  });

  it('DNS None: exactly the pod dnsConfig', () => {
    const cfg = buildSandboxConfig(
      pod({ spec: { dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'], searches: ['corp.example'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } } }),
      0,
      NODE,
    );
    expect(cfg.dnsConfig).toEqual({ servers: ['1.1.1.1'], searches: ['corp.example'], options: ['ndots:2', 'edns0'] });
  });

  it('DNS ClusterFirst + pod dnsConfig: servers/searches appended without duplicates, options merged by name', () => {
    const cfg = buildSandboxConfig(
      pod({ spec: { dnsConfig: { nameservers: ['10.96.0.10', '8.8.8.8'], searches: ['corp.example', 'cluster.local'], options: [{ name: 'ndots', value: '2' }] } } }),
      0,
      NODE,
    );
    expect(cfg.dnsConfig?.servers).toEqual(['10.96.0.10', '8.8.8.8']);
    expect(cfg.dnsConfig?.searches).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example']);
    // dns.go mergeDNSOptions: an option given in the pod's dnsConfig replaces the one of the same name.
    expect(cfg.dnsConfig?.options).toEqual(['ndots:2']);
  });

  it('sysctls and pid/ipc namespaces', () => {
    const cfg = buildSandboxConfig(pod({ spec: { shareProcessNamespace: true, hostIPC: true, securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '1024' }] } } }), 0, NODE);
    expect(cfg.linux?.sysctls).toEqual({ 'net.core.somaxconn': '1024' });
    expect(cfg.linux?.securityContext?.namespaceOptions).toMatchObject({ pid: 'POD', ipc: 'NODE' });
  });
});
