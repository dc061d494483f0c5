// Pod status as the kubelet reports it, computed purely from the Pod, what the runtime holds, the start
// failures the pod worker remembered (reason cache) and probe results. Follows pkg/kubelet/kubelet_pods.go
// (getPhase, convertToAPIContainerStatuses) and pkg/kubelet/status/generate.go.
import type { Container, ContainerStatus as ApiContainerStatus, Pod, PodCondition, PodStatus } from 'kubernetes-types/core/v1';
import type { ContainerStatus } from '../../cri/index.ts';
import { shouldContainerBeRestarted, isHostNetwork } from './pod-actions.ts';
import { nameOf, restartCountOf, type ObservedPod } from './observed.ts';
import { cpuMillis, bytes } from './quantity.ts';

export interface WaitingReason {
  reason: string;
  message: string;
}

export interface StatusInput {
  pod: Pod;
  seen: ObservedPod;
  /** Start failures by container name (CrashLoopBackOff, ErrImagePull, …): upstream's reasonCache. */
  reasons: ReadonlyMap<string, WaitingReason>;
  /** Readiness by container id (undefined = no result yet). Containers without a readiness probe are ready when running. */
  ready?: (containerId: string) => boolean | undefined;
  /** Startup-probe success by container id (undefined = no result yet). */
  started?: (containerId: string) => boolean | undefined;
  hostIP: string;
  previous?: PodStatus;
  now: number;
  /** Pod-level reason/message set by the kubelet (e.g. admission rejection, DeadlineExceeded). */
  podReason?: { phase: 'Failed'; reason: string; message: string };
  /** The pod is being deleted and nothing of it runs any more: its phase becomes terminal (getPhase podIsTerminal). */
  terminal?: boolean;
  /**
   * Containers the sync that produced `seen` went on to start a new instance of (the pod worker computes the status
   * after its sync, from the snapshot taken before it): their newest instance in `seen` is already the previous one.
   */
  restarting?: ReadonlySet<string>;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const fmtList = (names: string[]): string => `[${names.join(' ')}]`;

export function getQOSClass(pod: Pod): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    for (const r of ['cpu', 'memory']) {
      const rq = req[r];
      const lm = lim[r];
      const rv = rq === undefined ? 0 : r === 'cpu' ? cpuMillis(rq) : bytes(rq);
      const lv = lm === undefined ? 0 : r === 'cpu' ? cpuMillis(lm) : bytes(lm);
      if (rv > 0 || lv > 0) any = true;
      if (lv === 0 || (rq !== undefined && rv !== lv)) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function convert(cs: ContainerStatus): ApiContainerStatus {
  const out: ApiContainerStatus = {
    name: nameOf(cs),
    restartCount: restartCountOf(cs),
    image: cs.image,
    // dockershim's form: docker-pullable://repo@digest for pulled images, docker://sha256:… for local ones.
    imageID: cs.imageRef.includes('@') ? `docker-pullable://${cs.imageRef}` : cs.imageRef ? `docker://${cs.imageRef}` : '',
    containerID: `docker://${cs.id}`,
    ready: false,
    state: {},
  };
  if (cs.state === 'CONTAINER_RUNNING') out.state = { running: { startedAt: iso(cs.startedAt) } };
  // Created but not started: "waiting to be running" (upstream since 1.26; it used to report terminated).
  else if (cs.state === 'CONTAINER_CREATED') out.state = { waiting: {} };
  else if (cs.state === 'CONTAINER_EXITED')
    out.state = {
      terminated: {
        exitCode: cs.exitCode,
        reason: cs.reason || undefined,
        message: cs.message || undefined,
        startedAt: cs.startedAt ? iso(cs.startedAt) : undefined,
        finishedAt: cs.finishedAt ? iso(cs.finishedAt) : undefined,
        containerID: `docker://${cs.id}`,
      },
    };
  else out.state = { waiting: {} };
  return out;
}

/** convertToAPIContainerStatuses for one list (init or app containers). */
function containerStatuses(input: StatusInput, containers: Container[], isInit: boolean, hasInit: boolean): ApiContainerStatus[] {
  const { pod, seen, reasons } = input;
  const prev = new Map(
    (isInit ? input.previous?.initContainerStatuses : input.previous?.containerStatuses)?.map((s) => [s.name, s]) ?? [],
  );
  const statuses = new Map<string, ApiContainerStatus>();
  const defaultWaiting = { waiting: { reason: hasInit ? 'PodInitializing' : 'ContainerCreating' } };
  for (const c of containers) {
    const old = prev.get(c.name);
    let s: ApiContainerStatus = { name: c.name, image: c.image ?? '', imageID: '', ready: false, restartCount: 0, state: defaultWaiting };
    if (old?.state?.terminated) s = structuredClone(old);
    else if (old) {
      s.restartCount = old.restartCount;
      if (old.lastState) s.lastState = old.lastState;
    }
    statuses.set(c.name, s);
  }
  const seenCount = new Map<string, number>();
  for (const cs of seen.containers) {
    const n = nameOf(cs);
    if (!statuses.has(n)) continue;
    const k = seenCount.get(n) ?? 0;
    if (k >= 2) continue;
    const conv = convert(cs);
    if (k === 0) statuses.set(n, conv);
    else statuses.get(n)!.lastState = conv.state;
    seenCount.set(n, k + 1);
  }
  // A new instance exists that `seen` predates: the newest dead instance seen is now the last termination. Upstream
  // shows this sync's status from before SyncPod (reason cache still CrashLoopBackOff, lastState = that instance);
  // without this the status said "terminated, no lastState" until the next relist and `--previous` was not found.
  for (const c of containers) {
    const s = statuses.get(c.name)!;
    if (!input.restarting?.has(c.name) || !s.state?.terminated || !seenCount.has(c.name)) continue;
    const old = prev.get(c.name);
    const sameInstance = !!old?.state?.waiting && old.lastState?.terminated?.containerID === s.state.terminated.containerID;
    s.lastState = s.state;
    s.state = sameInstance && old?.state?.waiting ? { waiting: { ...old.state.waiting } } : { waiting: {} };
  }
  for (const c of containers) {
    if (isInit) {
      const s = seen.containers.find((x) => nameOf(x) === c.name);
      if (s && s.state === 'CONTAINER_EXITED' && s.exitCode === 0) continue;
    }
    if (!shouldContainerBeRestarted(c, pod, seen)) continue;
    const r = reasons.get(c.name);
    if (!r) continue;
    const s = statuses.get(c.name)!;
    if (s.state?.terminated) s.lastState = s.state;
    s.state = { waiting: { reason: r.reason, message: r.message || undefined } };
  }
  // Readiness and startup: running containers only.
  for (const c of containers) {
    const s = statuses.get(c.name)!;
    const running = !!s.state?.running;
    const id = s.containerID?.replace(/^docker:\/\//, '') ?? '';
    if (isInit) {
      s.ready = !!s.state?.terminated && s.state.terminated.exitCode === 0;
      continue;
    }
    const started = running ? (c.startupProbe ? input.started?.(id) === true : true) : false;
    s.started = running ? started : false;
    const ready = running && started ? (c.readinessProbe ? input.ready?.(id) === true : true) : false;
    s.ready = ready;
  }
  const out = containers.map((c) => statuses.get(c.name)!);
  // App container statuses are sorted by name (kubetypes.SortedContainerStatuses); init ones keep spec order.
  return isInit ? out : out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** kubecontainer.HasAnyRegularContainerStarted */
const anyAppStarted = (app: ApiContainerStatus[]): boolean => app.some((s) => !!s.state?.running || !!s.state?.terminated);

/** getPhase (pkg/kubelet/kubelet_pods.go). */
export function getPhase(
  pod: Pod,
  init: ApiContainerStatus[],
  app: ApiContainerStatus[],
  podIsTerminal = false,
): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  const spec = pod.spec!;
  let pendingInit = 0;
  let failedInit = 0;
  for (const c of spec.initContainers ?? []) {
    const s = init.find((x) => x.name === c.name);
    if (!s) {
      pendingInit++;
      continue;
    }
    if (s.state?.running) pendingInit++;
    else if (s.state?.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state?.waiting) {
      if (s.lastState?.terminated) {
        if (s.lastState.terminated.exitCode !== 0) failedInit++;
      } else pendingInit++;
    } else pendingInit++;
  }
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of spec.containers) {
    const s = app.find((x) => x.name === c.name);
    if (!s) {
      unknown++;
      continue;
    }
    if (s.state?.running) running++;
    else if (s.state?.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state?.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    } else unknown++;
  }
  if (failedInit > 0 && spec.restartPolicy === 'Never') return 'Failed';
  // Once a regular container has run, init containers restarting do not put the pod back to Pending.
  if ((pendingInit > 0 || failedInit > 0) && !anyAppStarted(app)) return 'Pending';
  if (waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running > 0 && unknown > 0) return 'Pending';
  if (stopped === spec.containers.length && unknown === 0) {
    // Static pods keep their phase (upstream TODO #116484); a deleted API pod ends terminal.
    if (podIsTerminal && pod.metadata?.annotations?.['kubernetes.io/config.source'] !== 'file') return stopped === succeeded ? 'Succeeded' : 'Failed';
    if (spec.restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (spec.restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function initializedCondition(pod: Pod, init: ApiContainerStatus[], app: ApiContainerStatus[], phase: string): PodCondition {
  if ((pod.spec?.initContainers?.length ?? 0) > 0 && anyAppStarted(app) && phase !== 'Succeeded') return { type: 'Initialized', status: 'True' };
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const c of pod.spec?.initContainers ?? []) {
    const s = init.find((x) => x.name === c.name);
    if (!s) unknown.push(c.name);
    else if (!(s.state?.terminated && s.state.terminated.exitCode === 0)) incomplete.push(c.name);
  }
  if (phase === 'Succeeded' && unknown.length === 0) return { type: 'Initialized', status: 'True', reason: 'PodCompleted' };
  const msgs: string[] = [];
  if (unknown.length) msgs.push(`containers with unknown status: ${fmtList(unknown)}`);
  if (incomplete.length) msgs.push(`containers with incomplete status: ${fmtList(incomplete)}`);
  if (msgs.length) return { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: msgs.join(', ') };
  return { type: 'Initialized', status: 'True' };
}

function containersReadyCondition(pod: Pod, app: ApiContainerStatus[], phase: string): PodCondition {
  // Containers of a failed pod may still be terminating: never ready.
  if (phase === 'Failed') return { type: 'ContainersReady', status: 'False', reason: 'PodFailed' };
  const unknown: string[] = [];
  const unready: string[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const s = app.find((x) => x.name === c.name);
    if (!s) unknown.push(c.name);
    else if (!s.ready) unready.push(c.name);
  }
  if (phase === 'Succeeded' && unknown.length === 0) return { type: 'ContainersReady', status: 'False', reason: 'PodCompleted' };
  const msgs: string[] = [];
  if (unknown.length) msgs.push(`containers with unknown status: ${fmtList(unknown)}`);
  if (unready.length) msgs.push(`containers with unready status: ${fmtList(unready)}`);
  if (msgs.length) return { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', message: msgs.join(', ') };
  return { type: 'ContainersReady', status: 'True' };
}

/** Keeps lastTransitionTime when a condition's status did not change (status manager semantics). */
function stamp(conds: PodCondition[], previous: PodCondition[] | undefined, now: number): PodCondition[] {
  return conds.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : iso(now);
    return { ...c, lastProbeTime: null as unknown as undefined, lastTransitionTime };
  });
}

export function computePodStatus(input: StatusInput): PodStatus {
  const { pod, seen, now } = input;
  const spec = pod.spec!;
  const hasInit = (spec.initContainers?.length ?? 0) > 0;
  const init = containerStatuses(input, spec.initContainers ?? [], true, hasInit);
  const app = containerStatuses(input, spec.containers, false, hasInit);
  let phase: PodStatus['phase'] = getPhase(pod, init, app, input.terminal);
  // A terminal phase never goes back (upstream: "pod is terminal, phase cannot change").
  const prevPhase = input.previous?.phase;
  if ((prevPhase === 'Succeeded' || prevPhase === 'Failed') && phase !== prevPhase) phase = prevPhase;
  if (input.podReason) phase = input.podReason.phase;
  const containersReady = containersReadyCondition(pod, app, phase);
  const ready: PodCondition = { ...containersReady, type: 'Ready' };
  const conditions = stamp(
    [initializedCondition(pod, init, app, phase), ready, containersReady, { type: 'PodScheduled', status: 'True' }],
    input.previous?.conditions,
    now,
  );
  const sandbox = seen.sandboxes.find((s) => s.state === 'SANDBOX_READY') ?? seen.sandboxes[0];
  const podIP = isHostNetwork(pod) ? input.hostIP : sandbox?.network.ip || input.previous?.podIP;
  const status: PodStatus = {
    phase,
    conditions,
    hostIP: input.hostIP,
    podIP: podIP || undefined,
    podIPs: podIP ? [{ ip: podIP }, ...(sandbox?.network.additionalIps ?? []).map((ip) => ({ ip }))] : undefined,
    startTime: input.previous?.startTime ?? iso(now),
    qosClass: getQOSClass(pod),
    containerStatuses: app,
  };
  if (hasInit) status.initContainerStatuses = init;
  if (input.podReason) {
    status.reason = input.podReason.reason;
    status.message = input.podReason.message;
  }
  return status;
}
