// Pure translation between CRI shapes and Docker Engine API shapes, following cri-dockerd
// (core/sandbox_helpers.go makeSandboxDockerConfig, core/container_create.go, core/security_context.go,
// core/helpers_linux.go updateCreateConfig, core/container_status.go, core/convert.go, libdocker/helpers.go).
// No I/O here: DockerRuntime fetches, these functions decide.
import type {
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerState,
  ContainerStatus,
  Image,
  Labels,
  Mount,
  NamespaceMode,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxMetadata,
  PodSandboxState,
  PodSandboxStatus,
  PortMapping,
  RuntimeEvent,
  LinuxContainerSecurityContext,
} from '../types.ts';
import {
  DOCKER_TYPE_CONTAINER,
  DOCKER_TYPE_SANDBOX,
  L,
  SANDBOX_CONTAINER_NAME,
  containerName,
  fromDockerLabels,
  parseName,
  sandboxName,
  toDockerLabels,
} from '../labels.ts';
import { type HostCaps, buildPrivilegedSettings, clampOomScoreAdj } from './host-caps.ts';

/** cri-dockerd's defaultSandboxOOMAdj and defaultSandboxCPUshares. */
export const SANDBOX_OOM_SCORE_ADJ = -998;
export const SANDBOX_CPU_SHARES = 2;
export const MANAGED_BY_VALUE = 'berth';

/** Labels cri-dockerd adds for itself and strips before handing labels back to the kubelet. */
const INTERNAL_LABELS = new Set<string>([L.dockerType, L.sandboxId, L.containerLogPath]);

// ---- Docker-side shapes (only the fields berth reads or writes) ----

export interface DockerHostConfig {
  NetworkMode?: string;
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  Binds?: string[];
  PortBindings?: Record<string, { HostIp: string; HostPort: string }[]>;
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  CgroupParent?: string;
  Sysctls?: Record<string, string>;
  OomScoreAdj?: number;
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  Memory?: number;
  MemorySwap?: number;
  RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  LogConfig?: { Type: string; Config: Record<string, string> };
  SecurityOpt?: string[];
  CapAdd?: string[];
  CapDrop?: string[];
  GroupAdd?: string[];
  ReadonlyRootfs?: boolean;
  Privileged?: boolean;
  DeviceCgroupRules?: string[];
  MaskedPaths?: string[];
  ReadonlyPaths?: string[];
}

export interface DockerCreateOptions {
  name: string;
  Hostname?: string;
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  StopSignal?: string;
  Healthcheck?: { Test: string[] };
  HostConfig: DockerHostConfig;
}

/** An entry of `GET /containers/json` (docker ps -a). */
export interface DockerContainerSummary {
  Id: string;
  Names?: string[];
  Image?: string;
  ImageID?: string;
  Created?: number;
  Labels?: Record<string, string> | null;
  State?: string;
}

/** The parts of `GET /containers/{id}/json` berth reads. */
export interface DockerContainerInspect {
  Id: string;
  Name?: string;
  Created?: string;
  Image?: string;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    OOMKilled?: boolean;
    Pid?: number;
    ExitCode?: number;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
  };
  Config?: { Image?: string; Labels?: Record<string, string> | null; Hostname?: string };
  HostConfig?: { NetworkMode?: string; PidMode?: string; IpcMode?: string; CgroupParent?: string };
  NetworkSettings?: {
    IPAddress?: string;
    GlobalIPv6Address?: string;
    Networks?: Record<string, { IPAddress?: string; GlobalIPv6Address?: string } | undefined> | null;
  } | null;
  Mounts?: { Source?: string; Destination?: string; RW?: boolean; Propagation?: string }[] | null;
  LogPath?: string;
}

export interface DockerImageInspect {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Size?: number;
  Config?: { StopSignal?: string; User?: string } | null;
}

export interface DockerImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Size?: number;
}

export interface DockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

