// Scenario 2, Docker daemon restart and a hung Docker API. berth runs as node-1 against a private dockerd (see
// private-dockerd.ts: the host's dockerd is never touched) through a unix-socket proxy that can stall (stall-proxy.ts).
// Three sub-cases on the same pods, each measured:
//   noLiveRestore: dockerd (live-restore off) stopped and started: its containers die with it; berth starts them
//     again per restartPolicy (restartCount +1 each, +2 when berth raced the stopping daemon), with no duplicate and
//     no leaked sandbox;
//   liveRestore: dockerd (live-restore on) down for `downSeconds`: containers keep running; berth reports the node
//     NotReady with the runtime's reason meanwhile and Ready again after, nothing restarted (same IDs and counts);
//   hungApi: the proxy answers nothing: berth stays alive, serves /healthz and /berth/pods, its Docker calls time
//     out (the proxy sees berth give up on each), the node turns NotReady with the runtime's reason, and once the
//     proxy answers again the node is Ready and no pod was restarted.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import type { BerthProcess } from '../../test/helpers/berth.ts';
import { convergenceProblems } from './agent-crash.ts';
import {
  adminClient,
  clusterNode,
  createNamespace,
  dockerObjects,
  duplicates,
  fileLock,
  listPods,
  podObject,
  progress,
  resources,
  retryApi,
  sleep,
  startNode,
  teardown,
  type DockerObj,
  type ScenarioResult,
} from './common.ts';
import { NodeWatch, StatusSampler, type ReadySample } from './node-watch.ts';
import { PrivateDockerd } from './private-dockerd.ts';
import { StallProxy } from './stall-proxy.ts';

export const NODE1_LOCK = '/tmp/berth-soak-node1.lock';

export interface DockerRestartOptions {
  pods: number;
  /** How long the live-restore dockerd stays down (s). */
  downSeconds: number;
  /** The hung API goes on this long after the node was seen NotReady (ms)… */
  holdAfterNotReadyMs: number;
  /** …and at least this long (ms): past berth's Docker call deadline, so its calls must time out meanwhile. */
  minStallMs: number;
  /** The node must be NotReady within this of the daemon going away / hanging (ms). */
  notReadyBoundMs: number;
  /** Pods must be converged (and the node Ready) within this of the daemon answering again (ms). */
  recoverBoundMs: number;
  /** Berth's Docker call deadline (src/cri/docker/runtime.ts, 30 s): no stalled call may be held longer (plus slack). */
  callTimeoutBoundMs: number;
  lockWaitSeconds?: number;
  node?: string;
  /** More flags for berth (e.g. --log-level=info to see what it did). */
  berthArgs?: string[];
}

/** The running objects of the pods: `<uid>/<container|POD>` → Docker ID, and the API's restart counts. */
interface Snapshot {
  running: Map<string, string>;
  restartCounts: Map<string, number>;
  allIds: Set<string>;
}

function snapshot(pods: Pod[], objs: DockerObj[]): Snapshot {
  const running = new Map(objs.filter((o) => o.running).map((o) => [`${o.uid}/${o.sandbox ? 'POD' : o.container}`, o.id]));
  const restartCounts = new Map<string, number>();
  for (const p of pods) for (const s of p.status?.containerStatuses ?? []) restartCounts.set(`${p.metadata!.uid}/${s.name}`, s.restartCount);
  return { running, restartCounts, allIds: new Set(objs.map((o) => o.id)) };
}

/** What changed between two converged snapshots: objects replaced, new objects, restart count deltas. */
export function compareSnapshots(before: Snapshot, after: Snapshot): { replaced: string[]; newObjects: number; restartDeltas: Record<string, number> } {
  const replaced = [...before.running].filter(([k, id]) => after.running.get(k) !== id).map(([k]) => k);
  const newObjects = [...after.allIds].filter((id) => !before.allIds.has(id)).length;
  const restartDeltas: Record<string, number> = {};
  for (const [k, n] of after.restartCounts) restartDeltas[k] = n - (before.restartCounts.get(k) ?? 0);
  return { replaced, newObjects, restartDeltas };
}

const runtimeReason = (s: ReadySample): boolean => s.status === 'False' && /container runtime/i.test(s.message);

