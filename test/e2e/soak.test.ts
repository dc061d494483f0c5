// The fault campaign's ci profile (bench/soak.ts, issue 9) as tests against the rig's real API server and this
// host's dockerd, berth running as the rig's nodes node-1 / node-2: scenario 1 (berth killed with SIGKILL during pod
// churn), 5 short (create/delete cycles: RSS bound, nothing left behind) and 7 (two berths on one host).
import { describe, expect, it } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1';
import { agentCrash, convergenceProblems } from '../../bench/soak/agent-crash.ts';
import { duplicates, type DockerObj } from '../../bench/soak/common.ts';
import { churn } from '../../bench/soak/churn.ts';
import { twoNodes } from '../../bench/soak/two-nodes.ts';
import { PROFILES } from '../../bench/soak.ts';
import { requireCluster } from './helpers/cluster.ts';

const up = await requireCluster();
const ci = PROFILES.ci;
/** The measured figures next to the test output (the bench prints them as JSON; here on stderr). */
const show = (r: { scenario: string; figures: unknown }): void => void process.stderr.write(`${r.scenario}: ${JSON.stringify(r.figures)}\n`);

describe.skipIf(!up)('soak (ci profile)', () => {
  it('1 agent crash: after each SIGKILL during churn nothing is lost, duplicated or leaked and pods reconverge', async () => {
    const seed = Date.now() % 1_000_000;
    const r = await agentCrash({ ...ci.agentCrash, seed });
    show(r);
    const f = r.figures as {
      perKill: { reconvergeMs: number | null }[];
      totals: { lostContainers: number; duplicates: number; leakedSandboxes: number; restartCountRegressions: number };
      drain: { containers: number; podDirs: number; logDirs: number; mounts: number };
    };
    expect(r.failures, `seed ${seed}`).toEqual([]);
    expect(f.perKill).toHaveLength(ci.agentCrash.kills);
    for (const k of f.perKill) expect(k.reconvergeMs).not.toBeNull();
    expect(Math.max(...f.perKill.map((k) => k.reconvergeMs!))).toBeLessThanOrEqual(ci.agentCrash.convergeBoundMs);
    expect(f.totals).toEqual({ lostContainers: 0, duplicates: 0, leakedSandboxes: 0, restartCountRegressions: 0 });
    expect(f.drain).toMatchObject({ containers: 0, podDirs: 0, logDirs: 0, mounts: 0 });
    expect(r.pass).toBe(true);
  }, 200_000);

  it('5 churn (short): RSS stays within its bounds and nothing is left after the cycles', async () => {
    const r = await churn({ ...ci.churn, cycles: 60 });
    show(r);
    const f = r.figures as {
      cyclesDone: number;
      rssMiB: { peak: number };
      drain: { containers: number; podDirs: number; logDirs: number; mounts: number };
    };
    expect(r.failures).toEqual([]);
    expect(f.cyclesDone).toBe(60);
    expect(f.rssMiB.peak).toBeLessThanOrEqual(ci.churn.rssPeakBoundBytes / 1048576);
    expect(f.drain).toMatchObject({ containers: 0, podDirs: 0, logDirs: 0, mounts: 0 });
    expect(r.pass).toBe(true);
  }, 120_000);

  it('7 two nodes on one host: a Deployment spreads over both; neither touches the other; killing one leaves the other alone', async () => {
    const r = await twoNodes({ ...ci.twoNodes, lockWaitSeconds: 30 });
    show(r);
    const f = r.figures as {
      podsPerNode: Record<string, number>;
      ownershipProblems: number;
      afterKillingNode1: Record<string, number>;
      afterNode1Restart: { readoptedWithoutRestart: boolean; node2Untouched: boolean };
    };
    expect(r.failures).toEqual([]);
    expect(f.podsPerNode['node-1']).toBeGreaterThan(0);
    expect(f.podsPerNode['node-2']).toBeGreaterThan(0);
    expect(f.ownershipProblems).toBe(0);
    expect(f.afterKillingNode1).toEqual({ node2ObjectsChanged: 0, node2ObjectsAdded: 0, node2PodsNotRunning: 0, node1ContainersStopped: 0 });
    expect(f.afterNode1Restart).toEqual({ readoptedWithoutRestart: true, node2Untouched: true });
    expect(r.pass).toBe(true);
  }, 150_000);
});

// The campaign's own judges, on made-up states: each problem they exist to catch makes them say so.
describe('soak checks', () => {
  const pod = (name: string, uid: string, containerId: string): Pod => ({
    metadata: { name, uid },
    spec: { containers: [{ name: 'app' }] },
    status: { phase: 'Running', containerStatuses: [{ name: 'app', containerID: `docker://${containerId}`, ready: true, restartCount: 0, image: '', imageID: '', state: { running: {} } }] },
  });
  const obj = (uid: string, id: string, o: Partial<DockerObj> = {}): DockerObj => ({
    id, uid, sandbox: false, container: 'app', running: true, state: 'running', restartCount: 0, podName: `p-${uid}`, namespace: 'ns', ...o,
  });
  const kinds = new Map<string, 'plain'>([['a', 'plain']]);
  const good = [obj('u1', 's1', { sandbox: true, container: '' }), obj('u1', 'c1')];

  it('a converged node has no problems', () => {
    expect(convergenceProblems([pod('a', 'u1', 'c1')], good, kinds)).toEqual([]);
  });
  it('reports a duplicate container, a status naming another container, a leftover of a deleted pod and a missing sandbox', () => {
    expect(convergenceProblems([pod('a', 'u1', 'c1')], [...good, obj('u1', 'c2')], kinds)).toEqual(['a/app: 2 running containers']);
    expect(convergenceProblems([pod('a', 'u1', 'old')], good, kinds)[0]).toMatch(/^a\/app: status old/);
    expect(convergenceProblems([pod('a', 'u1', 'c1')], [...good, obj('gone', 's9', { sandbox: true, container: '' })], kinds)).toEqual([
      'p-gone: sandbox s9 of a deleted pod left',
    ]);
    expect(convergenceProblems([pod('a', 'u1', 'c1')], [obj('u1', 'c1')], kinds)).toEqual(['a: 0 running sandboxes']);
    expect(duplicates([...good, obj('u1', 's2', { sandbox: true, container: '' })])).toEqual({ count: 1, detail: ['u1/POD×2'] });
  });
});
