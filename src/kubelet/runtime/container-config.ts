// Pod → CRI sandbox config and Container → CRI container config, as kuberuntime's
// kuberuntime_sandbox.go (generatePodSandboxConfig) and kuberuntime_container.go
// (generateContainerConfig, labels.go) build them, with resources from pkg/kubelet/cm/helpers_linux.go
// and pkg/kubelet/qos/policy.go.
import path from 'node:path';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import type { ContainerConfig, DNSConfig, Mount, PodSandboxConfig, PortMapping } from '../../cri/index.ts';
import { A, L } from '../../cri/index.ts';
import { cpuMillis, bytes } from '../pod/quantity.ts';
import { expand } from './env.ts';
import { getQOSClass } from '../pod/pod-status.ts';
import { containerHash, isHostNetwork, type ContainerToStart } from '../pod/pod-actions.ts';
import { assertName, containedPath } from '../volumes/contained-path.ts';
import { isForcedReadOnly } from '../volumes/read-only.ts';
import { podDNSConfig } from './dns.ts';
import { appArmorProfileOf, seccompProfileOf, supplementalGroupsOf } from '../pod/security-context.ts';

export interface NodeFacts {
  nodeName: string;
  hostname: string;
  memoryCapacityBytes: number;
  /** Cluster DNS servers (--cluster-dns); empty = pods use the host's resolv.conf. */
  clusterDNS: string[];
  clusterDomain: string;
  /** The host resolver file pods with dnsPolicy Default start from (--resolv-conf); '' = none. Absent: dns.ts hostResolvConfPath. */
  resolvConf?: string;
  rootDir: string;
  podLogsDir: string;
}

const MIN_SHARES = 2;
const MAX_SHARES = 262144;
const QUOTA_PERIOD = 100_000;
const MIN_QUOTA = 1000;

export function milliCPUToShares(milli: number): number {
  if (milli === 0) return MIN_SHARES;
  return Math.min(Math.max(Math.floor((milli * 1024) / 1000), MIN_SHARES), MAX_SHARES);
}

export function milliCPUToQuota(milli: number, period = QUOTA_PERIOD): number {
  if (milli === 0) return 0;
  return Math.max(Math.floor((milli * period) / 1000), MIN_QUOTA);
}

/** pkg/kubelet/qos/policy.go GetContainerOOMScoreAdjust. */
export function oomScoreAdjust(pod: Pod, c: Container, memoryCapacity: number): number {
  if (pod.spec?.priorityClassName === 'system-node-critical') return -997;
  const qos = getQOSClass(pod);
  if (qos === 'Guaranteed') return -997;
  if (qos === 'BestEffort') return 1000;
  const req = bytes(c.resources?.requests?.memory);
  let adj = 1000 - Math.floor((1000 * req) / Math.max(memoryCapacity, 1));
  if (adj < 1000 + -997) adj = 1000 + -997;
  if (adj === 1000) adj = 999;
  return adj;
}

export function podCgroupParent(pod: Pod): string {
  const qos = getQOSClass(pod);
  const uid = pod.metadata!.uid!;
  if (qos === 'Guaranteed') return `/kubepods/pod${uid}`;
  return `/kubepods/${qos.toLowerCase()}/pod${uid}`;
}

/** <logs>/<ns>_<name>_<uid>; throws PathEscapeError when the pod's names would leave the logs dir. */
export const podLogDir = (logsRoot: string, pod: Pod): string =>
  containedPath(logsRoot, assertName(`${pod.metadata!.namespace}_${pod.metadata!.name}_${pod.metadata!.uid}`, 'pod log directory'));

export function podLabels(pod: Pod, nodeName: string): Record<string, string> {
  return {
    ...(pod.metadata?.labels ?? {}),
    [L.node]: nodeName,
    [L.podName]: pod.metadata!.name!,
    [L.podNamespace]: pod.metadata!.namespace!,
    [L.podUid]: pod.metadata!.uid!,
  };
}