// ---- create ----

function managedLabels(extra: Record<string, string>, meta: PodSandboxMetadata): Record<string, string> {
  return {
    [L.podName]: meta.name,
    [L.podNamespace]: meta.namespace,
    [L.podUid]: meta.uid,
    ...extra,
    [L.managedBy]: MANAGED_BY_VALUE,
  };
}

/** libdocker.MakePortsAndBindings: only mappings with a host port are published. */
export function buildPortBindings(mappings: PortMapping[]): {
  exposedPorts: Record<string, Record<string, never>>;
  portBindings: Record<string, { HostIp: string; HostPort: string }[]>;
} {
  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const pm of mappings) {
    if (!pm.hostPort) continue;
    const key = `${pm.containerPort}/${(pm.protocol ?? 'TCP').toLowerCase()}`;
    exposedPorts[key] = {};
    (portBindings[key] ??= []).push({ HostIp: pm.hostIp ?? '', HostPort: String(pm.hostPort) });
  }
  return { exposedPorts, portBindings };
}

/** "<host>:<container>[:ro][,rslave|rshared]" (libdocker.GenerateMountBindings). */
export function buildMountBinding(m: Mount): string {
  const attrs: string[] = [];
  if (m.readonly) attrs.push('ro');
  if (m.propagation === 'rshared' || m.propagation === 'rslave') attrs.push(m.propagation);
  const bind = `${m.hostPath}:${m.containerPath}`;
  return attrs.length ? `${bind}:${attrs.join(',')}` : bind;
}

/**
 * cri-dockerd getSeccompDockerOpts / getAppArmorOpts: Unconfined (or unset) → `seccomp=unconfined`,
 * RuntimeDefault → Docker's default profile (no option), Localhost → the profile's JSON inline.
 * AppArmor: `apparmor=<name>` for localhost/<name>; runtime/default is Docker's default.
 */
export function buildSeccompAndAppArmorOpts(sc: LinuxContainerSecurityContext, seccompProfileJson?: string): string[] {
  const out: string[] = [];
  const p = sc.seccomp;
  if (!p || p.profileType === 'Unconfined') out.push('seccomp=unconfined');
  else if (p.profileType === 'Localhost') {
    if (seccompProfileJson === undefined) throw new Error(`cannot load seccomp profile ${JSON.stringify(p.localhostRef)}: not read`);
    out.push(`seccomp=${seccompProfileJson}`);
  }
  if (sc.apparmorProfile?.startsWith('localhost/')) out.push(`apparmor=${sc.apparmorProfile.slice('localhost/'.length)}`);
  return out;
}

/** security_context.go modifyContainerConfig: runAsUser[:runAsGroup], or the user name. */
export function buildUser(sc: LinuxContainerSecurityContext | undefined): string | undefined {
  if (!sc) return undefined;
  let user = sc.runAsUser !== undefined ? String(sc.runAsUser) : undefined;
  if (sc.runAsUsername) user = sc.runAsUsername;
  if (sc.runAsGroup !== undefined) {
    if (user === undefined) throw new Error('runAsGroup is specified without a runAsUser');
    user = `${user}:${sc.runAsGroup}`;
  }
  return user;
}

/**
 * Kubernetes command/args over Docker's ENTRYPOINT/CMD: command set -> it replaces ENTRYPOINT and args (maybe
 * none) replace CMD (Docker then ignores the image CMD); only args -> image ENTRYPOINT with args as CMD;
 * neither -> image defaults. Empty lists are left out: an empty Entrypoint would erase the image's.
 */
export function buildEntrypointAndCmd(command: string[], args: string[]): { Entrypoint?: string[]; Cmd?: string[] } {
  if (command.length > 0) return args.length > 0 ? { Entrypoint: command, Cmd: args } : { Entrypoint: command };
  if (args.length > 0) return { Cmd: args };
  return {};
}

