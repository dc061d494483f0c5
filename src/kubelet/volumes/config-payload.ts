// configMap/secret payloads (pkg/volume/configmap MakePayload, pkg/volume/secret MakePayload).
import type { ConfigValue } from '../runtime/env.ts';
import type { FileProjection } from './atomic-writer.ts';

const toBuffer = (v: ConfigValue): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));

/** configmap.go / secret.go MakePayload. */
export function configPayload(
  kind: 'configmap' | 'secret',
  data: Record<string, ConfigValue>,
  items: { key: string; path: string; mode?: number }[] | undefined,
  defaultMode: number,
  optional: boolean,
): Map<string, FileProjection> {
  const out = new Map<string, FileProjection>();
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) out.set(k, { data: toBuffer(v), mode: defaultMode });
    return out;
  }
  for (const it of items) {
    const v = Object.hasOwn(data, it.key) ? data[it.key] : undefined;
    if (v === undefined) {
      if (optional) continue;
      throw new Error(kind === 'configmap' ? `configmap references non-existent config key: ${it.key}` : `references non-existent secret key: ${it.key}`);
    }
    out.set(it.path, { data: toBuffer(v), mode: it.mode ?? defaultMode });
  }
  return out;
}
