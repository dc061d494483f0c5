// ConfigMap and Secret data for env and volumes, read from the API server with a short cache
// (upstream uses per-object watches; a TTL cache is enough for the node identity's per-object GETs).
import type { ConfigMap, Secret } from 'kubernetes-types/core/v1';
import { resources, type KubeApi } from '../../kube/index.ts';
import type { ConfigDataSource } from '../env.ts';

export class ApiConfigData implements ConfigDataSource {
  private readonly api: Pick<KubeApi, 'get'>;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, { at: number; data: Record<string, string> }>();
  constructor(api: Pick<KubeApi, 'get'>, ttlMs = 10_000) {
    this.api = api;
    this.ttlMs = ttlMs;
  }
  private async fetch(kind: 'configmaps' | 'secrets', namespace: string, name: string): Promise<Record<string, string>> {
    const key = `${kind}/${namespace}/${name}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.data;
    const obj = await this.api.get<ConfigMap | Secret>(resources[kind], name, { namespace });
    let data: Record<string, string>;
    if (kind === 'configmaps') {
      const cm = obj as ConfigMap;
      data = { ...(cm.data ?? {}) };
      for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
    } else {
      const s = obj as Secret;
      // Decoded here: env and volume consumers get plain strings (binary secret values are not supported yet).
      data = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
    }
    this.cache.set(key, { at: Date.now(), data });
    return data;
  }
  configMap(namespace: string, name: string): Promise<Record<string, string>> {
    return this.fetch('configmaps', namespace, name);
  }
  secret(namespace: string, name: string): Promise<Record<string, string>> {
    return this.fetch('secrets', namespace, name);
  }
}
