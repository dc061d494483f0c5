// The thin executor: carries out the planner's PodActions on the runtime (kuberuntime's SyncPod,
// killPodWithSyncResult, startContainer), records start failures in the reason cache and emits events
// with upstream's reasons and messages.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Container, LifecycleHandler, Pod } from 'kubernetes-types/core/v1';
import type { ContainerStatus, PodSandboxConfig, RuntimeService } from '../../cri/index.ts';
import { A } from '../../cri/index.ts';
import { errorMessage, redactValues, type Clock, type Logger } from '../../lib/index.ts';
import { computePodActions, type ContainerToStart, type PodActions, type ProbeVerdict } from '../pod/pod-actions.ts';
import type { BackoffPolicy } from '../pod/crash-loop-backoff.ts';
import { buildContainerConfig, buildSandboxConfig, type NodeFacts } from './container-config.ts';
import { makeEnvironment, EnvConfigError, secretEnvValues, type ConfigDataSource } from './env.ts';
import { podObjectRef, type EventRecorder, type ObjectRef } from '../status/events.ts';
import type { ImageManager } from './images.ts';
import { nameOf, type ObservedPod } from '../pod/observed.ts';
import type { WaitingReason } from '../pod/pod-status.ts';
import { assertName, containedPath, podDir, PRIVATE_DIR_MODE, setupPodVolumes, isForcedReadOnly, VolumeError, type TokenSource } from '../volumes/index.ts';
import { ContainerConfigError, prepareContainerSubPaths } from '../volumes/container-mounts.ts';
import { runHandler } from '../prober/handlers.ts';
import { effectiveSecurityContext, imageUserOrRoot, verifyRunAsNonRoot } from '../pod/security-context.ts';
import { applyPodCgroup } from './pod-cgroup.ts';
import { buildManagedHostsFile, ETC_HOSTS_PATH, podHostnameAndDomain, shouldMountEtcHosts, writeEtcHostsFile } from './etc-hosts.ts';
import { buildResolvConf, hostResolvConfPath, podDNSConfig, readHostDNS, RESOLV_CONF_PATH, shouldMountResolvConf, writeResolvConfFile } from './dns.ts';

/** Minimum grace for a container kill (pkg/kubelet/kuberuntime: minimumGracePeriodInSeconds). */
const MIN_GRACE_SECONDS = 2;

export interface PodSyncDeps {
  runtime: RuntimeService;
  images: ImageManager;
  recorder: EventRecorder;
  log: Logger;
  clock: Clock;
  node: NodeFacts;
  hostIP: () => string;
  backoff: BackoffPolicy;
  data?: ConfigDataSource;
  /** Service-account tokens for projected volumes (cluster mode only). */
  tokens?: TokenSource;
  serviceEnv: (namespace: string) => Record<string, string>;
  liveness?: ProbeVerdict;
  startup?: ProbeVerdict;
  nodeAllocatable: () => { cpuMillis: number; memoryBytes: number };
  /** IP a container's HTTP hooks are sent to (its pod's IP). */
  podIP?: (c: ContainerStatus) => string;
  /**
   * Told the Secret values a pod's container was started with (never empty), so that its statuses can be redacted
   * too (a runtime's State.Error quotes the program it could not run). Must not throw.
   */
  sensitive?: (podUid: string, values: string[]) => void;
}

const containerRef = (pod: Pod, c: Container, kind: 'init' | 'app'): ObjectRef =>
  podObjectRef(pod, `spec.${kind === 'init' ? 'initContainers' : 'containers'}{${c.name}}`);

export interface SyncResult {
  actions: PodActions;
  requeueAfterMs?: number;
  /** Containers a start was attempted for (a new instance may exist that the sync's snapshot predates). */
  started?: string[];
}

