// Shared benchmark pieces: the raw Docker Engine floor (what berth's work costs without berth) and stats.
import { docker } from '../test/helpers/berth.ts';
import { BUSYBOX_IMAGE } from '../test/integration/helpers/docker-images.ts';
import { PAUSE_IMAGE } from '../src/cri/docker/index.ts';

export const median = (xs: number[]): number => percentile(xs, 50);

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function argOpt(name: string, def: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
}

/**
 * The floor: per pod, create+start the pause sandbox on the default bridge, inspect it (its IP), then
 * create+start the app container in its namespaces — all pods at once. Returns the wall time (ms) and the
 * per-pod completion times (ms from start); removes everything afterwards.
 */
export async function rawDockerFloor(n: number, tag: string): Promise<{ wallMs: number; perPodMs: number[] }> {
  const t0 = performance.now();
  const perPodMs = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const labels = { 'io.berth.bench': tag };
      const sb = await docker.createContainer({ name: `bench_POD_${tag}_${i}`, Image: PAUSE_IMAGE, Labels: labels, HostConfig: { IpcMode: 'shareable' } });
      await sb.start();
      await sb.inspect();
      const c = await docker.createContainer({
        name: `bench_c_${tag}_${i}`,
        Image: BUSYBOX_IMAGE,
        Entrypoint: ['sh', '-c'],
        Cmd: ['sleep 3600'],
        Labels: labels,
        HostConfig: { NetworkMode: `container:${sb.id}`, IpcMode: `container:${sb.id}` },
      });
      await c.start();
      return performance.now() - t0;
    }),
  );
  const wallMs = performance.now() - t0;
  const all = await docker.listContainers({ all: true, filters: { label: [`io.berth.bench=${tag}`] } });
  await Promise.all(all.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return { wallMs, perPodMs };
}