export interface LogOptions {
  maxSize: string;
  maxFiles: number;
}

function logConfig(o: LogOptions): { Type: string; Config: Record<string, string> } {
  return { Type: 'json-file', Config: { 'max-size': o.maxSize, 'max-file': String(o.maxFiles) } };
}

function applyPrivileged(hc: DockerHostConfig, caps: HostCaps): void {
  const p = buildPrivilegedSettings(caps);
  if (p.privileged) {
    hc.Privileged = true;
    return;
  }
  hc.CapAdd = p.capAdd;
  hc.CapDrop = undefined;
  hc.SecurityOpt = [...(hc.SecurityOpt ?? []).filter((o) => !o.startsWith('seccomp=')), ...p.securityOpt];
  hc.DeviceCgroupRules = p.deviceCgroupRules;
  if (p.unmaskPaths) {
    hc.MaskedPaths = [];
    hc.ReadonlyPaths = [];
  }
}

export function buildSandboxCreateOptions(input: {
  config: PodSandboxConfig;
  image: string;
  hostCaps: HostCaps;
  log: LogOptions;
}): DockerCreateOptions {
  const { config, hostCaps } = input;
  const ns = config.linux?.securityContext?.namespaceOptions;
  const hostNetwork = ns?.network === 'NODE';
  const labels = managedLabels(
    {
      ...toDockerLabels(config.labels, config.annotations),
      [L.dockerType]: DOCKER_TYPE_SANDBOX,
      [L.containerName]: SANDBOX_CONTAINER_NAME,
    },
    config.metadata,
  );
  const hc: DockerHostConfig = {
    NetworkMode: hostNetwork ? 'host' : 'default',
    IpcMode: ns?.ipc === 'NODE' ? 'host' : 'shareable',
    RestartPolicy: { Name: 'no' },
    OomScoreAdj: clampOomScoreAdj(SANDBOX_OOM_SCORE_ADJ, hostCaps),
    CpuShares: SANDBOX_CPU_SHARES,
    LogConfig: logConfig(input.log),
    SecurityOpt: ['no-new-privileges'],
  };
  if (ns?.pid === 'NODE') hc.PidMode = 'host';
  if (config.linux?.cgroupParent) hc.CgroupParent = config.linux.cgroupParent;
  if (config.linux?.sysctls && Object.keys(config.linux.sysctls).length > 0) hc.Sysctls = { ...config.linux.sysctls };
  const dns = config.dnsConfig;
  if (dns) {
    if (dns.servers.length) hc.Dns = [...dns.servers];
    if (dns.searches.length) hc.DnsSearch = [...dns.searches];
    if (dns.options.length) hc.DnsOptions = [...dns.options];
  }
  const opts: DockerCreateOptions = { name: sandboxName(config.metadata), Image: input.image, Labels: labels, HostConfig: hc };
  if (config.hostname) opts.Hostname = config.hostname;
  if (!hostNetwork) {
    const { exposedPorts, portBindings } = buildPortBindings(config.portMappings);
    if (Object.keys(exposedPorts).length > 0) {
      opts.ExposedPorts = exposedPorts;
      hc.PortBindings = portBindings;
    }
  }
  if (config.linux?.securityContext?.privileged) applyPrivileged(hc, hostCaps);
  return opts;
}

