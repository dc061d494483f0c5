import { describe, expect, it } from 'vitest';
import {
  type DockerContainerInspect,
  buildContainerCreateOptions,
  buildContainerListFilters,
  buildEntrypointAndCmd,
  buildMountBinding,
  buildPortBindings,
  buildSandboxCreateOptions,
  buildSandboxListFilters,
  buildUser,
  filterContainers,
  parseConflictContainerId,
  parseDockerTime,
  parseUnknownCapability,
  toContainer,
  toContainerState,
  toContainerStatus,
  toImage,
  toPodSandbox,
  toPodSandboxStatus,
  toRuntimeEvent,
  withoutCaps,
} from '../../src/cri/docker/convert.ts';
import { FULL_HOST_CAPS, computeHostCaps } from '../../src/cri/docker/host-caps.ts';
import type { ContainerConfig, PodSandboxConfig } from '../../src/cri/types.ts';

const LIMITED = computeHostCaps({ capBnd: [...Array(41).keys()].filter((b) => b !== 24), capLastCap: 40, oomScoreAdj: 0 });
const LOG = { maxSize: '10m', maxFiles: 5 };

function sandboxConfig(over: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'uid-1', attempt: 2 },
    hostname: 'web',
    logDirectory: '/var/log/pods/default_web_uid-1',
    portMappings: [],
    labels: { app: 'web' },
    annotations: { 'kubernetes.io/config.source': 'api' },
    ...over,
  };
}

function containerConfig(over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    metadata: { name: 'nginx', attempt: 1 },
    image: 'nginx:1.25',
    command: [],
    args: [],
    envs: [],
    mounts: [],
    labels: { 'io.kubernetes.container.name': 'nginx' },
    annotations: { 'io.kubernetes.container.hash': 'abc' },
    ...over,
  };
}

describe('buildEntrypointAndCmd (Kubernetes command/args over ENTRYPOINT/CMD)', () => {
  it.each([
    [[], [], {}],
    [[], ['a', 'b'], { Cmd: ['a', 'b'] }],
    [['echo'], [], { Entrypoint: ['echo'] }],
    [['echo'], ['x'], { Entrypoint: ['echo'], Cmd: ['x'] }],
  ])('command %j args %j', (command, args, want) => {
    expect(buildEntrypointAndCmd(command, args)).toEqual(want);
  });
});

describe('small builders', () => {
  it.each([
    [{ hostPath: '/h', containerPath: '/c' }, '/h:/c'],
    [{ hostPath: '/h', containerPath: '/c', readonly: true }, '/h:/c:ro'],
    [{ hostPath: '/h', containerPath: '/c', propagation: 'rslave' as const }, '/h:/c:rslave'],
    [{ hostPath: '/h', containerPath: '/c', readonly: true, propagation: 'rshared' as const }, '/h:/c:ro,rshared'],
    [{ hostPath: '/h', containerPath: '/c', propagation: 'private' as const }, '/h:/c'],
  ])('mount %j -> %s', (m, want) => {
    expect(buildMountBinding(m)).toBe(want);
  });

  it.each([
    [undefined, undefined],
    [{}, undefined],
    [{ runAsUser: 0 }, '0'],
    [{ runAsUser: 1000, runAsGroup: 2000 }, '1000:2000'],
    [{ runAsUsername: 'nobody' }, 'nobody'],
  ])('user %j -> %s', (sc, want) => {
    expect(buildUser(sc)).toBe(want);
  });

  it('rejects runAsGroup without a user', () => {
    expect(() => buildUser({ runAsGroup: 1 })).toThrow(/runAsGroup/);
  });

  it('publishes only mappings with a host port', () => {
    expect(
      buildPortBindings([
        { protocol: 'TCP', containerPort: 80, hostPort: 8080 },
        { protocol: 'UDP', containerPort: 53, hostPort: 5353, hostIp: '127.0.0.1' },
        { protocol: 'TCP', containerPort: 80, hostPort: 8081 },
        { protocol: 'TCP', containerPort: 9000, hostPort: 0 },
      ]),
    ).toEqual({
      exposedPorts: { '80/tcp': {}, '53/udp': {} },
      portBindings: {
        '80/tcp': [
          { HostIp: '', HostPort: '8080' },
          { HostIp: '', HostPort: '8081' },
        ],
        '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
      },
    });
  });
});