/** Grace for a container stop: the pod's deletion grace when being deleted, else its spec, else the container's label. */
export function gracePeriodSeconds(pod: Pod | undefined, c?: ContainerStatus, override?: number): number {
  let g = override ?? pod?.metadata?.deletionGracePeriodSeconds ?? pod?.spec?.terminationGracePeriodSeconds;
  if (g === undefined && c) g = Number(c.annotations[A.terminationGracePeriod] ?? 30);
  if (g === undefined || !Number.isFinite(g)) g = 30;
  return Math.max(g, MIN_GRACE_SECONDS);
}

export async function killContainer(
  deps: PodSyncDeps,
  pod: Pod | undefined,
  c: ContainerStatus,
  message: string,
  graceOverride?: number,
): Promise<void> {
  let grace = gracePeriodSeconds(pod, c, graceOverride);
  const spec = [...(pod?.spec?.containers ?? []), ...(pod?.spec?.initContainers ?? [])].find((x) => x.name === nameOf(c));
  const ref = pod ? (spec ? containerRef(pod, spec, c.annotations[A.containerType] === 'init' ? 'init' : 'app') : podObjectRef(pod)) : undefined;
  if (ref) deps.recorder.event(ref, 'Normal', 'Killing', message);
  // preStop runs within the grace period; what it uses is taken off the stop timeout (kuberuntime killContainer).
  let preStop: LifecycleHandler | undefined = spec?.lifecycle?.preStop;
  if (!preStop && c.annotations[A.preStopHandler]) {
    try {
      preStop = JSON.parse(c.annotations[A.preStopHandler]!) as LifecycleHandler;
    } catch {
      preStop = undefined;
    }
  }
  if (preStop && c.state === 'CONTAINER_RUNNING') {
    const t0 = deps.clock.now();
    const out = await runHandler({ ...preStop, timeoutSeconds: grace }, spec ?? { name: nameOf(c) }, deps.podIP?.(c) ?? '', c.id, deps.runtime);
    if (out.result === 'failure' && ref) deps.recorder.event(ref, 'Warning', 'FailedPreStopHook', `PreStopHook failed: ${out.output}`);
    grace = Math.max(MIN_GRACE_SECONDS, grace - Math.ceil((deps.clock.now() - t0) / 1000));
  }
  await deps.runtime.stopContainer(c.id, grace);
}

/** Stops every running container of the pod (in parallel, each with its grace) and its ready sandboxes. */
export async function killPod(deps: PodSyncDeps, pod: Pod | undefined, seen: ObservedPod, graceOverride?: number): Promise<void> {
  const running = seen.containers.filter((c) => c.state === 'CONTAINER_RUNNING' || c.state === 'CONTAINER_UNKNOWN');
  await Promise.all(running.map((c) => killContainer(deps, pod, c, `Stopping container ${nameOf(c)}`, graceOverride)));
  for (const s of seen.sandboxes) if (s.state === 'SANDBOX_READY') await deps.runtime.stopPodSandbox(s.id);
}

/** Removes every container and sandbox of the pod (after killPod). */
export async function removePod(deps: PodSyncDeps, seen: ObservedPod): Promise<void> {
  for (const c of seen.containers) await deps.runtime.removeContainer(c.id);
  for (const s of seen.sandboxes) await deps.runtime.removePodSandbox(s.id);
}