export function buildContainerCreateOptions(input: {
  podSandboxId: string;
  config: ContainerConfig;
  sandboxConfig: PodSandboxConfig;
  /** The sandbox container's CgroupParent (read from Docker, so containers always follow their sandbox). */
  cgroupParent?: string;
  hostCaps: HostCaps;
  log: LogOptions;
  /** Compacted JSON of a Localhost seccomp profile (read by the runtime from localhostRef). */
  seccompProfileJson?: string;
}): DockerCreateOptions {
  const { config, sandboxConfig, podSandboxId, hostCaps } = input;
  const sc = config.linux?.securityContext;
  const res = config.linux?.resources;
  const extra: Record<string, string> = {
    ...toDockerLabels(config.labels, config.annotations),
    [L.containerName]: config.metadata.name,
    [L.dockerType]: DOCKER_TYPE_CONTAINER,
    [L.sandboxId]: podSandboxId,
  };
  if (sandboxConfig.logDirectory && config.logPath) {
    extra[L.containerLogPath] = joinPath(sandboxConfig.logDirectory, config.logPath);
  }
  const labels = managedLabels(extra, sandboxConfig.metadata);
  const sandboxNs = `container:${podSandboxId}`;
  const hc: DockerHostConfig = {
    NetworkMode: sandboxNs,
    IpcMode: sandboxNs,
    RestartPolicy: { Name: 'no' },
    LogConfig: logConfig(input.log),
    // Kubernetes' default seccomp profile is Unconfined unless the pod asks for one (cri-dockerd does the same).
    SecurityOpt: ['seccomp=unconfined'],
  };
  const ns = sc?.namespaceOptions;
  if (ns?.pid === 'NODE') hc.PidMode = 'host';
  else if (ns?.pid === 'POD') hc.PidMode = sandboxNs;
  if (ns?.network === 'NODE') hc.UTSMode = 'host';
  if (config.mounts.length > 0) hc.Binds = config.mounts.map(buildMountBinding);
  if (input.cgroupParent) hc.CgroupParent = input.cgroupParent;
  if (res) {
    if (res.memoryLimitInBytes) {
      hc.Memory = res.memoryLimitInBytes;
      hc.MemorySwap = res.memoryLimitInBytes; // no swap beyond the limit
    }
    if (res.cpuShares) hc.CpuShares = res.cpuShares;
    if (res.cpuQuota) hc.CpuQuota = res.cpuQuota;
    if (res.cpuPeriod) hc.CpuPeriod = res.cpuPeriod;
    if (res.oomScoreAdj !== undefined) hc.OomScoreAdj = clampOomScoreAdj(res.oomScoreAdj, hostCaps);
  }
  if (sc) {
    if (sc.supplementalGroups?.length) hc.GroupAdd = sc.supplementalGroups.map(String);
    if (sc.readonlyRootfs) hc.ReadonlyRootfs = true;
    if (sc.capabilities?.addCapabilities?.length) hc.CapAdd = [...sc.capabilities.addCapabilities];
    if (sc.capabilities?.dropCapabilities?.length) hc.CapDrop = [...sc.capabilities.dropCapabilities];
    if (sc.noNewPrivs) hc.SecurityOpt = [...(hc.SecurityOpt ?? []), 'no-new-privileges'];
    hc.SecurityOpt = [...buildSeccompAndAppArmorOpts(sc, input.seccompProfileJson), ...(hc.SecurityOpt ?? []).filter((o) => !o.startsWith('seccomp='))];
    if (sc.maskedPaths) hc.MaskedPaths = [...sc.maskedPaths];
    if (sc.readonlyPaths) hc.ReadonlyPaths = [...sc.readonlyPaths];
    if (sc.privileged) applyPrivileged(hc, hostCaps);
  }
  const opts: DockerCreateOptions = {
    name: containerName(config.metadata, sandboxConfig.metadata),
    Image: config.image,
    ...buildEntrypointAndCmd(config.command, config.args),
    Labels: labels,
    // Docker health checks are not Kubernetes probes (kubernetes#25829).
    Healthcheck: { Test: ['NONE'] },
    HostConfig: hc,
  };
  if (config.envs.length > 0) opts.Env = config.envs.map((e) => `${e.key}=${e.value}`);
  if (config.workingDir) opts.WorkingDir = config.workingDir;
  const user = buildUser(sc);
  if (user !== undefined) opts.User = user;
  if (config.tty) opts.Tty = true;
  if (config.stdin) opts.OpenStdin = true;
  if (config.stdinOnce) opts.StdinOnce = true;
  if (config.stopSignal) opts.StopSignal = config.stopSignal;
  return opts;
}

