// The fault campaign's scenario 3 (bench/soak.ts, issue 9), ci profile: a 45 s kube-apiserver outage and an etcd
// restart with compaction, on a private etcd + kube-apiserver started from the rig's cached binaries (the shared rig at
// :6443 keeps running), berth as its node soak-api.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiServerOutage } from '../../bench/soak/apiserver-outage.ts';
import { PrivateApiServer } from '../../bench/soak/private-apiserver.ts';
import { docker, processesRunningAs, sleep } from '../../bench/soak/common.ts';
import { PROFILES } from '../../bench/soak.ts';
import { requireEnv } from '../helpers/require.ts';
import { paths } from './helpers/cluster.ts';

const bin = path.join(paths.dir, 'bin', 'kube-apiserver');
const missing = [bin, paths.kubectl, '/usr/bin/etcd'].find((f) => !existsSync(f));
const ok = requireEnv('e2e: the rig binaries (kube-apiserver, kubectl, etcd)', missing && `${missing} is missing`, { hint: 'build them with: bash test/e2e/apiserver.sh start' });
const ci = PROFILES.ci.apiServerOutage;

interface Figures {
  outage: {
    berthAlive: boolean;
    localStatusPolls: { ok: number; failed: number };
    exitSeenLocallyMs: number | null;
    leaseResumeMs: number | null;
    nodeStatusCatchUpMs: number | null;
    statusCatchUpMs: number | null;
    podAfterOutageRunningMs: number | null;
    steadyChanged: number;
    duplicates: number;
  };
  etcdRestart: {
    leaseResumeMs: number | null;
    gapCreateRunningMs: number | null;
    gapCreated: { sandboxes: number; containers: number };
    gapDeleteDoneMs: number | null;
    gapDeletedPodNewContainers: number;
    relists: number;
    steadyChanged: number;
    duplicates: number;
  };
  berthRestarts: number;
}

describe.skipIf(!ok)('soak (ci profile): 3 API server outage and etcd restart', () => {
  // The scenario tears down itself; this covers a test timeout: its control plane, berth and containers must not outlive us.
  afterAll(async () => {
    await PrivateApiServer.stopAll();
    for (const pid of processesRunningAs('soak-api')) process.kill(pid, 'SIGKILL');
    const left = await docker.listContainers({ all: true, filters: { label: ['io.berth.node=soak-api'] } });
    await Promise.race([Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined))), sleep(60_000)]);
  }, 150_000);

  it('pods ride out a kube-apiserver outage and an etcd restart; Lease, statuses and watches resume; no duplicate container', async () => {
    const r = await apiServerOutage(ci);
    process.stderr.write(`${r.scenario}: ${JSON.stringify(r.figures)}\n`);
    expect(r.failures).toEqual([]);
    const f = r.figures as unknown as Figures;
    const within = (v: number | null, bound: number): void => {
      expect(v).not.toBeNull();
      expect(v!).toBeLessThanOrEqual(bound);
    };
    // (a) kube-apiserver down: berth serves its local status (showing an exit), steady pods untouched.
    expect(f.outage.berthAlive).toBe(true);
    expect(f.outage.localStatusPolls.failed).toBe(0);
    expect(f.outage.localStatusPolls.ok).toBeGreaterThan(0);
    expect(f.outage.exitSeenLocallyMs).not.toBeNull();
    within(f.outage.leaseResumeMs, ci.bounds.leaseResumeMs);
    within(f.outage.nodeStatusCatchUpMs, ci.bounds.nodeStatusCatchUpMs);
    within(f.outage.statusCatchUpMs, ci.bounds.statusCatchUpMs);
    within(f.outage.podAfterOutageRunningMs, ci.bounds.podStartMs);
    expect([f.outage.steadyChanged, f.outage.duplicates]).toEqual([0, 0]);
    // (b) etcd restart with compaction: berth relists; the pods created / deleted in the gap are handled exactly once.
    expect(f.etcdRestart.relists).toBeGreaterThanOrEqual(1);
    within(f.etcdRestart.leaseResumeMs, ci.bounds.leaseResumeMs);
    within(f.etcdRestart.gapCreateRunningMs, ci.bounds.podStartMs);
    within(f.etcdRestart.gapDeleteDoneMs, ci.bounds.podStartMs);
    expect(f.etcdRestart.gapCreated).toEqual({ sandboxes: 1, containers: 1 });
    expect(f.etcdRestart.gapDeletedPodNewContainers).toBe(0);
    expect([f.etcdRestart.steadyChanged, f.etcdRestart.duplicates]).toEqual([0, 0]);
    expect(f.berthRestarts).toBe(0);
    expect(r.pass).toBe(true);
  }, 330_000);
});
