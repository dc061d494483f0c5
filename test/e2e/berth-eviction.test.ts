// Node pressure and eviction through the real API server (rig: kube-apiserver 1.20 + controller-manager), berth as
// the node, kubectl as the user. The memory threshold is forced with a soft threshold
// --eviction-soft=memory.available<(machine total − 16Mi) and a 40 s grace period: the node's working set is always
// above 16Mi, so the node is "low on memory" without using any, and the grace period leaves the stats provider time
// to measure the pod. The node reports MemoryPressure at once (and the controller-manager taints it); after the
// grace period a running Burstable pod is evicted with --eviction-max-pod-grace-period (phase Failed, reason
// Evicted, upstream's message naming the container's usage, a Warning Event); a BestEffort pod is refused admission.
// Runs berth as the e2e node: wrap in `flock /tmp/berth-e2e.lock`.
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import type { Event, Node, Pod } from 'kubernetes-types/core/v1';
import { BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { dropRunObjects, e2eNodeName, kubectl, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';
const RUN = uniqueName('evict');
const THRESHOLD = os.totalmem() - 16 * 2 ** 20;

const podManifest = (name: string, container: Record<string, unknown>, spec: Record<string, unknown> = {}): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { 'berth-e2e': RUN } },
    spec: {
      nodeName: NODE,
      terminationGracePeriodSeconds: 30,
      containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'sleep 3600'], ...container }],
      ...spec,
    },
  });

const getJSON = async <T>(args: string[]): Promise<T> => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
const pressure = async (): Promise<string | undefined> =>
  (await getJSON<Node>(['get', 'node', NODE])).status?.conditions?.find((c) => c.type === 'MemoryPressure')?.status;

describe.skipIf(!up)('eviction under a forced memory threshold', () => {
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', `--eviction-soft=memory.available<${THRESHOLD}`, '--eviction-soft-grace-period=memory.available=40s', '--eviction-max-pod-grace-period=3'],
    replaceNode: true,
    ready: () => waitFor(async () => (await pressure()) === 'True', 60_000, { what: 'MemoryPressure=True on the node', intervalMs: 1000 }),
    hookTimeoutMs: 90_000,
    // Deletes the Node too: it keeps MemoryPressure (and its taint) until a berth without the forced threshold reports; start clean.
    afterCleanup: () => dropRunObjects({ ns: NS, run: RUN, node: NODE }),
    cleanupTimeoutMs: 60_000,
  });

  it('the node reports MemoryPressure with upstream\'s reason and the controller-manager taints it', async () => {
    const node = await getJSON<Node>(['get', 'node', NODE]);
    const c = node.status?.conditions?.find((x) => x.type === 'MemoryPressure');
    expect(c).toMatchObject({ status: 'True', reason: 'KubeletHasInsufficientMemory', message: 'kubelet has insufficient memory available' });
    expect(node.status?.conditions?.find((x) => x.type === 'DiskPressure')?.status).toBe('False');
    await waitFor(
      async () => (await getJSON<Node>(['get', 'node', NODE])).spec?.taints?.some((t) => t.key === 'node.kubernetes.io/memory-pressure' && t.effect === 'NoSchedule'),
      60_000,
      { what: 'the memory-pressure taint', intervalMs: 1000 },
    );
  }, 90_000);

  it('evicts a running pod: phase Failed, reason Evicted, the resource and usage in the message, a Warning Event', async () => {
    const name = `${RUN}-burstable`;
    await kubectl(['apply', '-f', '-'], {
      // A one-byte request: Burstable (admitted under memory pressure), and any usage is over it.
      input: podManifest(name, { resources: { requests: { memory: '1' } } }, {
        tolerations: [{ key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    });
    const evicted = await waitFor(
      async () => {
        const p = await getJSON<Pod>(['get', 'pod', '-n', NS, name]);
        return p.status?.phase === 'Failed' && p;
      },
      120_000,
      { what: 'the pod to be evicted', intervalMs: 1000 },
    );
    expect(evicted.status?.reason).toBe('Evicted');
    expect(evicted.status?.message).toMatch(
      /^The node was low on resource: memory\. Threshold quantity: \d+\w*, available: \d+\w*\. Container c was using \d+\w*, request is 1, has larger consumption of memory\. $/,
    );
    // As 1.20's killPodNow: no container statuses, so kubectl prints STATUS Evicted.
    expect(evicted.status?.containerStatuses).toBeUndefined();
    expect((await kubectl(['get', 'pod', '-n', NS, name, '--no-headers'])).split(/\s+/)[2]).toBe('Evicted');
    // It is never restarted here.
    const containers = await berth.containers();
    expect(containers.filter((c) => c.Labels['io.kubernetes.pod.name'] === name && c.State === 'running')).toEqual([]);
    const events = await waitFor(
      async () => {
        const list = await getJSON<{ items: Event[] }>(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name},reason=Evicted`]);
        return list.items.length > 0 && list.items;
      },
      30_000,
      { what: 'the Evicted event', intervalMs: 1000 },
    );
    expect(events[0]?.type).toBe('Warning');
    expect(events[0]?.message).toBe(evicted.status?.message);
  }, 150_000);

  it('refuses a BestEffort pod while the node has MemoryPressure (reason Evicted)', async () => {
    const name = `${RUN}-besteffort`;
    await kubectl(['apply', '-f', '-'], { input: podManifest(name, {}) });
    const p = await waitFor(
      async () => {
        const pod = await getJSON<Pod>(['get', 'pod', '-n', NS, name]);
        return pod.status?.phase === 'Failed' && pod;
      },
      60_000,
      { what: 'the BestEffort pod to be rejected', intervalMs: 1000 },
    );
    expect(p.status?.reason).toBe('Evicted');
    expect(p.status?.message).toBe('Pod The node had condition: [MemoryPressure]. ');
  }, 90_000);
});
