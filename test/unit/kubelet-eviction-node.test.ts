// The node manager reports the eviction manager's pressure conditions (not its own readings) when given
// `pressure`, and the allocatable reservation follows the configured hard thresholds.
import { describe, it, expect } from 'vitest';
import { FakeClock, silentLogger } from '../../src/lib/index.ts';
import { NodeManager, type MachineReader, type NodeApi } from '../../src/kubelet/node/index.ts';
import { allocatableReservation, parseThresholdConfig } from '../../src/kubelet/eviction/index.ts';

const Gi = 2 ** 30;
const machine: MachineReader = {
  machineInfo: async () => ({ numCores: 2, memoryCapacityBytes: 4 * Gi, machineID: 'm', systemUUID: '', bootID: 'b', kernelVersion: 'k', osImage: 'o', hugePages: [] }),
  // Plenty of everything: on its own the node manager would report no pressure.
  nodeStats: async () => ({ memoryAvailableBytes: 3 * Gi, nodeFs: { capacityBytes: 100 * Gi, availableBytes: 90 * Gi }, imageFs: { capacityBytes: 100 * Gi, availableBytes: 90 * Gi } }),
};
const unreachable = async (): Promise<never> => {
  throw new Error('API server unreachable');
};
const api: NodeApi = { get: unreachable, create: unreachable, update: unreachable, patch: unreachable, patchStatus: unreachable };

async function initialNode(o: { pressure?: () => { memory: boolean; disk: boolean; pid: boolean }; hard?: Record<string, string> }) {
  const mgr = new NodeManager({
    api,
    nodeName: 'n',
    hostIP: () => '192.0.2.1',
    runtime: { version: async () => ({ runtimeName: 'docker', runtimeVersion: '20.10', runtimeApiVersion: '1.41' }), listImages: async () => [] },
    rootDir: '/var/lib/berth',
    machine,
    pressure: o.pressure,
    evictionHard: o.hard ? allocatableReservation(parseThresholdConfig({ hard: o.hard }), 4 * Gi) : undefined,
    log: silentLogger,
    clock: new FakeClock(),
  });
  await mgr.start();
  const node = mgr.node();
  await mgr.stop();
  return node;
}

describe('node conditions from the eviction manager', () => {
  it('reports MemoryPressure/PIDPressure when the eviction manager says so, whatever the readings', async () => {
    const node = await initialNode({ pressure: () => ({ memory: true, disk: false, pid: true }) });
    const status = (t: string): string | undefined => node.status?.conditions?.find((c) => c.type === t)?.status;
    expect([status('MemoryPressure'), status('DiskPressure'), status('PIDPressure')]).toEqual(['True', 'False', 'True']);
    expect(node.status?.conditions?.find((c) => c.type === 'MemoryPressure')?.reason).toBe('KubeletHasInsufficientMemory');
  });

  it('reserves the configured hard memory threshold from allocatable', async () => {
    const node = await initialNode({ pressure: () => ({ memory: false, disk: false, pid: false }), hard: { 'memory.available': '1Gi' } });
    expect(node.status?.capacity?.memory).toBe('4Gi');
    expect(node.status?.allocatable?.memory).toBe('3Gi');
  });
});
