// An API pod berth refuses (it fails validateApiPod although the server stored it: a 1.20 server keeps a negative
// terminationGracePeriodSeconds or a NUL in a volume item path) is reported, not left Pending without a word: the
// API source hands it to the kubelet as a rejection carrying only its identity, and the kubelet publishes it Failed
// with reason InvalidPod and a Warning Event. An object whose identity could address another API path is only logged.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Pod } from 'kubernetes-types/core/v1';
import { ClusterPodSource, invalidPodStub } from '../../src/kubelet/sources/api-source.ts';
import { Kubelet, type SourceRejection } from '../../src/kubelet/index.ts';
import type { WatchStream } from '../../src/kube/index.ts';
import { silentLogger } from '../../src/lib/index.ts';
import { waitFor } from '../helpers/wait.ts';

const pod = (name: string, uid: string, spec: Record<string, unknown>): Pod =>
  ({ metadata: { name, namespace: 'default', uid, resourceVersion: '1', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { nodeName: 'n1', ...spec } }) as Pod;
const ctr = { name: 'c', image: 'busybox' };

function source(items: unknown[]): { updates: { pods: Pod[]; rejections: SourceRejection[] }[] } {
  const updates: { pods: Pod[]; rejections: SourceRejection[] }[] = [];
  const stream: WatchStream<unknown> = { close() {}, async *[Symbol.asyncIterator]() { await new Promise(() => undefined); } };
  const api = {
    list: async () => ({ metadata: { resourceVersion: '10' }, items }),
    watch: async () => stream,
    create: async () => ({}),
    delete: async () => undefined,
  } as unknown as ConstructorParameters<typeof ClusterPodSource>[0]['api'];
  const s = new ClusterPodSource({
    api,
    kubelet: { updateSource: (_src: string, pods: Pod[], _errors?: unknown, rejections: SourceRejection[] = []) => void updates.push({ pods, rejections }) },
    nodeName: 'n1',
    node: () => ({ name: 'n1' }),
    log: pino({ level: 'silent' }),
  });
  s.start();
  return { updates };
}

describe('invalid API pods are reported, not ignored', () => {
  it('the API source hands addressable invalid pods to the kubelet as InvalidPod rejections with their identity only', async () => {
    const { updates } = source([
      pod('ok', 'u-ok', { containers: [ctr] }),
      pod('neg-grace', 'u-neg', { containers: [ctr], terminationGracePeriodSeconds: -1 }),
      pod('nul-item', 'u-nul', { containers: [{ ...ctr, volumeMounts: [{ name: 'v', mountPath: '/v' }] }], volumes: [{ name: 'v', secret: { secretName: 's', items: [{ key: 'k', path: 'nul\u0000' }] } }] }),
      pod('../etc', 'u-slash', { containers: [ctr] }),
    ]);
    const u = await waitFor(() => updates.at(-1), 5000, 'an update');
    expect(u.pods.map((p) => p.metadata?.name)).toEqual(['ok']);
    expect(u.rejections.map((r) => [r.pod.metadata?.name, r.reason])).toEqual([
      ['neg-grace', 'InvalidPod'],
      ['nul-item', 'InvalidPod'],
    ]);
    expect(u.rejections[0]!.message).toMatch(/^is invalid: .*terminationGracePeriodSeconds/);
    // only the identity travels: nothing of the invalid spec reaches the kubelet
    expect(u.rejections[1]!.pod).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nul-item', namespace: 'default', uid: 'u-nul', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { containers: [] } });
  });

  it.each([
    ['a name with a slash', { name: '../etc', namespace: 'default', uid: 'u' }],
    ['a namespace with a dot', { name: 'a', namespace: 'a.b', uid: 'u' }],
    ['a uid with a slash', { name: 'a', namespace: 'default', uid: 'u/../x' }],
    ['a numeric uid', { name: 'a', namespace: 'default', uid: 7 }],
    ['no metadata', undefined],
  ])('no stub for %s (it could address another API path)', (_what, metadata) => {
    expect(invalidPodStub({ metadata, spec: {} })).toBeUndefined();
  });

  it('the kubelet publishes a rejection Failed / InvalidPod with a Warning Event, once, and forgets it when it is gone', () => {
    const runtime = new Proxy({}, { get: () => () => Promise.reject(new Error('no runtime in this test')) });
    const kubelet = new Kubelet({
      runtime: runtime as never,
      images: runtime as never,
      log: silentLogger,
      node: { nodeName: 'n1', hostname: 'n1', memoryCapacityBytes: 1 << 30, clusterDNS: [], clusterDomain: 'cluster.local', rootDir: '/nonexistent/berth-root', podLogsDir: '/nonexistent/berth-logs' },
      hostIP: () => '127.0.0.1',
      sources: ['api'],
    });
    const published: [string, string | undefined][] = [];
    kubelet.onStatus((uid, rec) => published.push([uid, rec?.status.reason]));
    const stub = invalidPodStub(pod('neg-grace', 'u-neg', {}))!;
    const rej: SourceRejection = { pod: stub, reason: 'InvalidPod', message: 'is invalid: spec.terminationGracePeriodSeconds: Invalid value: -1' };
    kubelet.updateSource('api', [], [], [rej]);
    kubelet.updateSource('api', [], [], [rej]);
    expect(kubelet.pod('u-neg')?.status).toEqual({ phase: 'Failed', reason: 'InvalidPod', message: 'Pod is invalid: spec.terminationGracePeriodSeconds: Invalid value: -1' });
    expect(kubelet.recorder.all().filter((e) => e.reason === 'InvalidPod').map((e) => [e.type, e.message])).toEqual([['Warning', rej.message]]);
    kubelet.updateSource('api', [], [], []);
    expect(kubelet.pod('u-neg')).toBeUndefined();
    expect(published).toEqual([
      ['u-neg', 'InvalidPod'],
      ['u-neg', undefined],
    ]);
  });
});
