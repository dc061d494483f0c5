// Container environment as the kubelet builds it (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables):
// envFrom first, then service links, then env in order, each value expanded with $(VAR) references to
// the ones before it (third_party/forked/golang/expansion).
import type { Container, EnvVar, Pod } from 'kubernetes-types/core/v1';
import { cpuMillis, bytes } from '../pod/quantity.ts';

/** A ConfigMap `data` value (string) or `binaryData`/Secret value (bytes, never decoded as text). */
export type ConfigValue = string | Uint8Array;

/**
 * Supplies ConfigMap/Secret data; throws NotFoundError for missing objects. Standalone berth has none.
 * `podUid` names the pod that uses the object: a cache may keep the object only while such a pod is
 * known, and drops it at releasePod (secret plaintext is never kept for pods that are gone).
 */
export interface ConfigDataSource {
  configMap(namespace: string, name: string, podUid?: string): Promise<Record<string, ConfigValue>>;
  secret(namespace: string, name: string, podUid?: string): Promise<Record<string, ConfigValue>>;
  /** The pod is gone from this node: forget what was cached for it. Idempotent. */
  releasePod?(podUid: string): void;
}

const asText = (v: ConfigValue): string => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));

export class EnvConfigError extends Error {}

/** Expands $(VAR) with `lookup`; `$$` escapes; unknown references are left as written. */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
      continue;
    }
    if (next === '(') {
      const end = input.indexOf(')', i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      const v = lookup(name);
      out += v ?? `$(${name})`;
      i = end;
      continue;
    }
    out += ch;
  }
  return out;
}

export interface EnvContext {
  pod: Pod;
  container: Container;
  hostIP: string;
  podIP: string;
  nodeName: string;
  serviceEnv: Record<string, string>;
  data: ConfigDataSource | undefined;
  /** Node allocatable, used when a resourceFieldRef asks for a limit that is not set. */
  nodeAllocatable: NodeAllocatable;
}

function fieldRef(path: string, ctx: EnvContext): string {
  const m = ctx.pod.metadata ?? {};
  switch (path) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'spec.nodeName':
      return ctx.nodeName;
    case 'spec.serviceAccountName':
      return ctx.pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return ctx.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return ctx.podIP;
  }
  const lab = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (lab) return (lab[1] === 'labels' ? m.labels : m.annotations)?.[lab[2]!] ?? '';
  throw new EnvConfigError(`unsupported fieldRef ${JSON.stringify(path)}`);
}

/** Node allocatable: what an unset limit stands for in a resourceFieldRef (MergeContainerResourceLimits). */
export interface NodeAllocatable {
  cpuMillis: number;
  memoryBytes: number;
  ephemeralStorageBytes?: number;
}

/**
 * The value of a resourceFieldRef, for env vars and downwardAPI volume files alike (pkg/api/v1/resource/helpers.go
 * ExtractResourceValueByContainerNameAndNodeAllocatable): the named container (app or init) or `fallback`, a limit
 * that is not set taken from node allocatable, the value divided by the divisor (default 1) and rounded up.
 */
export function resourceFieldValue(
  ref: { resource: string; divisor?: string | number; containerName?: string },
  pod: Pod,
  fallback: Container | undefined,
  alloc: NodeAllocatable,
): string {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const c = (ref.containerName ? all.find((x) => x.name === ref.containerName) : undefined) ?? fallback;
  if (!c) throw new EnvConfigError(`container ${ref.containerName ?? ''} not found`);
  const dot = ref.resource.indexOf('.');
  const kind = ref.resource.slice(0, dot);
  const res = ref.resource.slice(dot + 1);
  const known = ['cpu', 'memory', 'ephemeral-storage'].includes(res) || res.startsWith('hugepages-');
  if ((kind !== 'limits' && kind !== 'requests') || !known)
    throw new EnvConfigError(`unsupported container resource : ${ref.resource}`);
  const q = c.resources?.[kind]?.[res];
  // A zero (or absent) divisor means 1, as upstream.
  if (res === 'cpu') {
    const milli = q !== undefined ? cpuMillis(q) : kind === 'limits' ? alloc.cpuMillis : 0;
    const div = cpuMillis(ref.divisor) || 1000;
    return String(Math.ceil(milli / div));
  }
  const fromAlloc = res === 'memory' ? alloc.memoryBytes : res === 'ephemeral-storage' ? (alloc.ephemeralStorageBytes ?? 0) : 0;
  const b = q !== undefined ? bytes(q) : kind === 'limits' ? fromAlloc : 0;
  const div = bytes(ref.divisor) || 1;
  return String(Math.ceil(b / div));
}

