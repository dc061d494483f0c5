// downwardAPI volume payload (pkg/volume/downwardapi/downwardapi.go CollectData, fieldpath.FormatMap).
import type { DownwardAPIVolumeFile, Pod } from 'kubernetes-types/core/v1';
import type { FileProjection } from './atomic-writer.ts';

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

/** Path → content for the items of a downwardAPI volume (or projection source). Throws for unsupported fields. */
export function downwardPayload(pod: Pod, items: DownwardAPIVolumeFile[], defaultMode: number): Map<string, FileProjection> {
  const out = new Map<string, FileProjection>();
  for (const item of items) {
    const f = item.fieldRef?.fieldPath;
    if (!f) throw new Error(`downwardAPI item ${JSON.stringify(item.path)}: only fieldRef is supported by berth`);
    out.set(item.path, { data: Buffer.from(fieldValue(pod, f), 'utf8'), mode: item.mode ?? defaultMode });
  }
  return out;
}
