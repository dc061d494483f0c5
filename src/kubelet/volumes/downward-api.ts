// downwardAPI volume payload (pkg/volume/downwardapi/downwardapi.go CollectData, fieldpath.FormatMap): fieldRef
// items from the pod's metadata, resourceFieldRef items from the named container's resources with node
// allocatable for unset limits (the same code as the env vars: env.ts resourceFieldValue).
import type { DownwardAPIVolumeFile, Pod } from 'kubernetes-types/core/v1';
import type { FileProjection } from './atomic-writer.ts';
import { resourceFieldValue, type NodeAllocatable } from '../runtime/env.ts';

const fmtMap = (o: Record<string, string> | undefined): string =>
  Object.keys(o ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(o![k])}`)
    .join('\n');

function fieldValue(pod: Pod, f: string): string {
  const m = pod.metadata ?? {};
  if (f === 'metadata.labels') return fmtMap(m.labels);
  if (f === 'metadata.annotations') return fmtMap(m.annotations);
  if (f === 'metadata.name') return m.name ?? '';
  if (f === 'metadata.namespace') return m.namespace ?? '';
  if (f === 'metadata.uid') return m.uid ?? '';
  const one = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(f);
  if (one) return (one[1] === 'labels' ? m.labels : m.annotations)?.[one[2]!] ?? '';
  throw new Error(`unsupported fieldPath ${JSON.stringify(f)}`);
}

/**
 * Path → content for the items of a downwardAPI volume (or projection source). `alloc` is the node's allocatable,
 * needed only by resourceFieldRef items whose container has no such limit. Throws for unsupported fields.
 */
export function downwardPayload(pod: Pod, items: DownwardAPIVolumeFile[], defaultMode: number, alloc?: NodeAllocatable): Map<string, FileProjection> {
  const out = new Map<string, FileProjection>();
  for (const item of items) {
    let value: string;
    const f = item.fieldRef?.fieldPath;
    if (f) value = fieldValue(pod, f);
    else if (item.resourceFieldRef) {
      // The API requires containerName in volumes; there is no "current container" to fall back to.
      value = resourceFieldValue(item.resourceFieldRef, pod, undefined, alloc ?? { cpuMillis: NaN, memoryBytes: NaN, ephemeralStorageBytes: NaN });
      if (value === 'NaN') throw new Error(`downwardAPI item ${JSON.stringify(item.path)}: node allocatable is not known`);
    } else throw new Error(`downwardAPI item ${JSON.stringify(item.path)}: neither fieldRef nor resourceFieldRef`);
    out.set(item.path, { data: Buffer.from(value, 'utf8'), mode: item.mode ?? defaultMode });
  }
  return out;
}