describe('buildSandboxCreateOptions', () => {
  it('follows cri-dockerd: labels, name, bridge network, shareable IPC, clamped OOM score', () => {
    const o = buildSandboxCreateOptions({
      config: sandboxConfig({
        dnsConfig: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
        portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 30080 }],
        linux: { cgroupParent: '/kubepods/besteffort/poduid-1', sysctls: { 'net.ipv4.ip_forward': '1' } },
      }),
      image: 'berth.local/pause:3.9',
      hostCaps: LIMITED,
      log: LOG,
    });
    expect(o.name).toBe('k8s_POD_web_default_uid-1_2');
    expect(o.Image).toBe('berth.local/pause:3.9');
    expect(o.Hostname).toBe('web');
    expect(o.Labels).toMatchObject({
      app: 'web',
      'annotation.kubernetes.io/config.source': 'api',
      'io.kubernetes.docker.type': 'podsandbox',
      'io.kubernetes.container.name': 'POD',
      'io.kubernetes.pod.name': 'web',
      'io.kubernetes.pod.namespace': 'default',
      'io.kubernetes.pod.uid': 'uid-1',
      'io.berth.managed-by': 'berth',
    });
    expect(o.ExposedPorts).toEqual({ '80/tcp': {} });
    expect(o.HostConfig).toMatchObject({
      NetworkMode: 'default',
      IpcMode: 'shareable',
      OomScoreAdj: 0,
      CpuShares: 2,
      RestartPolicy: { Name: 'no' },
      CgroupParent: '/kubepods/besteffort/poduid-1',
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      Dns: ['10.96.0.10'],
      DnsSearch: ['default.svc.cluster.local'],
      DnsOptions: ['ndots:5'],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '5' } },
      SecurityOpt: ['no-new-privileges'],
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '30080' }] },
    });
    expect(o.HostConfig.PidMode).toBeUndefined();
    expect(o.HostConfig.Privileged).toBeUndefined();
  });

  it('uses the host namespaces for NODE and keeps -998 where allowed', () => {
    const o = buildSandboxCreateOptions({
      config: sandboxConfig({
        portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 80 }],
        linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } },
      }),
      image: 'p',
      hostCaps: FULL_HOST_CAPS,
      log: LOG,
    });
    expect(o.HostConfig).toMatchObject({ NetworkMode: 'host', PidMode: 'host', IpcMode: 'host', OomScoreAdj: -998 });
    expect(o.HostConfig.PortBindings).toBeUndefined();
    expect(o.ExposedPorts).toBeUndefined();
  });

  it('expresses a privileged sandbox without Privileged on a limited host', () => {
    const o = buildSandboxCreateOptions({
      config: sandboxConfig({ linux: { securityContext: { privileged: true } } }),
      image: 'p',
      hostCaps: LIMITED,
      log: LOG,
    });
    expect(o.HostConfig.Privileged).toBeUndefined();
    expect(o.HostConfig.CapAdd).toHaveLength(40);
    expect(o.HostConfig.SecurityOpt).toEqual(['no-new-privileges', 'seccomp=unconfined', 'apparmor=unconfined']);
    expect(o.HostConfig.MaskedPaths).toEqual([]);
    expect(o.HostConfig.ReadonlyPaths).toEqual([]);
  });
});

