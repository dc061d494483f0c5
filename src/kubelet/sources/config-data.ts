// ConfigMap and Secret data for env and volumes, read from the API server with a short cache
// (upstream uses per-object watches; a TTL cache is enough for the node identity's per-object GETs).
// Bounded as upstream's cache-based secret/configMap managers: an object is kept only for the pods that
// use it (dropped at releasePod) and never longer than the TTL; a Secret fetched for no pod is not kept.
// Values stay bytes: base64 `data`/`binaryData` are decoded to Buffers, never through UTF-8.
import type { ConfigMap, Secret } from 'kubernetes-types/core/v1';
import { resources, type KubeApi } from '../../kube/index.ts';
import { type Clock, systemClock } from '../../lib/index.ts';
import type { ConfigDataSource, ConfigValue } from '../runtime/env.ts';

type Kind = 'configmaps' | 'secrets';
interface Entry {
  at: number;
  data: Record<string, ConfigValue>;
  users: Set<string>;
}

/** Object → key → value, bytes for base64 fields (pure; exported for tests). */
export function decodeConfigData(kind: Kind, obj: ConfigMap | Secret): Record<string, ConfigValue> {
  const data: Record<string, ConfigValue> = {};
  if (kind === 'configmaps') {
    const cm = obj as ConfigMap;
    for (const [k, v] of Object.entries(cm.data ?? {})) data[k] = v;
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
  } else {
    const s = obj as Secret;
    for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64');
    for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
  }
  return data;
}

export class ApiConfigData implements ConfigDataSource {
  private readonly api: Pick<KubeApi, 'get'>;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, Entry>();
  private readonly clock: Clock;
  constructor(api: Pick<KubeApi, 'get'>, ttlMs = 10_000, clock: Clock = systemClock) {
    this.api = api;
    this.ttlMs = ttlMs;
    this.clock = clock;
  }

  /** Number of objects held (for tests and metrics). */
  get size(): number {
    return this.cache.size;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.cache) if (now - e.at >= this.ttlMs || now < e.at) this.cache.delete(k);
  }

  private async fetch(kind: Kind, namespace: string, name: string, podUid: string | undefined): Promise<Record<string, ConfigValue>> {
    const key = `${kind}/${namespace}/${name}`;
    const now = this.clock.now();
    this.sweep(now);
    const hit = this.cache.get(key);
    if (hit) {
      if (podUid) hit.users.add(podUid);
      return hit.data;
    }
    const obj = await this.api.get<ConfigMap | Secret>(resources[kind], name, { namespace });
    const data = decodeConfigData(kind, obj);
    if (podUid || kind === 'configmaps') this.cache.set(key, { at: this.clock.now(), data, users: new Set(podUid ? [podUid] : []) });
    return data;
  }

  configMap(namespace: string, name: string, podUid?: string): Promise<Record<string, ConfigValue>> {
    return this.fetch('configmaps', namespace, name, podUid);
  }

  secret(namespace: string, name: string, podUid?: string): Promise<Record<string, ConfigValue>> {
    return this.fetch('secrets', namespace, name, podUid);
  }

  releasePod(podUid: string): void {
    for (const [k, e] of this.cache) {
      if (!e.users.delete(podUid)) continue;
      if (e.users.size === 0) this.cache.delete(k);
    }
  }
}