export async function syncPod(deps: PodSyncDeps, pod: Pod, seen: ObservedPod, reasons: Map<string, WaitingReason>): Promise<SyncResult> {
  const now = deps.clock.now();
  const actions = computePodActions({ pod, seen, now, backoff: deps.backoff, liveness: deps.liveness, startup: deps.startup });
  const log = deps.log;
  let requeueAfterMs = actions.requeueAfterMs;
  const podRef = podObjectRef(pod);

  for (const b of actions.backingOff) {
    const spec = (b.kind === 'init' ? pod.spec?.initContainers : pod.spec?.containers)?.find((c) => c.name === b.name);
    if (!reasons.has(b.name) || reasons.get(b.name)!.reason !== 'CrashLoopBackOff' || reasons.get(b.name)!.message !== b.message)
      deps.recorder.event(spec ? containerRef(pod, spec, b.kind) : podRef, 'Warning', 'BackOff', 'Back-off restarting failed container');
    reasons.set(b.name, { reason: 'CrashLoopBackOff', message: b.message });
  }

  if (actions.killPod) {
    if (actions.createSandbox && seen.sandboxes.length > 0)
      deps.recorder.event(podRef, 'Normal', 'SandboxChanged', 'Pod sandbox changed, it will be killed and re-created.');
    await killPod(deps, pod, seen);
  } else {
    const byId = new Map(seen.containers.map((c) => [c.id, c]));
    await Promise.all(
      actions.kill.map(async (k) => {
        const c = byId.get(k.id);
        if (!c) return;
        if (k.reason === 'Created' || k.reason === 'Unknown') await deps.runtime.removeContainer(k.id);
        else await killContainer(deps, pod, c, k.message);
      }),
    );
  }
  for (const id of actions.removeContainers) await deps.runtime.removeContainer(id).catch((err: unknown) => log.warn({ err, containerId: id }, 'remove dead container failed'));
  for (const id of actions.removeSandboxes) await deps.runtime.removePodSandbox(id).catch((err: unknown) => log.warn({ err, sandboxId: id }, 'remove dead sandbox failed'));

  const running = seen.containers.some((c) => c.state === 'CONTAINER_RUNNING');
  if (!actions.createSandbox && actions.start.length === 0 && !(running && hasUpdatableVolumes(pod))) return { actions, requeueAfterMs };

  // Also on syncs that start nothing: secret/configMap/downwardAPI volumes of a running pod follow their
  // objects (upstream remounts them on every sync; the atomic writer makes an unchanged payload a no-op).
  let volumes: Map<string, string>;
  try {
    volumes = await setupPodVolumes(pod, { rootDir: deps.node.rootDir, data: deps.data, tokens: deps.tokens, nodeAllocatable: deps.nodeAllocatable() });
    if (!actions.createSandbox && actions.start.length === 0) return { actions, requeueAfterMs };
  } catch (err) {
    // The volume's own MountVolume.SetUp message, as upstream's operation executor reports it.
    const msg = err instanceof VolumeError ? err.message : `Unable to attach or mount volumes: ${errorMessage(err)}`;
    log.warn({ err }, 'volume setup failed');
    deps.recorder.event(podRef, 'Warning', 'FailedMount', msg);
    if (!actions.createSandbox && actions.start.length === 0) return { actions, requeueAfterMs }; // a refresh: next resync retries
    return { actions, requeueAfterMs: Math.min(requeueAfterMs ?? Infinity, 2000) };
  }

  let sandboxId = actions.sandboxId;
  // GetPodDNS (network/dns/dns.go) reads the host's resolver file each time the sandbox config is generated.
  let dns: ReturnType<typeof podDNSConfig>;
  try {
    const host = await readHostDNS(await hostResolvConfPath(deps.node.resolvConf));
    dns = podDNSConfig(pod, { clusterDNS: deps.node.clusterDNS, clusterDomain: deps.node.clusterDomain, host });
  } catch (err) {
    log.warn({ err }, 'reading the host resolv.conf failed');
    if (actions.createSandbox) deps.recorder.event(podRef, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${errorMessage(err)}`);
    return { actions, requeueAfterMs: Math.min(requeueAfterMs ?? Infinity, 5000) };
  }
  for (const w of dns.warnings) deps.recorder.event(podRef, 'Warning', w.reason, w.message);
  const sandboxConfig: PodSandboxConfig = buildSandboxConfig(pod, actions.attempt, deps.node, dns.config);
  if (actions.createSandbox) {
    try {
      await mkdir(sandboxConfig.logDirectory!, { recursive: true });
      sandboxId = await deps.runtime.runPodSandbox(sandboxConfig);
    } catch (err) {
      deps.recorder.event(podRef, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${errorMessage(err)}`);
      return { actions, requeueAfterMs: Math.min(requeueAfterMs ?? Infinity, 5000) };
    }
  }
  let podIP = '';
  if (pod.spec?.hostNetwork) podIP = deps.hostIP();
  else {
    const sb = seen.sandboxes.find((s) => s.id === sandboxId);
    podIP = sb?.network.ip ?? '';
    if (!podIP || actions.createSandbox) podIP = (await deps.runtime.podSandboxStatus(sandboxId!)).network.ip ?? '';
  }

  // The pod cgroup gets the pod's summed limits before its containers start (Docker created it with the sandbox).
  if (actions.start.length > 0)
    await applyPodCgroup(pod).catch((err: unknown) => log.warn({ err }, 'pod cgroup limits not applied'));
  const started: string[] = [];
  for (const s of actions.start) {
    started.push(s.spec.name);
    const r = await startContainer(deps, { pod, start: s, sandboxId: sandboxId!, sandboxConfig, volumes, podIP });
    if (r.retryInMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, r.retryInMs);
    if (r.reason) reasons.set(s.spec.name, r.reason);
    else reasons.delete(s.spec.name);
  }
  return { actions, requeueAfterMs, started };
}

