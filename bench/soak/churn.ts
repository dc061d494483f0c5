// Scenario 5, churn: berth (as node-1) runs create/delete cycles of pods (an emptyDir volume and a log line each)
// sent through the real API server, in batches that keep at most `batch` pods alive. Measured: berth's RSS after
// warm-up (the first batch), its peak, and after the last batch; cycles per second; and what is left once all pods
// are gone (containers, pod dirs with their volumes, log dirs, mounts). The proxy is off on this node, so iptables
// chains and conntrack entries are not part of this scenario.
import { apiServerEpoch, retryApi, adminClient, clusterNode, createNamespace, dockerObjects, listPods, mib, podObject, progress, resources, rssBytes, startNode, teardown, waitFor, type ScenarioResult } from './common.ts';
import { drainCheck } from './agent-crash.ts';

export interface ChurnOptions {
  cycles: number;
  /** Pods alive at once. */
  batch: number;
  /**
   * Pass bound on RSS growth over the second half of the cycles (bytes), applied from `growthCheckFromCycles` cycles
   * on: shorter runs are still in V8's and the allocator's warm-up (RSS climbs ~150 MiB over the first ~120 cycles
   * and then flattens; measured 2026-11-30), so there only the peak bound holds.
   */
  rssSecondHalfGrowthBoundBytes: number;
  growthCheckFromCycles: number;
  /** Pass bound: peak RSS (bytes). */
  rssPeakBoundBytes: number;
  node?: string;
}

/** berth's V8 heap in use (prom-client's nodejs_heap_size_used_bytes on the read-only port), or null. */
async function heapUsedMiB(port: number): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    return m ? mib(Number(m[1])) : null;
  } catch {
    return null;
  }
}

export async function churn(o: ChurnOptions): Promise<ScenarioResult> {
  const node = o.node ?? 'node-1';
  const admin = await adminClient();
  const ns = `soak-churn-${Date.now().toString(36)}`;
  const berth = await clusterNode(node);
  const failures: string[] = [];
  const figures: Record<string, unknown> = { node, cycles: o.cycles, batch: o.batch };
  let done = 0;
  try {
    await startNode(admin, berth);
    await createNamespace(admin, ns);
    const pid = berth.pid!;
    const rssReady = rssBytes(pid);
    let rssWarm = 0;
    let rssPeak = rssReady;
    const epoch = apiServerEpoch();
    const t0 = performance.now();
    const batchMs: number[] = [];
    // Warm-up: the first quarter of the batches (at least one); V8 grows its heap to a working size first.
    const warmBatches = Math.max(1, Math.floor(Math.ceil(o.cycles / o.batch) / 4));
    const series: { cycles: number; rssMiB: number; heapUsedMiB: number | null }[] = [];
    for (let b = 0; done < o.cycles; b++) {
      const n = Math.min(o.batch, o.cycles - done);
      const tb = performance.now();
      const names = Array.from({ length: n }, (_, i) => `c${b}-${i}`);
      await Promise.all(
        names.map((name) =>
          retryApi(`create ${name}`, () => admin.create(resources.pods, podObject({ ns, name, node, emptyDir: true, script: "trap 'exit 0' TERM; echo started; while true; do sleep 1; done" })), { ok: [409] }),
        ),
      );
      await waitFor(
        async () => {
          const pods = await listPods(admin, ns, node);
          return pods.length === n && pods.every((p) => p.status?.phase === 'Running');
        },
        120_000,
        { what: `batch ${b}: ${n} pods Running`, intervalMs: 250 },
      );
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      await Promise.all(names.map((name) => retryApi(`delete ${name}`, () => admin.delete(resources.pods, name, { namespace: ns, gracePeriodSeconds: 1 }), { ok: [404] })));
      await waitFor(async () => (await listPods(admin, ns, node)).length === 0 && (await dockerObjects(node)).length === 0, 120_000, {
        what: `batch ${b}: pods and containers gone`,
        intervalMs: 250,
      });
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      done += n;
      batchMs.push(Math.round(performance.now() - tb));
      if (b === warmBatches - 1) rssWarm = rssBytes(pid);
      series.push({ cycles: done, rssMiB: mib(rssBytes(pid)), heapUsedMiB: await heapUsedMiB(berth.port) });
      if (b % 5 === 0) progress(`churn: ${done}/${o.cycles} cycles, rss ${mib(rssBytes(pid))} MiB`);
      if (!berth.alive()) throw new Error(`berth exited: ${berth.logs().slice(-2000)}`);
    }
    const wallMs = performance.now() - t0;
    const drain = await drainCheck(admin, ns, node, berth.rootDir);
    const rssAfter = rssBytes(pid);
    const growth = rssAfter - rssWarm;
    const half = series.find((x) => x.cycles >= done / 2) ?? series[0]!;
    const secondHalfGrowth = rssAfter - half.rssMiB * 1048576;
    Object.assign(figures, {
      cyclesPerSecond: Math.round((done / (wallMs / 1000)) * 100) / 100,
      batchMs: { first: batchMs[0], last: batchMs.at(-1), max: Math.max(...batchMs) },
      warmupCycles: Math.min(o.cycles, warmBatches * o.batch),
      series,
      rssMiB: { ready: mib(rssReady), afterWarmup: mib(rssWarm), atHalf: half.rssMiB, peak: mib(rssPeak), after: mib(rssAfter), growth: mib(growth), secondHalfGrowth: mib(secondHalfGrowth) },
      rssGrowthKiBPerCycleAfterWarmup: Math.round(growth / 1024 / Math.max(1, done - warmBatches * o.batch)),
      rssBoundsMiB: { peak: mib(o.rssPeakBoundBytes), secondHalfGrowth: done >= o.growthCheckFromCycles ? mib(o.rssSecondHalfGrowthBoundBytes) : 'not applied (short run)' },
      drain,
      apiServerRestartedMeanwhile: apiServerEpoch() !== epoch,
    });
    if (done >= o.growthCheckFromCycles && secondHalfGrowth > o.rssSecondHalfGrowthBoundBytes)
      failures.push(`RSS grew ${mib(secondHalfGrowth)} MiB over the second half of ${done} cycles (bound ${mib(o.rssSecondHalfGrowthBoundBytes)} MiB)`);
    if (rssPeak > o.rssPeakBoundBytes) failures.push(`RSS peak ${mib(rssPeak)} MiB (bound ${mib(o.rssPeakBoundBytes)} MiB)`);
    failures.push(...drain.failures);
  } catch (err: unknown) {
    failures.push(`aborted after ${done} cycles: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await teardown(admin, { ns: [ns], nodes: [berth] });
    await admin.close();
  }
  figures.cyclesDone = done;
  return { scenario: '5-churn', pass: failures.length === 0 && done === o.cycles, failures, figures };
}