/** `dns`: the pod's resolver settings (dns.ts podDNSConfig, with the host's resolv.conf); absent = without the host's. */
export function buildSandboxConfig(pod: Pod, attempt: number, node: NodeFacts, dns?: DNSConfig): PodSandboxConfig {
  const spec = pod.spec!;
  const hostNet = isHostNetwork(pod);
  const portMappings: PortMapping[] = [];
  for (const c of spec.containers)
    for (const p of c.ports ?? [])
      if (p.hostPort)
        portMappings.push({ protocol: (p.protocol ?? 'TCP') as PortMapping['protocol'], containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIP });
  let hostname = hostNet ? node.hostname : (spec.hostname ?? pod.metadata!.name!).slice(0, 63).replace(/[-.]+$/, '');
  if (!hostNet && spec.subdomain && spec.hostname) hostname = spec.hostname;
  const cfg: PodSandboxConfig = {
    metadata: { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, uid: pod.metadata!.uid!, attempt },
    hostname,
    logDirectory: podLogDir(node.podLogsDir, pod),
    portMappings,
    labels: { ...podLabels(pod, node.nodeName), [L.containerName]: 'POD' },
    annotations: { ...(pod.metadata?.annotations ?? {}) },
    linux: {
      cgroupParent: podCgroupParent(pod),
      sysctls: Object.fromEntries((spec.securityContext?.sysctls ?? []).map((s) => [s.name, s.value])),
      securityContext: {
        namespaceOptions: {
          network: hostNet ? 'NODE' : 'POD',
          pid: spec.hostPID ? 'NODE' : spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
          ipc: spec.hostIPC ? 'NODE' : 'POD',
        },
      },
    },
  };
  const d = dns ?? podDNSConfig(pod, { clusterDNS: node.clusterDNS, clusterDomain: node.clusterDomain, host: { servers: [], searches: [], options: [] } }).config;
  // Nothing to say (Default on a host whose resolv.conf is not known here): the runtime's file stays, as cri-dockerd.
  if (d.servers.length || d.searches.length || d.options.length) cfg.dnsConfig = d;
  return cfg;
}

export interface ContainerConfigInput {
  pod: Pod;
  start: ContainerToStart;
  envs: { key: string; value: string }[];
  volumes: Map<string, string>;
  /**
   * Host paths prepared for the container's subPath/subPathExpr mounts, by index in volumeMounts
   * (volumes/subpath.ts prepareSubPath). A subPath is never joined here: a mount with one and no
   * prepared path is an error.
   */
  subPaths?: ReadonlyMap<number, string>;
  node: NodeFacts;
  /** Host file mounted at terminationMessagePath. */
  terminationMessageFile?: string;
  stopSignal?: string;
}