const hasUpdatableVolumes = (pod: Pod): boolean => (pod.spec?.volumes ?? []).some(isForcedReadOnly);

interface StartInput {
  pod: Pod;
  start: ContainerToStart;
  sandboxId: string;
  sandboxConfig: PodSandboxConfig;
  volumes: Map<string, string>;
  podIP: string;
}

async function startContainer(deps: PodSyncDeps, input: StartInput): Promise<{ reason?: WaitingReason; retryInMs?: number }> {
  const { pod, start } = input;
  const c = start.spec;
  const ref = containerRef(pod, c, start.kind);
  const img = await deps.images.ensureImageExists(pod, c, ref);
  if (!img.ok) {
    const retry = deps.images.pullRetryInMs(pod, c.image ?? '');
    return { reason: { reason: img.reason, message: img.message }, retryInMs: retry > 0 ? retry + 10 : img.reason === 'ErrImageNeverPull' ? 30_000 : 1000 };
  }
  let envs: { key: string; value: string }[];
  try {
    envs = await makeEnvironment({
      pod,
      container: c,
      hostIP: deps.hostIP(),
      podIP: input.podIP,
      nodeName: deps.node.nodeName,
      serviceEnv: deps.serviceEnv(pod.metadata!.namespace!),
      data: deps.data,
      nodeAllocatable: deps.nodeAllocatable(),
    });
  } catch (err) {
    const message = err instanceof EnvConfigError ? err.message : errorMessage(err);
    deps.recorder.event(ref, 'Warning', 'Failed', `Error: ${message}`);
    return { reason: { reason: 'CreateContainerConfigError', message }, retryInMs: 10_000 };
  }
  // From here on a message may quote what the runtime was given (a $(VAR) expanded from a Secret): redact those values.
  const secrets = await secretEnvValues({ pod, container: c, data: deps.data });
  if (secrets.length) deps.sensitive?.(pod.metadata?.uid ?? '', secrets);
  const hide = (m: string): string => redactValues(m, secrets);
  const pd = podDir(deps.node.rootDir, pod.metadata?.uid ?? '');
  let subPaths: Map<number, string>;
  try {
    subPaths = await prepareContainerSubPaths({ container: c, volumes: input.volumes, podDir: pd, envs, log: deps.log });
  } catch (err) {
    const message = hide(err instanceof ContainerConfigError ? err.message : errorMessage(err));
    deps.recorder.event(ref, 'Warning', 'Failed', `Error: ${message}`);
    return { reason: { reason: 'CreateContainerConfigError', message }, retryInMs: 10_000 };
  }
  let terminationMessageFile: string | undefined;
  if (c.terminationMessagePath) {
    // kuberuntime makeMounts: create the file, then chmod 0666 (the create's mode is cut by the umask)
    // so a container running as any user can write its message.
    const dir = containedPath(pd, 'containers', assertName(c.name, 'container name'));
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    terminationMessageFile = containedPath(dir, randomBytes(4).toString('hex'));
    await writeFile(terminationMessageFile, '', { mode: 0o666 });
    await chmod(terminationMessageFile, 0o666);
  }
  let config;
  try {
    // kuberuntime generateContainerConfig: runAsNonRoot is checked against the image's user.
    if (effectiveSecurityContext(pod, c).runAsNonRoot) {
      const st = await deps.images.imageStatus(img.imageRef);
      const refusal = verifyRunAsNonRoot(pod, c, imageUserOrRoot({ uid: st.uid, username: st.username }));
      if (refusal) throw new Error(refusal);
    }
    config = buildContainerConfig({ pod, start, envs, volumes: input.volumes, subPaths, node: deps.node, terminationMessageFile });
    if (shouldMountEtcHosts(pod, c, [input.podIP])) {
      const { hostname, hostDomain } = podHostnameAndDomain(pod, deps.node.clusterDomain);
      const hosts = buildManagedHostsFile({ podIPs: [input.podIP], hostname, hostDomain, hostAliases: pod.spec?.hostAliases });
      config.mounts.push({ containerPath: ETC_HOSTS_PATH, hostPath: await writeEtcHostsFile(pd, hosts) });
    }
    // The runtime's resolv.conf as cri-dockerd rewrites it (Docker's own differs in order and fills in from the host).
    const resolv = buildResolvConf(input.sandboxConfig.dnsConfig ?? { servers: [], searches: [], options: [] });
    if (shouldMountResolvConf(c, resolv)) config.mounts.push({ containerPath: RESOLV_CONF_PATH, hostPath: await writeResolvConfFile(pd, resolv) });
  } catch (err) {
    const message = hide(errorMessage(err));
    deps.recorder.event(ref, 'Warning', 'Failed', `Error: ${message}`);
    return { reason: { reason: 'CreateContainerConfigError', message }, retryInMs: 10_000 };
  }
  let id: string;
  try {
    id = await deps.runtime.createContainer(input.sandboxId, config, input.sandboxConfig);
  } catch (err) {
    const message = hide(errorMessage(err));
    deps.recorder.event(ref, 'Warning', 'Failed', `Error: ${message}`);
    return { reason: { reason: 'CreateContainerError', message }, retryInMs: 5000 };
  }
  deps.recorder.event(ref, 'Normal', 'Created', `Created container ${c.name}`);
  try {
    await deps.runtime.startContainer(id);
  } catch (err) {
    const message = hide(errorMessage(err));
    deps.recorder.event(ref, 'Warning', 'Failed', `Error: ${message}`);
    return { reason: { reason: 'RunContainerError', message } };
  }
  deps.recorder.event(ref, 'Normal', 'Started', `Started container ${c.name}`);
  const postStart = c.lifecycle?.postStart;
  if (postStart) {
    const out = await runHandler({ ...postStart, timeoutSeconds: pod.spec?.terminationGracePeriodSeconds ?? 30 }, c, input.podIP, id, deps.runtime);
    if (out.result === 'failure') {
      const message = hide(`PostStartHook failed: ${out.output}`);
      deps.recorder.event(ref, 'Warning', 'FailedPostStartHook', message);
      deps.recorder.event(ref, 'Normal', 'Killing', `FailedPostStartHook`);
      await deps.runtime.stopContainer(id, gracePeriodSeconds(pod));
      return { reason: { reason: 'PostStartHookError', message } };
    }
  }
  return {};
}