function joinPath(dir: string, rel: string): string {
  if (rel.startsWith('/')) return rel;
  return `${dir.replace(/\/+$/, '')}/${rel}`;
}

/** Removes capabilities Docker said it does not know ("invalid CapAdd: unknown capability: \"CAP_BPF\""). */
export function withoutCaps(opts: DockerCreateOptions, rejected: ReadonlySet<string>): DockerCreateOptions {
  const capAdd = opts.HostConfig.CapAdd;
  if (!capAdd || rejected.size === 0) return opts;
  const norm = (c: string): string => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
  return { ...opts, HostConfig: { ...opts.HostConfig, CapAdd: capAdd.filter((c) => !rejected.has(norm(c))) } };
}

/** The capability named in Docker's "unknown capability" error, if that is what the error says. */
export function parseUnknownCapability(message: string): string | undefined {
  const m = /unknown capability:?\s*"?(\w+)"?/i.exec(message);
  if (!m?.[1]) return undefined;
  const c = m[1].toUpperCase();
  return c.startsWith('CAP_') ? c : `CAP_${c}`;
}

/** The container ID in Docker's name-conflict error (cri-dockerd's conflictRE). */
export function parseConflictContainerId(message: string): string | undefined {
  return /Conflict\. The (?:container )?name .* is already in use by container "?([0-9a-f]+)"?/s.exec(message)?.[1];
}

// ---- list / status ----