export function buildContainerConfig(input: ContainerConfigInput): ContainerConfig {
  const { pod, start, envs, volumes, node } = input;
  const c = start.spec;
  const spec = pod.spec!;
  const lookup = new Map(envs.map((e) => [e.key, e.value]));
  const exp = (s: string): string => expand(s, (n) => lookup.get(n));
  const mounts: Mount[] = [];
  (c.volumeMounts ?? []).forEach((m, i) => {
    const host = volumes.get(m.name);
    if (!host) return;
    let hostPath = host;
    if (m.subPath || m.subPathExpr) {
      const prepared = input.subPaths?.get(i);
      if (!prepared) throw new Error(`subPath of volumeMount ${JSON.stringify(m.name)} of container ${JSON.stringify(c.name)} was not prepared`);
      hostPath = prepared;
    }
    // secret, configMap, downwardAPI and projected volumes are always mounted read-only (kubelet_pods.go makeMounts).
    const forcedRO = isForcedReadOnly(spec.volumes?.find((v) => v.name === m.name));
    mounts.push({
      containerPath: m.mountPath,
      hostPath,
      readonly: (m.readOnly ?? false) || forcedRO,
      propagation: m.mountPropagation === 'Bidirectional' ? 'rshared' : m.mountPropagation === 'HostToContainer' ? 'rslave' : 'private',
    });
  });
  if (input.terminationMessageFile && c.terminationMessagePath)
    mounts.push({ containerPath: c.terminationMessagePath, hostPath: input.terminationMessageFile });
  const sc = c.securityContext ?? {};
  const psc = spec.securityContext ?? {};
  const cpuReq = cpuMillis(c.resources?.requests?.cpu);
  const cpuLim = cpuMillis(c.resources?.limits?.cpu);
  const memLim = bytes(c.resources?.limits?.memory);
  const ports = (c.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' }));
  const annotations: Record<string, string> = {
    [A.containerHash]: containerHash(c),
    [A.restartCount]: String(start.restartCount),
    [A.terminationMessagePath]: c.terminationMessagePath ?? '/dev/termination-log',
    [A.terminationMessagePolicy]: c.terminationMessagePolicy ?? 'File',
    [A.terminationGracePeriod]: String(spec.terminationGracePeriodSeconds ?? 30),
    [A.containerType]: start.kind,
  };
  if (ports.length) annotations[A.containerPorts] = JSON.stringify(ports);
  if (c.lifecycle?.preStop) annotations[A.preStopHandler] = JSON.stringify(c.lifecycle.preStop);
  if (start.backoff) {
    annotations[A.backoffMs] = String(start.backoff.durationMs);
    annotations[A.backoffUpdatedAt] = String(start.backoff.updatedAt);
  }
  const cfg: ContainerConfig = {
    metadata: { name: c.name, attempt: start.restartCount },
    image: c.image!,
    command: (c.command ?? []).map(exp),
    args: (c.args ?? []).map(exp),
    workingDir: c.workingDir || undefined,
    envs,
    mounts,
    labels: { ...podLabels(pod, node.nodeName), [L.containerName]: c.name },
    annotations,
    logPath: path.join(assertName(c.name, 'container name'), `${start.restartCount}.log`),
    stdin: c.stdin ?? false,
    stdinOnce: c.stdinOnce ?? false,
    tty: c.tty ?? false,
    linux: {
      resources: {
        cpuShares: milliCPUToShares(cpuReq || cpuLim),
        cpuQuota: cpuLim ? milliCPUToQuota(cpuLim) : undefined,
        cpuPeriod: cpuLim ? QUOTA_PERIOD : undefined,
        memoryLimitInBytes: memLim || undefined,
        oomScoreAdj: oomScoreAdjust(pod, c, node.memoryCapacityBytes),
      },
      securityContext: {
        privileged: sc.privileged ?? false,
        runAsUser: sc.runAsUser ?? psc.runAsUser,
        runAsGroup: sc.runAsGroup ?? psc.runAsGroup,
        supplementalGroups: supplementalGroupsOf(pod),
        seccomp: seccompProfileOf(pod, c, node.rootDir),
        ...(appArmorProfileOf(pod, c) ? { apparmorProfile: appArmorProfileOf(pod, c) } : {}),
        // procMount Unmasked: nothing masked or read-only in /proc (kuberuntime's security_context.go).
        ...(sc.procMount === 'Unmasked' ? { maskedPaths: [], readonlyPaths: [] } : {}),
        readonlyRootfs: sc.readOnlyRootFilesystem ?? false,
        noNewPrivs: sc.allowPrivilegeEscalation === false,
        capabilities: { addCapabilities: sc.capabilities?.add ?? [], dropCapabilities: sc.capabilities?.drop ?? [] },
        namespaceOptions: {
          network: isHostNetwork(pod) ? 'NODE' : 'POD',
          pid: spec.hostPID ? 'NODE' : spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
          ipc: spec.hostIPC ? 'NODE' : 'POD',
        },
      },
    },
  };
  const stop = input.stopSignal ?? (c.lifecycle as { stopSignal?: string } | undefined)?.stopSignal;
  if (stop) cfg.stopSignal = stop;
  return cfg;
}
