// The pod-action planner: desired Pod + what the runtime holds → what to do, as a pure function.
// Follows pkg/kubelet/kuberuntime/kuberuntime_manager.go computePodActions / podSandboxChanged /
// findNextInitContainerToRun and kuberuntime_container.go's doBackOff, so restart, init-container and
// sandbox semantics match upstream. The executor (pod-sync.ts) only carries the actions out.
import { createHash } from 'node:crypto';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import type { ContainerStatus } from '../../cri/index.ts';
import { computeBackoff, formatGoDuration, type BackoffPolicy } from './crash-loop-backoff.ts';
import { findByName, hashOf, nameOf, restartCountOf, type ObservedPod } from './observed.ts';

export type ContainerKind = 'init' | 'app';

export interface ContainerToStart {
  spec: Container;
  kind: ContainerKind;
  restartCount: number;
  /** Back-off entry to record on the new container (undefined for a first start). */
  backoff?: { durationMs: number; updatedAt: number };
}

export interface ContainerToKill {
  id: string;
  name: string;
  /** Human message, as upstream logs / events it ("Container app definition changed, will be restarted"). */
  message: string;
  reason: 'SpecChanged' | 'LivenessProbe' | 'StartupProbe' | 'Unknown' | 'Created';
}

export interface BackingOff {
  name: string;
  kind: ContainerKind;
  /** "back-off 20s restarting failed container=app pod=web_default(uid)" */
  message: string;
  retryInMs: number;
}

export interface PodActions {
  /** Stop every container and the sandbox (before a new sandbox, or because nothing should run). */
  killPod: boolean;
  createSandbox: boolean;
  /** Sandbox to run containers in (when not creating one), or the one being replaced. */
  sandboxId?: string;
  /** Attempt number of the sandbox to create. */
  attempt: number;
  start: ContainerToStart[];
  kill: ContainerToKill[];
  backingOff: BackingOff[];
  /** Dead containers and sandboxes to remove (upstream GC: keep the newest dead instance per container; see computeGarbage). */
  removeContainers: string[];
  removeSandboxes: string[];
  /** Ask for another sync after this long (back-off expiry), if set. */
  requeueAfterMs?: number;
}

export type ProbeVerdict = (containerId: string) => 'failure' | undefined;

export interface PlanInput {
  pod: Pod;
  seen: ObservedPod;
  now: number;
  backoff: BackoffPolicy;
  /** Liveness / startup probe results by container id (undefined = no failure known). */
  liveness?: ProbeVerdict;
  startup?: ProbeVerdict;
}

/** Stable hash of a container spec (changes → container is restarted). */
export function containerHash(c: Container): string {
  return createHash('sha256').update(stableStringify(c)).digest('hex').slice(0, 8);
}

export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
}

export const isHostNetwork = (pod: Pod): boolean => pod.spec?.hostNetwork === true;
const shouldRestartOnFailure = (pod: Pod): boolean => pod.spec?.restartPolicy !== 'Never';

/** kubecontainer.ShouldContainerBeRestarted */
export function shouldContainerBeRestarted(c: Container, pod: Pod, seen: ObservedPod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  const s = findByName(seen, c.name);
  if (!s) return true;
  if (s.state === 'CONTAINER_RUNNING') return false;
  if (s.state === 'CONTAINER_UNKNOWN' || s.state === 'CONTAINER_CREATED') return true;
  if (pod.spec?.restartPolicy === 'Never') return false;
  if (pod.spec?.restartPolicy === 'OnFailure' && s.exitCode === 0) return false;
  return true;
}

const containerSucceeded = (c: Container, seen: ObservedPod): boolean => {
  const s = findByName(seen, c.name);
  return !!s && s.state === 'CONTAINER_EXITED' && s.exitCode === 0;
};

const isInitContainerFailed = (s: ContainerStatus): boolean =>
  (s.state === 'CONTAINER_EXITED' && (s.exitCode !== 0 || s.reason === 'OOMKilled')) || s.state === 'CONTAINER_UNKNOWN';