/** Docker's zero time ("0001-01-01T00:00:00Z") and unparsable times are 0. */
export function parseDockerTime(s: string | undefined): number {
  if (!s || s.startsWith('0001-01-01')) return 0;
  const ms = Date.parse(s);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

export function toContainerState(dockerState: string | undefined): ContainerState {
  switch (dockerState) {
    case 'running':
    case 'paused':
      return 'CONTAINER_RUNNING';
    case 'created':
      return 'CONTAINER_CREATED';
    case 'exited':
    case 'dead':
      return 'CONTAINER_EXITED';
    default:
      return 'CONTAINER_UNKNOWN';
  }
}

export function toSandboxState(dockerState: string | undefined): PodSandboxState {
  return dockerState === 'running' || dockerState === 'paused' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/** Labels and annotations as the kubelet gave them (internal labels removed, as cri-dockerd's extractLabels). */
export function splitLabels(all: Record<string, string> | null | undefined, isSandbox: boolean): { labels: Labels; annotations: Labels } {
  const { labels, annotations } = fromDockerLabels(all ?? undefined);
  for (const k of Object.keys(labels)) {
    if (INTERNAL_LABELS.has(k)) delete labels[k];
  }
  if (isSandbox && labels[L.containerName] === SANDBOX_CONTAINER_NAME) delete labels[L.containerName];
  return { labels, annotations };
}

function dockerName(names: string[] | undefined | null, fallback?: string): string {
  return (names?.[0] ?? fallback ?? '').replace(/^\//, '');
}

function sandboxMetadata(labels: Record<string, string>, name: string): PodSandboxMetadata {
  const parsed = parseName(name);
  return {
    name: labels[L.podName] ?? parsed?.podName ?? '',
    namespace: labels[L.podNamespace] ?? parsed?.namespace ?? '',
    uid: labels[L.podUid] ?? parsed?.uid ?? '',
    attempt: parsed?.attempt ?? 0,
  };
}

function containerMetadata(labels: Record<string, string>, name: string): { name: string; attempt: number } {
  const parsed = parseName(name);
  return { name: labels[L.containerName] ?? parsed?.containerName ?? '', attempt: parsed?.attempt ?? 0 };
}

export function toPodSandbox(c: DockerContainerSummary): PodSandbox {
  const all = c.Labels ?? {};
  const { labels, annotations } = splitLabels(all, true);
  return {
    id: c.Id,
    metadata: sandboxMetadata(all, dockerName(c.Names)),
    state: toSandboxState(c.State),
    createdAt: (c.Created ?? 0) * 1000,
    labels,
    annotations,
  };
}

export function toContainer(c: DockerContainerSummary): Container {
  const all = c.Labels ?? {};
  const { labels, annotations } = splitLabels(all, false);
  return {
    id: c.Id,
    podSandboxId: all[L.sandboxId] ?? '',
    metadata: containerMetadata(all, dockerName(c.Names)),
    image: c.Image ?? '',
    imageRef: c.ImageID ?? '',
    state: toContainerState(c.State),
    createdAt: (c.Created ?? 0) * 1000,
    labels,
    annotations,
  };
}

function nsMode(mode: string | undefined, notHost: NamespaceMode): NamespaceMode {
  return mode === 'host' ? 'NODE' : notHost;
}

export function toPodSandboxStatus(r: DockerContainerInspect): PodSandboxStatus {
  const all = r.Config?.Labels ?? {};
  const { labels, annotations } = splitLabels(all, true);
  const network = nsMode(r.HostConfig?.NetworkMode, 'POD');
  const ips: string[] = [];
  if (network !== 'NODE' && r.NetworkSettings) {
    const ns = r.NetworkSettings;
    if (ns.IPAddress) ips.push(ns.IPAddress);
    for (const n of Object.values(ns.Networks ?? {})) if (n?.IPAddress && !ips.includes(n.IPAddress)) ips.push(n.IPAddress);
    if (ns.GlobalIPv6Address) ips.push(ns.GlobalIPv6Address);
  }
  const running = r.State?.Running === true;
  const status: PodSandboxStatus = {
    id: r.Id,
    metadata: sandboxMetadata(all, dockerName(undefined, r.Name)),
    state: running ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
    createdAt: parseDockerTime(r.Created),
    labels,
    annotations,
    network: { additionalIps: ips.slice(1) },
    linux: {
      namespaces: {
        network,
        pid: nsMode(r.HostConfig?.PidMode, 'CONTAINER'),
        ipc: nsMode(r.HostConfig?.IpcMode, 'POD'),
      },
    },
  };
  if (ips[0]) status.network.ip = ips[0];
  return status;
}

function toMountPropagation(p: string | undefined): Mount['propagation'] {
  if (p === 'rshared' || p === 'shared') return 'rshared';
  if (p === 'rslave' || p === 'slave') return 'rslave';
  return 'private';
}

/** core/container_status.go: state and reason from Docker's State. */
export function toContainerStatus(r: DockerContainerInspect): ContainerStatus {
  const all = r.Config?.Labels ?? {};
  const { labels, annotations } = splitLabels(all, false);
  const st = r.State ?? {};
  const createdAt = parseDockerTime(r.Created);
  let startedAt = parseDockerTime(st.StartedAt);
  let finishedAt = parseDockerTime(st.FinishedAt);
  const exitCode = st.ExitCode ?? 0;
  let state: ContainerState;
  let reason = '';
  let message = '';
  if (st.Running) {
    state = 'CONTAINER_RUNNING';
  } else {
    if (finishedAt !== 0) {
      state = 'CONTAINER_EXITED';
      reason = st.OOMKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
    } else if (exitCode !== 0 || (st.Error ?? '') !== '') {
      // Never ran: the start failed (missing binary, bad mount, ...).
      state = 'CONTAINER_EXITED';
      startedAt = createdAt;
      finishedAt = createdAt;
      reason = 'ContainerCannotRun';
    } else {
      state = 'CONTAINER_CREATED';
    }
    message = st.Error ?? '';
  }
  return {
    id: r.Id,
    podSandboxId: all[L.sandboxId] ?? '',
    metadata: containerMetadata(all, dockerName(undefined, r.Name)),
    image: r.Config?.Image ?? '',
    imageRef: r.Image ?? '',
    state,
    createdAt,
    startedAt,
    finishedAt,
    exitCode: state === 'CONTAINER_CREATED' ? 0 : exitCode,
    reason,
    message,
    labels,
    annotations,
    mounts: (r.Mounts ?? []).map((m) => ({
      hostPath: m.Source ?? '',
      containerPath: m.Destination ?? '',
      readonly: m.RW === false,
      propagation: toMountPropagation(m.Propagation),
    })),
    logPath: all[L.containerLogPath] ?? '',
    pid: st.Running ? (st.Pid ?? 0) : 0,
  };
}

// ---- filters ----

export interface DockerListFilters {
  label: string[];
  id?: string[];
}

export function buildSandboxListFilters(f: PodSandboxFilter | undefined): DockerListFilters {
  const out: DockerListFilters = { label: [`${L.dockerType}=${DOCKER_TYPE_SANDBOX}`] };
  if (f?.id) out.id = [f.id];
  for (const [k, v] of Object.entries(f?.labelSelector ?? {})) out.label.push(`${k}=${v}`);
  return out;
}

export function buildContainerListFilters(f: ContainerFilter | undefined): DockerListFilters {
  const out: DockerListFilters = { label: [`${L.dockerType}=${DOCKER_TYPE_CONTAINER}`] };
  if (f?.id) out.id = [f.id];
  if (f?.podSandboxId) out.label.push(`${L.sandboxId}=${f.podSandboxId}`);
  for (const [k, v] of Object.entries(f?.labelSelector ?? {})) out.label.push(`${k}=${v}`);
  return out;
}

/** Docker's id filter matches prefixes of the full ID, as the CRI's does. */
export function filterSandboxes(items: PodSandbox[], f: PodSandboxFilter | undefined): PodSandbox[] {
  return items.filter((s) => (!f?.state || s.state === f.state) && (!f?.id || s.id.startsWith(f.id)));
}

export function filterContainers(items: Container[], f: ContainerFilter | undefined): Container[] {
  return items.filter(
    (c) =>
      (!f?.state || c.state === f.state) &&
      (!f?.id || c.id.startsWith(f.id)) &&
      (!f?.podSandboxId || c.podSandboxId === f.podSandboxId),
  );
}

// ---- events and images ----

const EVENT_TYPES: Record<string, RuntimeEvent['type']> = {
  create: 'created',
  start: 'started',
  die: 'stopped',
  destroy: 'deleted',
};

export function toRuntimeEvent(e: DockerEvent): RuntimeEvent | undefined {
  if ((e.Type ?? 'container') !== 'container') return undefined;
  const type = EVENT_TYPES[e.Action ?? e.status ?? ''];
  const id = e.Actor?.ID ?? e.id;
  if (!type || !id) return undefined;
  const ev: RuntimeEvent = {
    containerId: id,
    type,
    time: e.timeNano ? Math.floor(e.timeNano / 1e6) : (e.time ?? 0) * 1000,
  };
  const uid = e.Actor?.Attributes?.[L.podUid];
  if (uid) ev.podUid = uid;
  return ev;
}

export function toImage(i: DockerImageInspect | DockerImageSummary): Image {
  const img: Image = {
    id: i.Id,
    repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
    repoDigests: (i.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
    sizeBytes: i.Size ?? 0,
  };
  const cfg = 'Config' in i ? i.Config : undefined;
  if (cfg?.StopSignal) img.stopSignal = cfg.StopSignal;
  if (cfg?.User) {
    img.user = cfg.User;
    // getUserFromImageUser: `user[:group]`, the user numeric → uid, else a name.
    const user = cfg.User.split(':')[0] ?? '';
    if (/^[+-]?\d+$/.test(user)) img.uid = Number(user);
    else if (user) img.username = user;
  }
  return img;
}
