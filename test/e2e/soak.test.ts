// The fault campaign's ci profile (bench/soak.ts, issue 9) as tests against the rig's real API server and this
// host's dockerd, berth running as the rig's nodes node-1 / node-2: scenario 1 (berth killed with SIGKILL during pod
// churn), 5 short (create/delete cycles: RSS bound, nothing left behind) and 7 (two berths on one host).
import { describe, expect, it } from 'vitest';
import { agentCrash } from '../../bench/soak/agent-crash.ts';
import { churn } from '../../bench/soak/churn.ts';
import { twoNodes } from '../../bench/soak/two-nodes.ts';
import { PROFILES } from '../../bench/soak.ts';
import { requireCluster } from './helpers/cluster.ts';

const up = await requireCluster();
const ci = PROFILES.ci;

describe.skipIf(!up)('soak (ci profile)', () => {
  it('1 agent crash: after each SIGKILL during churn nothing is lost, duplicated or leaked and pods reconverge', async () => {
    const seed = Date.now() % 1_000_000;
    const r = await agentCrash({ ...ci.agentCrash, seed });
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
  }, 150_000);

  it('5 churn (short): RSS stays within its bounds and nothing is left after the cycles', async () => {
    const r = await churn({ ...ci.churn, cycles: 60 });
    const f = r.figures as {
      cyclesDone: number;
      rssMiB: { afterWarmup: number; peak: number; after: number };
      drain: { containers: number; podDirs: number; logDirs: number; mounts: number };
    };
    expect(r.failures).toEqual([]);
    expect(f.cyclesDone).toBe(60);
    expect(f.rssMiB.after - f.rssMiB.afterWarmup).toBeLessThanOrEqual(ci.churn.rssGrowthBoundBytes / 1048576);
    expect(f.rssMiB.peak).toBeLessThanOrEqual(ci.churn.rssPeakBoundBytes / 1048576);
    expect(f.drain).toMatchObject({ containers: 0, podDirs: 0, logDirs: 0, mounts: 0 });
    expect(r.pass).toBe(true);
  }, 120_000);

  it('7 two nodes on one host: a Deployment spreads over both; neither touches the other; killing one leaves the other alone', async () => {
    const r = await twoNodes({ ...ci.twoNodes, lockWaitSeconds: 30 });
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
