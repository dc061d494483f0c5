// `berth stats` rows and table from a snapshot: CPU % of one core (docker stats' convention), working set over
// the container's limit (the machine's memory when unlimited), the pod's eth0 counters, block I/O and pids.
import { describe, expect, it } from 'vitest';
import { buildStatsRows, formatStatsTable, humanBytes } from '../../src/cli/stats.ts';
import { MACHINE, snapshot } from './fixtures/cadvisor-snapshot.ts';

describe('berth stats', () => {
  it('builds one row per app container, without the sandbox', () => {
    expect(buildStatsRows(snapshot(), MACHINE)).toEqual([
      {
        pod: 'web',
        namespace: 'default',
        container: 'app',
        id: 'aaaaaaaaaaaa',
        cpuPercent: 25,
        memoryWorkingSetBytes: 64 * 2 ** 20,
        memoryLimitBytes: 128 * 2 ** 20,
        netRxBytes: 100,
        netTxBytes: 200,
        blockReadBytes: 4096,
        blockWriteBytes: 8192,
        pids: 3,
      },
    ]);
  });

  it('uses the machine memory as the limit of an unlimited container', () => {
    const snap = snapshot();
    const c = snap.pods[0]!.containers[0]!;
    const unlimited = { ...snap, pods: [{ ...snap.pods[0]!, containers: [{ ...c, memory: { ...c.memory!, limitBytes: undefined } }] }] };
    expect(buildStatsRows(unlimited, MACHINE)[0]!.memoryLimitBytes).toBe(MACHINE.memoryCapacityBytes);
  });

  it('prints docker-stats-like columns and units', () => {
    const out = formatStatsTable(buildStatsRows(snapshot(), MACHINE)).split('\n');
    expect(out[0]).toMatch(/^POD\s+CONTAINER\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    expect(out[1]).toMatch(/^web\s+app\s+25\.00%\s+64MiB \/ 128MiB\s+50\.00%\s+100B \/ 200B\s+4\.1kB \/ 8\.19kB\s+3$/);
    expect([humanBytes(undefined), humanBytes(0), humanBytes(1536), humanBytes(12_345_678, false)]).toEqual(['--', '0B', '1.5KiB', '12.3MB']);
  });
});