export async function makeEnvironment(ctx: EnvContext): Promise<{ key: string; value: string }[]> {
  const ns = ctx.pod.metadata?.namespace ?? 'default';
  const vars = new Map<string, string>();
  for (const from of ctx.container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const data = await refData(ctx, ns, from.configMapRef ? 'configmap' : 'secret', ref.name ?? '', ref.optional ?? false);
    for (const [k, v] of Object.entries(data ?? {})) vars.set((from.prefix ?? '') + k, v);
  }
  const links = ctx.pod.spec?.enableServiceLinks !== false;
  for (const [k, v] of Object.entries(ctx.serviceEnv)) {
    if (vars.has(k)) continue;
    if (links || k.startsWith('KUBERNETES_')) vars.set(k, v);
  }
  const lookup = (n: string): string | undefined => vars.get(n);
  for (const e of ctx.container.env ?? []) {
    const v = await envValue(e, ctx, lookup, ns);
    if (v !== undefined) vars.set(e.name, v);
  }
  return [...vars].map(([key, value]) => ({ key, value }));
}

/**
 * The values a container's environment takes from Secrets (env secretKeyRef, envFrom secretRef): what no message may
 * echo (a runtime error quotes a program name or argument expanded from them with $(VAR)). Missing ones are skipped;
 * never throws. Reads through the same cached data source as makeEnvironment.
 */
export async function secretEnvValues(ctx: Pick<EnvContext, 'pod' | 'container' | 'data'>): Promise<string[]> {
  const ns = ctx.pod.metadata?.namespace ?? 'default';
  const uid = ctx.pod.metadata?.uid;
  const read = async (name: string): Promise<Record<string, ConfigValue>> => {
    if (!ctx.data || !name) return {};
    return ctx.data.secret(ns, name, uid).catch(() => ({}));
  };
  const out: string[] = [];
  for (const from of ctx.container.envFrom ?? []) if (from.secretRef) out.push(...Object.values(await read(from.secretRef.name ?? '')).map(asText));
  for (const e of ctx.container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    const v = ref ? (await read(ref.name ?? ''))[ref.key] : undefined;
    if (v !== undefined) out.push(asText(v));
  }
  return out;
}

/** The data of a referenced ConfigMap/Secret; undefined when it is missing and the reference optional. */
async function refData(ctx: EnvContext, ns: string, kind: 'configmap' | 'secret', name: string, optional: boolean): Promise<Record<string, string> | undefined> {
  try {
    if (!ctx.data) throw new Error('no API server (standalone berth)');
    const uid = ctx.pod.metadata?.uid;
    const data = await (kind === 'configmap' ? ctx.data.configMap(ns, name, uid) : ctx.data.secret(ns, name, uid));
    // Environment values are text (upstream: string(secret.Data[key])).
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, asText(v)]));
  } catch (err) {
    if (optional) return undefined;
    throw new EnvConfigError(`${kind} "${name}" not found`, { cause: err });
  }
}

/** undefined: an optional reference to something missing (the variable is left out, as upstream). */
async function envValue(e: EnvVar, ctx: EnvContext, lookup: (n: string) => string | undefined, ns: string): Promise<string | undefined> {
  if (e.value !== undefined) return expand(e.value, lookup);
  const vf = e.valueFrom;
  if (!vf) return '';
  if (vf.fieldRef) return fieldRef(vf.fieldRef.fieldPath, ctx);
  if (vf.resourceFieldRef) return resourceFieldValue(vf.resourceFieldRef, ctx.pod, ctx.container, ctx.nodeAllocatable);
  const keyRef = vf.configMapKeyRef ?? vf.secretKeyRef;
  if (keyRef) {
    const kind = vf.configMapKeyRef ? 'configmap' : 'secret';
    const data = await refData(ctx, ns, kind, keyRef.name ?? '', keyRef.optional ?? false);
    if (!data) return undefined;
    const v = data[keyRef.key];
    if (v === undefined) {
      if (keyRef.optional) return undefined;
      throw new EnvConfigError(`couldn't find key ${keyRef.key} in ${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${ns}/${keyRef.name}`);
    }
    return v;
  }
  return '';
}