describe('buildContainerCreateOptions', () => {
  const base = { podSandboxId: 'sb1', sandboxConfig: sandboxConfig(), hostCaps: LIMITED, log: LOG };

  it('joins the sandbox namespaces and carries labels, env, mounts, resources, security', () => {
    const o = buildContainerCreateOptions({
      ...base,
      cgroupParent: '/kubepods/poduid-1',
      config: containerConfig({
        command: ['nginx'],
        args: ['-g', 'daemon off;'],
        envs: [{ key: 'A', value: '1' }],
        workingDir: '/srv',
        mounts: [{ hostPath: '/data', containerPath: '/data', readonly: true }],
        logPath: 'nginx/1.log',
        tty: true,
        stdin: true,
        stdinOnce: true,
        stopSignal: 'SIGQUIT',
        linux: {
          resources: { cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000, memoryLimitInBytes: 64 << 20, oomScoreAdj: -997 },
          securityContext: {
            runAsUser: 101,
            runAsGroup: 101,
            supplementalGroups: [5, 6],
            readonlyRootfs: true,
            noNewPrivs: true,
            capabilities: { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'] },
          },
        },
      }),
    });
    expect(o.name).toBe('k8s_nginx_web_default_uid-1_1');
    expect(o.Entrypoint).toEqual(['nginx']);
    expect(o.Cmd).toEqual(['-g', 'daemon off;']);
    expect(o.Env).toEqual(['A=1']);
    expect(o.WorkingDir).toBe('/srv');
    expect(o.User).toBe('101:101');
    expect(o).toMatchObject({ Tty: true, OpenStdin: true, StdinOnce: true, StopSignal: 'SIGQUIT', Healthcheck: { Test: ['NONE'] } });
    expect(o.Labels).toMatchObject({
      'io.kubernetes.container.name': 'nginx',
      'io.kubernetes.docker.type': 'container',
      'io.kubernetes.sandbox.id': 'sb1',
      'io.kubernetes.pod.name': 'web',
      'io.kubernetes.pod.namespace': 'default',
      'io.kubernetes.pod.uid': 'uid-1',
      'io.kubernetes.container.logpath': '/var/log/pods/default_web_uid-1/nginx/1.log',
      'annotation.io.kubernetes.container.hash': 'abc',
      'io.berth.managed-by': 'berth',
    });
    expect(o.HostConfig).toMatchObject({
      NetworkMode: 'container:sb1',
      IpcMode: 'container:sb1',
      CgroupParent: '/kubepods/poduid-1',
      Binds: ['/data:/data:ro'],
      Memory: 64 << 20,
      MemorySwap: 64 << 20,
      CpuShares: 512,
      CpuQuota: 50000,
      CpuPeriod: 100000,
      OomScoreAdj: 0,
      GroupAdd: ['5', '6'],
      ReadonlyRootfs: true,
      CapAdd: ['NET_ADMIN'],
      CapDrop: ['ALL'],
      SecurityOpt: ['seccomp=unconfined', 'no-new-privileges'],
      RestartPolicy: { Name: 'no' },
    });
    expect(o.HostConfig.PidMode).toBeUndefined();
    expect(o.HostConfig.UTSMode).toBeUndefined();
  });

  it.each([
    [undefined, undefined],
    ['CONTAINER' as const, undefined],
    ['POD' as const, 'container:sb1'],
    ['NODE' as const, 'host'],
  ])('pid namespace %s -> PidMode %s', (pid, want) => {
    const o = buildContainerCreateOptions({
      ...base,
      config: containerConfig({ linux: { securityContext: pid ? { namespaceOptions: { pid } } : {} } }),
    });
    expect(o.HostConfig.PidMode).toBe(want);
  });

  it('shares the host UTS namespace with host networking', () => {
    const o = buildContainerCreateOptions({
      ...base,
      config: containerConfig({ linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } }),
    });
    expect(o.HostConfig.UTSMode).toBe('host');
    expect(o.HostConfig.NetworkMode).toBe('container:sb1');
  });

  it('leaves ENTRYPOINT/CMD to the image and omits the log path label without a log directory', () => {
    const o = buildContainerCreateOptions({ ...base, sandboxConfig: sandboxConfig({ logDirectory: undefined }), config: containerConfig() });
    expect(o.Entrypoint).toBeUndefined();
    expect(o.Cmd).toBeUndefined();
    expect(o.Env).toBeUndefined();
    expect(o.Labels['io.kubernetes.container.logpath']).toBeUndefined();
  });

  it('privileged: Privileged on a full host, adapted on a limited one', () => {
    const cfg = containerConfig({ linux: { securityContext: { privileged: true, capabilities: { dropCapabilities: ['NET_RAW'] } } } });
    const full = buildContainerCreateOptions({ ...base, hostCaps: FULL_HOST_CAPS, config: cfg });
    expect(full.HostConfig.Privileged).toBe(true);
    const limited = buildContainerCreateOptions({ ...base, config: cfg });
    expect(limited.HostConfig.Privileged).toBeUndefined();
    expect(limited.HostConfig.CapDrop).toBeUndefined();
    expect(limited.HostConfig.CapAdd).toContain('CAP_SYS_ADMIN');
    expect(limited.HostConfig.SecurityOpt).toEqual(['seccomp=unconfined', 'apparmor=unconfined']);
    expect(limited.HostConfig.DeviceCgroupRules).toEqual(['a *:* rwm']);
  });

  it('withoutCaps drops capabilities the daemon rejected, in either spelling', () => {
    const o = buildContainerCreateOptions({ ...base, config: containerConfig({ linux: { securityContext: { privileged: true } } }) });
    const trimmed = withoutCaps(o, new Set(['CAP_BPF', 'CAP_PERFMON']));
    expect(trimmed.HostConfig.CapAdd).not.toContain('CAP_BPF');
    expect(trimmed.HostConfig.CapAdd).toHaveLength(38);
    expect(withoutCaps({ ...o, HostConfig: { CapAdd: ['bpf', 'NET_ADMIN'] } }, new Set(['CAP_BPF'])).HostConfig.CapAdd).toEqual(['NET_ADMIN']);
  });
});

