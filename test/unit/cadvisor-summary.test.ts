// The Summary JSON against upstream's stats.k8s.io/v1alpha1 types (kubelet 1.20,
// staging/src/k8s.io/kubelet/pkg/apis/stats/v1alpha1/types.go): with every figure measured, each object has
// exactly the JSON keys of its Go type (a misnamed or missing field fails), and nothing else.
import { describe, expect, it } from 'vitest';
import { buildSummary, metaTime } from '../../src/cadvisor/summary.ts';
import { snapshot } from './fixtures/cadvisor-snapshot.ts';

// JSON keys of each upstream type (omitempty ones included: the snapshot measures everything).
const KEYS = {
  Summary: ['node', 'pods'],
  NodeStats: ['nodeName', 'systemContainers', 'startTime', 'cpu', 'memory', 'network', 'fs', 'runtime', 'rlimit'],
  RlimitStats: ['time', 'maxpid', 'curproc'],
  RuntimeStats: ['imageFs'],
  PodStats: ['podRef', 'startTime', 'containers', 'cpu', 'memory', 'network', 'volume', 'ephemeral-storage', 'process_stats'],
  ProcessStats: ['process_count'],
  // accelerators and userDefinedMetrics are omitempty and berth measures neither.
  ContainerStats: ['name', 'startTime', 'cpu', 'memory', 'rootfs', 'logs'],
  SystemContainerStats: ['name', 'startTime', 'cpu', 'memory'],
  PodReference: ['name', 'namespace', 'uid'],
  InterfaceStats: ['name', 'rxBytes', 'rxErrors', 'txBytes', 'txErrors'],
  NetworkStats: ['time', 'name', 'rxBytes', 'rxErrors', 'txBytes', 'txErrors', 'interfaces'],
  CPUStats: ['time', 'usageNanoCores', 'usageCoreNanoSeconds'],
  MemoryStats: ['time', 'availableBytes', 'usageBytes', 'workingSetBytes', 'rssBytes', 'pageFaults', 'majorPageFaults'],
  FsStats: ['time', 'availableBytes', 'capacityBytes', 'usedBytes', 'inodesFree', 'inodes', 'inodesUsed'],
  VolumeStats: ['time', 'availableBytes', 'capacityBytes', 'usedBytes', 'inodesFree', 'inodes', 'inodesUsed', 'name'],
} as const;

type J = Record<string, unknown>;
const keys = (o: unknown): string[] => Object.keys(o as J).sort();
const expectKeys = (o: unknown, type: keyof typeof KEYS): void => {
  expect(keys(o), type).toEqual([...KEYS[type]].sort());
};

describe('Summary API JSON', () => {
  const s = buildSummary(snapshot(), { nodeName: 'vm' }) as J;
  const node = s.node as J;
  const pod = (s.pods as J[])[0]!;
  const ctr = (pod.containers as J[])[0]!;

  it('has upstream field names at every level', () => {
    expectKeys(s, 'Summary');
    expectKeys(node, 'NodeStats');
    expectKeys(node.rlimit, 'RlimitStats');
    expectKeys(node.runtime, 'RuntimeStats');
    expectKeys((node.runtime as J).imageFs, 'FsStats');
    expectKeys(node.fs, 'FsStats');
    expectKeys(node.cpu, 'CPUStats');
    expectKeys(node.memory, 'MemoryStats');
    expectKeys(node.network, 'NetworkStats');
    for (const i of (node.network as J).interfaces as J[]) expectKeys(i, 'InterfaceStats');
    for (const sc of node.systemContainers as J[]) {
      expectKeys(sc, 'SystemContainerStats');
      expectKeys(sc.cpu, 'CPUStats');
    }
    expectKeys(pod, 'PodStats');
    expectKeys(pod.podRef, 'PodReference');
    expectKeys(pod.process_stats, 'ProcessStats');
    expectKeys(pod['ephemeral-storage'], 'FsStats');
    for (const v of pod.volume as J[]) expectKeys(v, 'VolumeStats');
    expectKeys(ctr, 'ContainerStats');
    expectKeys(ctr.cpu, 'CPUStats');
    expectKeys(ctr.memory, 'MemoryStats');
    expectKeys(ctr.rootfs, 'FsStats');
    expectKeys(ctr.logs, 'FsStats');
  });

  it('names the system containers kubelet, runtime and pods, and lists no sandbox', () => {
    expect((node.systemContainers as J[]).map((c) => c.name)).toEqual(['kubelet', 'runtime', 'pods']);
    expect((pod.containers as J[]).map((c) => c.name)).toEqual(['app']);
    expect(pod.podRef).toEqual({ name: 'web', namespace: 'default', uid: 'uid-1' });
  });

  it('carries the figures as unsigned integers and metav1 times', () => {
    expect(node.nodeName).toBe('vm');
    expect(ctr.memory).toMatchObject({ workingSetBytes: 64 * 2 ** 20, availableBytes: 64 * 2 ** 20 });
    expect((node.network as J).name).toBe('eth0');
    expect((node.cpu as J).usageNanoCores).toBe(250_000_000);
    expect(ctr.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(metaTime(Date.parse('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05Z');
  });

  it('leaves out what was not measured (omitempty), never writing zeros', () => {
    const snap = snapshot();
    const p = snap.pods[0]!;
    const bare = { ...snap, pods: [{ ...p, network: undefined, volumes: [], ephemeralStorage: undefined, pids: undefined, containers: [{ ...p.containers[0]!, rootfs: undefined, memory: undefined }] }] };
    const out = buildSummary(bare, { nodeName: 'vm' }) as J;
    const bp = (out.pods as J[])[0]!;
    expect(keys(bp)).toEqual(['containers', 'cpu', 'memory', 'podRef', 'startTime']);
    expect(keys((bp.containers as J[])[0])).toEqual(['cpu', 'logs', 'name', 'startTime']);
  });

  it('trims to CPU and memory for only_cpu_and_memory=true', () => {
    const out = buildSummary(snapshot(), { nodeName: 'vm', cpuAndMemoryOnly: true }) as J;
    expect(keys(out.node)).toEqual(['cpu', 'memory', 'nodeName', 'startTime', 'systemContainers']);
    const p = (out.pods as J[])[0]!;
    expect(keys(p)).toEqual(['containers', 'cpu', 'memory', 'podRef', 'startTime']);
    expect(keys((p.containers as J[])[0])).toEqual(['cpu', 'memory', 'name', 'startTime']);
  });
});