/** findNextInitContainerToRun: [last status if failed, next init container, done]. */
export function findNextInitContainerToRun(
  pod: Pod,
  seen: ObservedPod,
): { lastStatus?: ContainerStatus; next?: Container; done: boolean } {
  const inits = pod.spec?.initContainers ?? [];
  if (inits.length === 0) return { done: true };
  for (const c of pod.spec?.containers ?? []) {
    if (findByName(seen, c.name)?.state === 'CONTAINER_RUNNING') return { done: true };
  }
  for (let i = inits.length - 1; i >= 0; i--) {
    const s = findByName(seen, inits[i]!.name);
    if (s && isInitContainerFailed(s)) return { lastStatus: s, next: inits[i]!, done: false };
  }
  for (let i = inits.length - 1; i >= 0; i--) {
    const s = findByName(seen, inits[i]!.name);
    if (!s) continue;
    if (s.state === 'CONTAINER_RUNNING') return { done: false };
    if (s.state === 'CONTAINER_EXITED') {
      if (i === inits.length - 1) return { done: true };
      return { next: inits[i + 1]!, done: false };
    }
    // created / unknown: (re)start it
    return { lastStatus: s, next: inits[i]!, done: false };
  }
  return { next: inits[0]!, done: false };
}

/** podSandboxChanged: [create, attempt, sandboxId]. */
export function podSandboxChanged(pod: Pod, seen: ObservedPod): { create: boolean; attempt: number; sandboxId?: string } {
  const latest = seen.sandboxes[0];
  if (!latest) return { create: true, attempt: 0 };
  const ready = seen.sandboxes.filter((s) => s.state === 'SANDBOX_READY').length;
  const next = latest.metadata.attempt + 1;
  if (ready > 1 || latest.state !== 'SANDBOX_READY') return { create: true, attempt: next, sandboxId: latest.id };
  const hostNet = latest.linux?.namespaces?.network === 'NODE';
  if (hostNet !== isHostNetwork(pod)) return { create: true, attempt: next, sandboxId: latest.id };
  if (!isHostNetwork(pod) && !latest.network.ip) return { create: true, attempt: next, sandboxId: latest.id };
  return { create: false, attempt: latest.metadata.attempt, sandboxId: latest.id };
}

const podRef = (pod: Pod): string => `${pod.metadata?.name}_${pod.metadata?.namespace}(${pod.metadata?.uid})`;

function toStart(spec: Container, kind: ContainerKind, seen: ObservedPod): Omit<ContainerToStart, 'backoff'> {
  const last = findByName(seen, spec.name);
  return { spec, kind, restartCount: last ? restartCountOf(last) + 1 : 0 };
}

/**
 * Upstream GC (MaxPerPodContainer=1): keep the running instance and the newest dead one per container name. While
 * that dead instance is also the newest instance of its name (nothing newer seen yet), the dead one before it is kept
 * too: the status published so far names it as lastState until a status with a newer instance replaces it, so
 * removing it in the same sync left `kubectl logs --previous` pointing at a removed container. It goes in the first
 * sync that sees a newer instance (upstream's periodic container GC removes it within its 1-minute period).
 */
export function computeGarbage(seen: ObservedPod, keepSandboxId: string | undefined): { containers: string[]; sandboxes: string[] } {
  const deadKept = new Map<string, number>();
  const newestIsDead = new Map<string, boolean>();
  const containers: string[] = [];
  const keptSandboxes = new Set<string>();
  for (const c of seen.containers) {
    const n = nameOf(c);
    // seen.containers is newest first: the first instance of a name is its newest.
    if (!newestIsDead.has(n)) newestIsDead.set(n, c.state === 'CONTAINER_EXITED');
    if (c.state === 'CONTAINER_RUNNING') {
      keptSandboxes.add(c.podSandboxId);
      continue;
    }
    if (c.state !== 'CONTAINER_EXITED') continue;
    const kept = deadKept.get(n) ?? 0;
    if (kept < (newestIsDead.get(n) ? 2 : 1)) {
      deadKept.set(n, kept + 1);
      keptSandboxes.add(c.podSandboxId);
      continue;
    }
    containers.push(c.id);
  }
  const latest = seen.sandboxes[0]?.id;
  const sandboxes = seen.sandboxes
    .filter((s) => s.state !== 'SANDBOX_READY' && s.id !== latest && s.id !== keepSandboxId && !keptSandboxes.has(s.id))
    .map((s) => s.id);
  return { containers, sandboxes };
}

