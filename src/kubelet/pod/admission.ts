// Pod admission on the node (pkg/kubelet/lifecycle/predicate.go + the scheduler's GeneralPredicates):
// a pod that does not fit is rejected with phase Failed and upstream's reason and message, never run.
import type { Node, NodeSelectorRequirement, NodeSelectorTerm, Pod } from 'kubernetes-types/core/v1';
import { cpuMillis, bytes, parseQuantity } from './quantity.ts';

export type AdmitResult = { admit: true } | { admit: false; reason: string; message: string };

export interface NodeResources {
  cpuMillis: number;
  memoryBytes: number;
  pods: number;
  ephemeralStorageBytes?: number;
}

/** Effective requests of a pod: max(sum of app containers, max of init containers), as the scheduler computes them. */
export function podRequests(pod: Pod): { cpuMillis: number; memoryBytes: number; ephemeralStorageBytes: number } {
  const sum = { cpuMillis: 0, memoryBytes: 0, ephemeralStorageBytes: 0 };
  for (const c of pod.spec?.containers ?? []) {
    const r = c.resources?.requests ?? {};
    sum.cpuMillis += cpuMillis(r.cpu);
    sum.memoryBytes += bytes(r.memory);
    sum.ephemeralStorageBytes += bytes(r['ephemeral-storage']);
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const r = c.resources?.requests ?? {};
    sum.cpuMillis = Math.max(sum.cpuMillis, cpuMillis(r.cpu));
    sum.memoryBytes = Math.max(sum.memoryBytes, bytes(r.memory));
    sum.ephemeralStorageBytes = Math.max(sum.ephemeralStorageBytes, bytes(r['ephemeral-storage']));
  }
  for (const [k, v] of Object.entries(pod.spec?.overhead ?? {})) {
    if (k === 'cpu') sum.cpuMillis += cpuMillis(v);
    if (k === 'memory') sum.memoryBytes += bytes(v);
  }
  return sum;
}

function matchRequirement(labels: Record<string, string>, r: NodeSelectorRequirement): boolean {
  const v = labels[r.key];
  const vals = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return v !== undefined && vals.includes(v);
    case 'NotIn':
      return v === undefined || !vals.includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    case 'Gt':
    case 'Lt': {
      if (v === undefined || vals.length !== 1) return false;
      const a = Number(v);
      const b = Number(vals[0]);
      if (!Number.isInteger(a) || !Number.isInteger(b)) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

function matchTerm(node: Node, t: NodeSelectorTerm): boolean {
  const labels = node.metadata?.labels ?? {};
  const exprs = t.matchExpressions ?? [];
  const fields = t.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  return (
    exprs.every((r) => matchRequirement(labels, r)) &&
    fields.every((r) => matchRequirement({ 'metadata.name': node.metadata?.name ?? '' }, r))
  );
}

/** nodeSelector and required node affinity (pkg/scheduler/framework/plugins/nodeaffinity). */
export function podMatchesNode(pod: Pod, node: Node): boolean {
  const labels = node.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const req = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (req && !req.nodeSelectorTerms.some((t) => matchTerm(node, t))) return false;
  return true;
}

function hostPorts(pod: Pod): string[] {
  const out: string[] = [];
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])])
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${p.protocol ?? 'TCP'}/${p.hostIP || '0.0.0.0'}/${p.hostPort}`);
  return out;
}

function portsConflict(a: string, b: string): boolean {
  const [pa, ia, na] = a.split('/');
  const [pb, ib, nb] = b.split('/');
  return pa === pb && na === nb && (ia === ib || ia === '0.0.0.0' || ib === '0.0.0.0');
}

/**
 * Decides whether `pod` may run next to the already admitted, non-terminal `others` on `node` with
 * `allocatable`. Pure.
 */
export function admitPod(pod: Pod, others: Pod[], node: Node | undefined, allocatable: NodeResources): AdmitResult {
  const nodeName = node?.metadata?.name;
  if (node && pod.spec?.nodeName && nodeName && pod.spec.nodeName !== nodeName)
    return { admit: false, reason: 'HostName', message: 'Predicate HostName failed' };
  if (node && !podMatchesNode(pod, node)) return { admit: false, reason: 'NodeAffinity', message: 'Predicate NodeAffinity failed' };
  const used = { cpuMillis: 0, memoryBytes: 0, ephemeralStorageBytes: 0 };
  for (const o of others) {
    const r = podRequests(o);
    used.cpuMillis += r.cpuMillis;
    used.memoryBytes += r.memoryBytes;
    used.ephemeralStorageBytes += r.ephemeralStorageBytes;
  }
  if (others.length + 1 > allocatable.pods)
    return { admit: false, reason: 'OutOfpods', message: `Node didn't have enough resource: pods, requested: 1, used: ${others.length}, capacity: ${allocatable.pods}` };
  const want = podRequests(pod);
  const checks: [string, number, number, number][] = [
    ['cpu', want.cpuMillis, used.cpuMillis, allocatable.cpuMillis],
    ['memory', want.memoryBytes, used.memoryBytes, allocatable.memoryBytes],
  ];
  if (allocatable.ephemeralStorageBytes !== undefined)
    checks.push(['ephemeral-storage', want.ephemeralStorageBytes, used.ephemeralStorageBytes, allocatable.ephemeralStorageBytes]);
  for (const [name, req, u, cap] of checks)
    if (req > 0 && req + u > cap)
      return { admit: false, reason: `OutOf${name}`, message: `Node didn't have enough resource: ${name}, requested: ${req}, used: ${u}, capacity: ${cap}` };
  const mine = hostPorts(pod);
  const taken = others.flatMap(hostPorts);
  if (mine.some((p) => taken.some((t) => portsConflict(p, t)))) return { admit: false, reason: 'NodePorts', message: 'Predicate NodePorts failed' };
  return { admit: true };
}

/** Node allocatable as numbers. */
export function allocatableOf(node: Node | undefined, fallback: NodeResources): NodeResources {
  const a = node?.status?.allocatable;
  if (!a) return fallback;
  return {
    cpuMillis: a.cpu !== undefined ? cpuMillis(a.cpu) : fallback.cpuMillis,
    memoryBytes: a.memory !== undefined ? bytes(a.memory) : fallback.memoryBytes,
    pods: a.pods !== undefined ? Math.floor(parseQuantity(a.pods)) : fallback.pods,
    ephemeralStorageBytes: a['ephemeral-storage'] !== undefined ? bytes(a['ephemeral-storage']) : fallback.ephemeralStorageBytes,
  };
}