describe('error parsing', () => {
  it('finds the capability Docker does not know', () => {
    expect(parseUnknownCapability('invalid CapAdd: unknown capability: "CAP_BPF"')).toBe('CAP_BPF');
    expect(parseUnknownCapability('something else')).toBeUndefined();
  });

  it('finds the container holding a name', () => {
    const msg =
      'Conflict. The container name "/k8s_c_p_ns_uid_0" is already in use by container "0123abcd". You have to remove (or rename) that container to be able to reuse that name.';
    expect(parseConflictContainerId(msg)).toBe('0123abcd');
    expect(parseConflictContainerId('Conflict. something')).toBeUndefined();
  });
});

describe('states and times', () => {
  it.each([
    ['running', 'CONTAINER_RUNNING'],
    ['paused', 'CONTAINER_RUNNING'],
    ['created', 'CONTAINER_CREATED'],
    ['exited', 'CONTAINER_EXITED'],
    ['dead', 'CONTAINER_EXITED'],
    ['restarting', 'CONTAINER_UNKNOWN'],
    ['removing', 'CONTAINER_UNKNOWN'],
  ])('%s -> %s', (s, want) => {
    expect(toContainerState(s)).toBe(want);
  });

  it.each([
    ['0001-01-01T00:00:00Z', 0],
    ['', 0],
    [undefined, 0],
    ['garbage', 0],
    ['2024-05-01T10:00:00.123456789Z', Date.UTC(2024, 4, 1, 10, 0, 0, 123)],
  ])('time %j -> %i', (s, want) => {
    expect(parseDockerTime(s)).toBe(want);
  });
});