export async function dockerRestart(o: DockerRestartOptions): Promise<ScenarioResult> {
  const node = o.node ?? 'node-1';
  const failures: string[] = [];
  const origin = performance.now();
  const figures: Record<string, unknown> = { node, pods: o.pods, downSeconds: o.downSeconds, notReadyBoundMs: o.notReadyBoundMs, recoverBoundMs: o.recoverBoundMs };
  const release = await fileLock(NODE1_LOCK, o.lockWaitSeconds ?? 600);
  if (!release) return { scenario: '2-docker-restart', pass: false, failures: [`${NODE1_LOCK} not free within ${o.lockWaitSeconds ?? 600} s`], figures };
  const admin = await adminClient();
  const dockerd = new PrivateDockerd();
  const proxy = new StallProxy(path.join(dockerd.runDir, 'proxy.sock'), dockerd.socket);
  const ns = `soak-docker-${Date.now().toString(36)}`;
  const watch = new NodeWatch(admin, node);
  const kinds = new Map<string, 'plain'>();
  let berth: BerthProcess | undefined;
  const objs = (): Promise<DockerObj[]> => dockerObjects(node, dockerd.client);
  const state = async (): Promise<{ pods: Pod[]; objs: DockerObj[] }> => ({ pods: await listPods(admin, ns, node), objs: await objs() });
  /** Polls until the pods are converged and `extra` holds; the time it took (ms) or undefined with the last problems. */
  const converge = async (boundMs: number, extra: (s: Snapshot) => string[] = () => []): Promise<{ ms?: number; problems: string[] }> => {
    const t0 = performance.now();
    let problems: string[] = [];
    while (performance.now() - t0 < boundMs) {
      try {
        const s = await state();
        problems = [...convergenceProblems(s.pods, s.objs, kinds), ...extra(snapshot(s.pods, s.objs))];
      } catch (err: unknown) {
        problems = [String(err)];
      }
      if (problems.length === 0) return { ms: Math.round(performance.now() - t0), problems };
      await sleep(250);
    }
    return { problems };
  };
  const current = async (): Promise<Snapshot> => {
    const s = await state();
    return snapshot(s.pods, s.objs);
  };
  const alive = (what: string): void => {
    if (!berth?.alive()) throw new Error(`berth exited during ${what}: ${berth?.logs().slice(-2000)}`);
  };

  try {
    await dockerd.prepare();
    figures.dockerdStartMs = await dockerd.start({ liveRestore: false });
    await dockerd.loadTestImage();
    await proxy.listen();
    berth = await clusterNode(node, [`--docker-endpoint=unix://${proxy.socketPath}`, ...(o.berthArgs ?? [])]);
    figures.nodeReadyMs = await startNode(admin, berth);
    watch.start();
    await createNamespace(admin, ns);
    for (let i = 0; i < o.pods; i++) {
      const name = `d${i}`;
      kinds.set(name, 'plain');
      const pod = podObject({ ns, name, node, sidecar: i === 0, script: "trap 'exit 0' TERM; while true; do sleep 1; done" });
      await retryApi(`create ${name}`, () => admin.create(resources.pods, pod), { ok: [409] });
    }
    const initial = await converge(120_000);
    if (initial.ms === undefined) throw new Error(`pods not running at the start: ${initial.problems.slice(0, 5).join('; ')}`);
    figures.podsRunningMs = initial.ms;

    // ---- noLiveRestore: containers die with the daemon; berth starts them again.
    {
      progress('docker-restart: dockerd (live-restore off) restart');
      const before = await current();
      const t0 = performance.now();
      const stopMs = await dockerd.stop();
      const startMs = await dockerd.start({ liveRestore: true });
      const upAt = performance.now();
      const r = await converge(o.recoverBoundMs * 3, (s) =>
        [...before.running].filter(([k, id]) => s.running.get(k) === id).map(([k, id]) => `${k}: still the old ${id.slice(0, 12)}`),
      );
      alive('the restart without live-restore');
      const after = await current();
      const cmp = compareSnapshots(before, after);
      const all = await objs();
      const pods = await listPods(admin, ns, node);
      const uids = new Set(pods.map((p) => p.metadata!.uid!));
      const sandboxes = all.filter((x) => x.sandbox);
      const leaked = sandboxes.filter((x) => !uids.has(x.uid) || (x.running && after.running.get(`${x.uid}/POD`) !== x.id));
      const dup = duplicates(all);
      const notReady = watch.first(t0, runtimeReason);
      // Every container died once: +1. One more is upstream's behaviour too when berth restarted a container while
      // the stopping dockerd still took some calls (its sandbox already dead: "cannot join network of a non running
      // container", a failed start that counts as a restart), before the new sandbox's attempt.
      const wrongCounts = Object.entries(cmp.restartDeltas).filter(([, d]) => d < 1 || d > 2);
      figures.noLiveRestore = {
        dockerdStopMs: stopMs,
        dockerdStartMs: startMs,
        downMs: Math.round(upAt - t0 - startMs),
        recoverMs: r.ms ?? null,
        containersReplaced: cmp.replaced.length,
        restartCountDeltas: Object.values(cmp.restartDeltas),
        restartedWhileDockerdStopped: Object.values(cmp.restartDeltas).filter((d) => d === 2).length,
        duplicates: dup.count,
        leakedSandboxes: leaked.length,
        exitedSandboxesKept: sandboxes.filter((x) => !x.running).length,
        nodeNotReadyAfterMs: notReady ? Math.round(notReady.at - t0) : null,
        notReadyMessage: notReady?.message ?? null,
      };
      progress(`docker-restart: noLiveRestore ${JSON.stringify(figures.noLiveRestore)}`);
      if (r.ms === undefined) failures.push(`noLiveRestore: not converged ${o.recoverBoundMs * 3} ms after dockerd was back: ${r.problems.slice(0, 5).join('; ')}`);
      else if (r.ms > o.recoverBoundMs) failures.push(`noLiveRestore: converged ${r.ms} ms after dockerd was back > ${o.recoverBoundMs} ms`);
      if (wrongCounts.length) failures.push(`noLiveRestore: restart counts not +1 (or +2): ${wrongCounts.map(([k, d]) => `${k} +${d}`).join(', ')}`);
      if (dup.count) failures.push(`noLiveRestore: duplicates ${dup.detail.join(', ')}`);
      if (leaked.length) failures.push(`noLiveRestore: leaked sandboxes ${leaked.map((x) => `${x.podName} ${x.id.slice(0, 12)} ${x.state}`).join(', ')}`);
    }

    // ---- liveRestore: containers outlive the daemon; the node says NotReady meanwhile, then Ready; nothing restarts.
    {
      progress(`docker-restart: dockerd (live-restore on) down for ${o.downSeconds} s`);
      const before = await current();
      const t0 = performance.now();
      const stopMs = await dockerd.stop();
      const notReady = await watch.waitFor(t0, runtimeReason, o.downSeconds * 1000);
      await sleep(Math.max(0, o.downSeconds * 1000 - (performance.now() - t0)));
      const startMs = await dockerd.start({ liveRestore: true });
      const upAt = performance.now();
      const ready = await watch.waitFor(upAt, (s) => s.status === 'True', o.recoverBoundMs * 3);
      const r = await converge(o.recoverBoundMs * 3);
      alive('the live-restore restart');
      const cmp = compareSnapshots(before, await current());
      const changedCounts = Object.entries(cmp.restartDeltas).filter(([, d]) => d !== 0);
      figures.liveRestore = {
        dockerdStopMs: stopMs,
        dockerdStartMs: startMs,
        downMs: Math.round(upAt - t0 - startMs),
        nodeNotReadyAfterMs: notReady ? Math.round(notReady.at - t0) : null,
        notReadyMessage: notReady?.message ?? null,
        readyAgainMs: ready ? Math.round(ready.at - upAt) : null,
        convergedMs: r.ms ?? null,
        containersReplaced: cmp.replaced.length,
        newObjects: cmp.newObjects,
        restartCountChanges: changedCounts.length,
      };
      progress(`docker-restart: liveRestore ${JSON.stringify(figures.liveRestore)}`);
      if (!notReady) failures.push(`liveRestore: node not NotReady with a runtime reason during ${o.downSeconds} s without dockerd (last: ${JSON.stringify(watch.current())})`);
      else if (notReady.at - t0 > o.notReadyBoundMs) failures.push(`liveRestore: NotReady only after ${Math.round(notReady.at - t0)} ms > ${o.notReadyBoundMs} ms`);
      if (!ready) failures.push(`liveRestore: node not Ready ${o.recoverBoundMs * 3} ms after dockerd was back`);
      else if (ready.at - upAt > o.recoverBoundMs) failures.push(`liveRestore: Ready again after ${Math.round(ready.at - upAt)} ms > ${o.recoverBoundMs} ms`);
      if (r.ms === undefined) failures.push(`liveRestore: not converged: ${r.problems.slice(0, 5).join('; ')}`);
      if (cmp.replaced.length || cmp.newObjects) failures.push(`liveRestore: containers replaced ${cmp.replaced.join(', ') || 'none'}; ${cmp.newObjects} new objects`);
      if (changedCounts.length) failures.push(`liveRestore: restart counts changed: ${changedCounts.map(([k, d]) => `${k} +${d}`).join(', ')}`);
    }

    // ---- hungApi: nothing answers; berth stays up, serves status, times its calls out, says NotReady, recovers.
    {
      progress('docker-restart: hung Docker API');
      const before = await current();
      const sampler = new StatusSampler(berth.port);
      sampler.start();
      const t0 = performance.now();
      proxy.stall();
      const notReady = await watch.waitFor(t0, runtimeReason, o.notReadyBoundMs);
      await sleep(Math.max(o.holdAfterNotReadyMs, t0 + o.minStallMs - performance.now()));
      alive('the hung API');
      const stall = proxy.resume();
      const resumedAt = performance.now();
      const status = await sampler.stop();
      const ready = await watch.waitFor(resumedAt, (s) => s.status === 'True', o.recoverBoundMs * 3);
      const r = await converge(o.recoverBoundMs * 3);
      alive('the recovery from the hung API');
      const cmp = compareSnapshots(before, await current());
      const changedCounts = Object.entries(cmp.restartDeltas).filter(([, d]) => d !== 0);
      figures.hungApi = {
        stallMs: Math.round(resumedAt - t0),
        nodeNotReadyAfterMs: notReady ? Math.round(notReady.at - t0) : null,
        notReadyMessage: notReady?.message ?? null,
        readyAgainMs: ready ? Math.round(ready.at - resumedAt) : null,
        convergedMs: r.ms ?? null,
        callsTimedOut: stall.closedByClientWhileStalled,
        callHoldMs: { max: stall.maxHeldBeforeClientCloseMs, all: stall.heldBeforeClientCloseMs },
        callsStillWaitingAtResume: stall.openAtResume,
        oldestWaitingAtResumeMs: stall.oldestOpenAtResumeMs,
        status,
        containersReplaced: cmp.replaced.length,
        newObjects: cmp.newObjects,
        restartCountChanges: changedCounts.length,
      };
      progress(`docker-restart: hungApi ${JSON.stringify(figures.hungApi)}`);
      if (!notReady) failures.push(`hungApi: node not NotReady with a runtime reason within ${o.notReadyBoundMs} ms (last: ${JSON.stringify(watch.current())})`);
      if (stall.closedByClientWhileStalled === 0) failures.push('hungApi: berth gave up on no stalled Docker call');
      if (stall.maxHeldBeforeClientCloseMs > o.callTimeoutBoundMs) failures.push(`hungApi: a Docker call was held ${stall.maxHeldBeforeClientCloseMs} ms > ${o.callTimeoutBoundMs} ms before berth gave up`);
      if (stall.oldestOpenAtResumeMs > o.callTimeoutBoundMs) failures.push(`hungApi: a Docker call made during the stall still waited after ${stall.oldestOpenAtResumeMs} ms`);
      if (status.answered !== status.samples || status.samples === 0) failures.push(`hungApi: status endpoints answered ${status.answered}/${status.samples}: ${JSON.stringify(status.codes)}`);
      if (!ready) failures.push(`hungApi: node not Ready ${o.recoverBoundMs * 3} ms after the API answered again`);
      else if (ready.at - resumedAt > o.recoverBoundMs) failures.push(`hungApi: Ready again after ${Math.round(ready.at - resumedAt)} ms > ${o.recoverBoundMs} ms`);
      if (r.ms === undefined) failures.push(`hungApi: not converged: ${r.problems.slice(0, 5).join('; ')}`);
      if (cmp.replaced.length || cmp.newObjects) failures.push(`hungApi: containers replaced ${cmp.replaced.join(', ') || 'none'}; ${cmp.newObjects} new objects`);
      if (changedCounts.length) failures.push(`hungApi: restart counts changed: ${changedCounts.map(([k, d]) => `${k} +${d}`).join(', ')}`);
    }
    figures.readyChanges = watch.changes().map((c) => ({ atS: Math.round((c.at - origin) / 100) / 10, status: c.status, message: c.message.slice(0, 200) }));
  } catch (err: unknown) {
    failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    if (failures.length && berth) {
      const saved = path.join(os.tmpdir(), `${ns}-berth.log`);
      writeFileSync(saved, berth.logs());
      failures.push(`berth's log: ${saved}`);
    }
    await watch.stop();
    await teardown(admin, { ns: [ns], nodes: berth ? [berth] : [] });
    await proxy.close().catch(() => undefined);
    failures.push(...(await dockerd.destroy()).map((p) => `cleanup: ${p}`));
    await admin.close();
    await release();
  }
  return { scenario: '2-docker-restart', pass: failures.length === 0, failures, figures };
}