export function computePodActions(input: PlanInput): PodActions {
  const { pod, seen, now } = input;
  const spec = pod.spec!;
  const sb = podSandboxChanged(pod, seen);
  const actions: PodActions = {
    killPod: sb.create,
    createSandbox: sb.create,
    sandboxId: sb.sandboxId,
    attempt: sb.attempt,
    start: [],
    kill: [],
    backingOff: [],
    removeContainers: [],
    removeSandboxes: [],
  };
  const candidates: Omit<ContainerToStart, 'backoff'>[] = [];

  if (sb.create) {
    if (!shouldRestartOnFailure(pod) && sb.attempt !== 0 && seen.containers.length !== 0) {
      actions.createSandbox = false;
      return finish(actions, candidates, input);
    }
    const apps = spec.containers.filter((c) => !(spec.restartPolicy === 'OnFailure' && containerSucceeded(c, seen)));
    if (apps.length === 0 && findNextInitContainerToRun(pod, seen).done) {
      actions.createSandbox = false;
      return finish(actions, candidates, input);
    }
    const firstInit = spec.initContainers?.[0];
    if (firstInit) candidates.push(toStart(firstInit, 'init', seen));
    else for (const c of apps) candidates.push(toStart(c, 'app', seen));
    return finish(actions, candidates, input);
  }

  const init = findNextInitContainerToRun(pod, seen);
  if (!init.done) {
    if (init.next) {
      const failed = init.lastStatus !== undefined && isInitContainerFailed(init.lastStatus);
      if (failed && !shouldRestartOnFailure(pod)) {
        actions.killPod = true;
      } else {
        const ls = init.lastStatus;
        if (ls && (ls.state === 'CONTAINER_UNKNOWN' || ls.state === 'CONTAINER_CREATED'))
          actions.kill.push({ id: ls.id, name: nameOf(ls), reason: 'Unknown', message: `Init container ${nameOf(ls)} is in an unknown state, will be restarted` });
        candidates.push(toStart(init.next, 'init', seen));
      }
    }
    return finish(actions, candidates, input);
  }

  let keep = 0;
  for (const c of spec.containers) {
    const s = findByName(seen, c.name);
    if (!s || s.state !== 'CONTAINER_RUNNING') {
      if (shouldContainerBeRestarted(c, pod, seen)) {
        candidates.push(toStart(c, 'app', seen));
        if (s && (s.state === 'CONTAINER_UNKNOWN' || s.state === 'CONTAINER_CREATED'))
          actions.kill.push({ id: s.id, name: c.name, reason: s.state === 'CONTAINER_CREATED' ? 'Created' : 'Unknown', message: `Container ${c.name} was never started, will be restarted` });
      }
      continue;
    }
    let restart = shouldRestartOnFailure(pod);
    let reason: ContainerToKill['reason'];
    let message: string;
    if (hashOf(s) !== undefined && hashOf(s) !== containerHash(c)) {
      reason = 'SpecChanged';
      message = `Container ${c.name} definition changed`;
      restart = true;
    } else if (input.liveness?.(s.id) === 'failure') {
      reason = 'LivenessProbe';
      message = `Container ${c.name} failed liveness probe`;
    } else if (input.startup?.(s.id) === 'failure') {
      reason = 'StartupProbe';
      message = `Container ${c.name} failed startup probe`;
    } else {
      keep++;
      continue;
    }
    if (restart) {
      message += ', will be restarted';
      candidates.push(toStart(c, 'app', { ...seen, containers: seen.containers }));
    }
    actions.kill.push({ id: s.id, name: c.name, reason, message });
  }
  if (keep === 0 && candidates.length === 0) actions.killPod = true;
  return finish(actions, candidates, input);
}

/** Applies crash-loop back-off to the candidates (doBackOff) and computes garbage. */
function finish(actions: PodActions, candidates: Omit<ContainerToStart, 'backoff'>[], input: PlanInput): PodActions {
  const { seen, now, pod } = input;
  for (const c of candidates) {
    // A container being killed right now (spec change, liveness) restarts without waiting: its exit is ours.
    const beingKilled = actions.kill.some((k) => k.name === c.spec.name && (k.reason === 'SpecChanged' || k.reason === 'Created'));
    const lastExited = seen.containers.find((s) => nameOf(s) === c.spec.name && s.state === 'CONTAINER_EXITED');
    const d = computeBackoff(beingKilled ? undefined : lastExited, now, input.backoff);
    if (d.inBackoff) {
      actions.backingOff.push({
        name: c.spec.name,
        kind: c.kind,
        message: `back-off ${formatGoDuration(d.durationMs)} restarting failed container=${c.spec.name} pod=${podRef(pod)}`,
        retryInMs: d.remainingMs,
      });
      actions.requeueAfterMs = Math.min(actions.requeueAfterMs ?? Infinity, d.remainingMs);
      continue;
    }
    actions.start.push(d.next ? { ...c, backoff: d.next } : c);
  }
  // Never start a container in a sandbox we are about to kill without creating a new one.
  if (actions.killPod && !actions.createSandbox) actions.start = [];
  const g = computeGarbage(seen, actions.createSandbox ? undefined : actions.sandboxId);
  const killed = new Set(actions.kill.map((k) => k.id));
  actions.removeContainers = [...g.containers.filter((id) => !killed.has(id))];
  actions.removeSandboxes = g.sandboxes;
  return actions;
}