describe('toContainerStatus (cri-dockerd reasons)', () => {
  const created = '2024-05-01T10:00:00Z';
  const started = '2024-05-01T10:00:01Z';
  const finished = '2024-05-01T10:00:02Z';
  const zero = '0001-01-01T00:00:00Z';
  function inspect(state: NonNullable<DockerContainerInspect['State']>): DockerContainerInspect {
    return {
      Id: 'c1',
      Name: '/k8s_app_web_default_uid-1_3',
      Created: created,
      Image: 'sha256:img',
      State: state,
      Config: {
        Image: 'busybox',
        Labels: {
          'io.kubernetes.container.name': 'app',
          'io.kubernetes.sandbox.id': 'sb1',
          'io.kubernetes.docker.type': 'container',
          'io.kubernetes.container.logpath': '/var/log/pods/x/app/3.log',
          'annotation.io.kubernetes.container.hash': 'h',
          app: 'web',
        },
      },
      Mounts: [{ Source: '/h', Destination: '/c', RW: false, Propagation: 'rslave' }],
    };
  }

  it.each([
    ['running', { Running: true, Pid: 42, StartedAt: started, FinishedAt: zero }, 'CONTAINER_RUNNING', '', 0],
    ['completed', { ExitCode: 0, StartedAt: started, FinishedAt: finished }, 'CONTAINER_EXITED', 'Completed', 0],
    ['error', { ExitCode: 3, StartedAt: started, FinishedAt: finished }, 'CONTAINER_EXITED', 'Error', 3],
    ['oom', { ExitCode: 137, OOMKilled: true, StartedAt: started, FinishedAt: finished }, 'CONTAINER_EXITED', 'OOMKilled', 137],
    ['cannot run', { ExitCode: 127, Error: 'exec: "x": not found', StartedAt: zero, FinishedAt: zero }, 'CONTAINER_EXITED', 'ContainerCannotRun', 127],
    ['created', { ExitCode: 0, StartedAt: zero, FinishedAt: zero }, 'CONTAINER_CREATED', '', 0],
  ])('%s', (_name, state, wantState, wantReason, wantCode) => {
    const s = toContainerStatus(inspect(state));
    expect(s.state).toBe(wantState);
    expect(s.reason).toBe(wantReason);
    expect(s.exitCode).toBe(wantCode);
  });

  it('maps times, metadata, labels, mounts and pid', () => {
    const s = toContainerStatus(inspect({ Running: true, Pid: 42, StartedAt: started, FinishedAt: zero }));
    expect(s).toMatchObject({
      id: 'c1',
      podSandboxId: 'sb1',
      metadata: { name: 'app', attempt: 3 },
      image: 'busybox',
      imageRef: 'sha256:img',
      createdAt: Date.parse(created),
      startedAt: Date.parse(started),
      finishedAt: 0,
      pid: 42,
      logPath: '/var/log/pods/x/app/3.log',
      labels: { 'io.kubernetes.container.name': 'app', app: 'web' },
      annotations: { 'io.kubernetes.container.hash': 'h' },
      mounts: [{ hostPath: '/h', containerPath: '/c', readonly: true, propagation: 'rslave' }],
    });
    expect(s.labels['io.kubernetes.docker.type']).toBeUndefined();
    expect(s.labels['io.kubernetes.sandbox.id']).toBeUndefined();
  });

  it('dates a start failure at creation and carries the message', () => {
    const s = toContainerStatus(inspect({ ExitCode: 127, Error: 'boom', StartedAt: zero, FinishedAt: zero }));
    expect(s.startedAt).toBe(Date.parse(created));
    expect(s.finishedAt).toBe(Date.parse(created));
    expect(s.message).toBe('boom');
    expect(s.pid).toBe(0);
  });
});

describe('sandbox status and lists', () => {
  it('reports the bridge IP, or none with host networking', () => {
    const r: DockerContainerInspect = {
      Id: 's1',
      Name: '/k8s_POD_web_default_uid-1_0',
      Created: '2024-05-01T10:00:00Z',
      State: { Running: true },
      Config: { Labels: { 'io.kubernetes.docker.type': 'podsandbox', 'io.kubernetes.container.name': 'POD', app: 'web' } },
      HostConfig: { NetworkMode: 'default', IpcMode: 'shareable' },
      NetworkSettings: { IPAddress: '172.17.0.5', Networks: { bridge: { IPAddress: '172.17.0.5' } } },
    };
    const s = toPodSandboxStatus(r);
    expect(s.state).toBe('SANDBOX_READY');
    expect(s.network).toEqual({ ip: '172.17.0.5', additionalIps: [] });
    expect(s.metadata).toEqual({ name: 'web', namespace: 'default', uid: 'uid-1', attempt: 0 });
    expect(s.labels).toEqual({ app: 'web' });
    expect(s.linux?.namespaces).toEqual({ network: 'POD', pid: 'CONTAINER', ipc: 'POD' });
    const host = toPodSandboxStatus({ ...r, State: { Running: false }, HostConfig: { NetworkMode: 'host', PidMode: 'host', IpcMode: 'host' } });
    expect(host.state).toBe('SANDBOX_NOTREADY');
    expect(host.network.ip).toBeUndefined();
    expect(host.linux?.namespaces).toEqual({ network: 'NODE', pid: 'NODE', ipc: 'NODE' });
  });

  it('maps docker ps entries', () => {
    const sb = toPodSandbox({
      Id: 's1',
      Names: ['/k8s_POD_web_default_uid-1_4'],
      Created: 1700000000,
      State: 'exited',
      Labels: { 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': 'uid-1' },
    });
    expect(sb).toMatchObject({ id: 's1', state: 'SANDBOX_NOTREADY', createdAt: 1700000000000, metadata: { attempt: 4, name: 'web' } });
    const c = toContainer({
      Id: 'c1',
      Names: ['/k8s_app_web_default_uid-1_2'],
      Image: 'busybox',
      ImageID: 'sha256:x',
      Created: 1700000001,
      State: 'running',
      Labels: { 'io.kubernetes.sandbox.id': 's1', 'io.kubernetes.container.name': 'app' },
    });
    expect(c).toMatchObject({ id: 'c1', podSandboxId: 's1', state: 'CONTAINER_RUNNING', metadata: { name: 'app', attempt: 2 }, imageRef: 'sha256:x' });
    expect(filterContainers([c], { state: 'CONTAINER_EXITED' })).toEqual([]);
    expect(filterContainers([c], { id: 'c' })).toEqual([c]);
  });

  it('builds label filters for one docker ps call', () => {
    expect(buildSandboxListFilters({ id: 'ab', labelSelector: { app: 'web' } })).toEqual({
      label: ['io.kubernetes.docker.type=podsandbox', 'app=web'],
      id: ['ab'],
    });
    expect(buildContainerListFilters({ podSandboxId: 's1' })).toEqual({
      label: ['io.kubernetes.docker.type=container', 'io.kubernetes.sandbox.id=s1'],
    });
  });
});

describe('events and images', () => {
  it.each([
    ['create', 'created'],
    ['start', 'started'],
    ['die', 'stopped'],
    ['destroy', 'deleted'],
  ])('%s -> %s', (action, type) => {
    expect(
      toRuntimeEvent({ Type: 'container', Action: action, Actor: { ID: 'c1', Attributes: { 'io.kubernetes.pod.uid': 'u' } }, timeNano: 1_700_000_000_123_456_789 }),
    ).toEqual({ containerId: 'c1', type, podUid: 'u', time: 1_700_000_000_123 });
  });

  it('ignores other events', () => {
    expect(toRuntimeEvent({ Type: 'container', Action: 'kill', Actor: { ID: 'c1' } })).toBeUndefined();
    expect(toRuntimeEvent({ Type: 'network', Action: 'create', Actor: { ID: 'n1' } })).toBeUndefined();
  });

  it('maps image config', () => {
    expect(
      toImage({ Id: 'sha256:i', RepoTags: ['a:1', '<none>:<none>'], RepoDigests: [], Size: 10, Config: { StopSignal: 'SIGUSR1', User: '101' } }),
    ).toEqual({ id: 'sha256:i', repoTags: ['a:1'], repoDigests: [], sizeBytes: 10, stopSignal: 'SIGUSR1', user: '101', uid: 101 });
  });
});
