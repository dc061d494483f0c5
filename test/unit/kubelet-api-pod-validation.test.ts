// A malformed pod from the API server is logged once and skipped, never thrown (issue #9 defect 3). Objects go
// through the real Informer's list and watch handlers into the ClusterPodSource; a throw from its microtask would be
// an uncaught exception (vitest fails the run on one).
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Pod } from 'kubernetes-types/core/v1';
import { ClusterPodSource, validateApiPod } from '../../src/kubelet/sources/api-source.ts';
import type { WatchEvent, WatchStream } from '../../src/kube/index.ts';
import { waitFor } from '../helpers/wait.ts';

const good = (name: string, uid = `uid-${name}`): Pod => ({
  metadata: { name, namespace: 'default', uid, resourceVersion: '1' },
  spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }] },
});

// Each is wrong in a way the code once trusted with `!` or a type assumption.
const malformed: [string, unknown][] = [
  ['no metadata', { spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['metadata is a string', { metadata: 'pod', spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['no uid', { metadata: { name: 'no-uid', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['uid is a number', { metadata: { name: 'num-uid', namespace: 'default', uid: 7 }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['no namespace', { metadata: { name: 'no-ns', uid: 'u-no-ns' }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['no spec', { metadata: { name: 'no-spec', namespace: 'default', uid: 'u-no-spec' } }],
  ['spec is null', { metadata: { name: 'null-spec', namespace: 'default', uid: 'u-null-spec' }, spec: null }],
  ['containers is a string', { metadata: { name: 'str-ctrs', namespace: 'default', uid: 'u-str' }, spec: { containers: 'c' } }],
  ['container without image', { metadata: { name: 'no-image', namespace: 'default', uid: 'u-noimg' }, spec: { containers: [{ name: 'c' }] } }],
  ['container is null', { metadata: { name: 'null-ctr', namespace: 'default', uid: 'u-nullc' }, spec: { containers: [null] } }],
  ['name with a slash', { metadata: { name: '../etc', namespace: 'default', uid: 'u-slash' }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
  ['annotations is an array', { metadata: { name: 'ann', namespace: 'default', uid: 'u-ann', annotations: ['x'] }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
];

interface Captured {
  level: number;
  msg: string;
  pod?: string;
}

function setup(listItems: unknown[]): {
  source: ClusterPodSource;
  updates: Pod[][];
  lines: Captured[];
  push: (ev: WatchEvent<unknown>) => void;
} {
  const lines: Captured[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Captured) });
  const queue: WatchEvent<unknown>[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const stream: WatchStream<unknown> = {
    close() {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      while (!closed) {
        const ev = queue.shift();
        if (ev) yield ev;
        else await new Promise<void>((r) => (wake = r));
      }
    },
  };
  const api = {
    list: async () => ({ metadata: { resourceVersion: '10' }, items: listItems }),
    watch: async () => stream,
    create: async () => {
      throw new Error('not in this test');
    },
    delete: async () => undefined,
  } as unknown as ConstructorParameters<typeof ClusterPodSource>[0]['api'];
  const updates: Pod[][] = [];
  const source = new ClusterPodSource({
    api,
    kubelet: { updateSource: (_src: string, pods: Pod[]) => void updates.push(pods) },
    nodeName: 'n1',
    node: () => ({ name: 'n1' }),
    log,
  });
  const push = (ev: WatchEvent<unknown>): void => {
    queue.push(ev);
    wake?.();
  };
  return { source, updates, lines, push };
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('validateApiPod', () => {
  it('accepts a normal API pod', () => {
    expect(validateApiPod(good('a'))).toEqual([]);
  });
  it.each(malformed)('rejects a pod with %s', (_n, obj) => {
    expect(validateApiPod(obj).length).toBeGreaterThan(0);
  });
  it.each([[null], [undefined], ['pod'], [42], [[]]])('never throws, and rejects %j', (obj) => {
    expect(validateApiPod(obj).length).toBeGreaterThan(0);
  });
});

describe('ClusterPodSource with malformed pods from the API server', () => {
  it('skips bad pods from the list and from watch events, hands the good ones to the kubelet, and logs each bad one once', async () => {
    const listed = [good('a'), ...malformed.slice(0, 6).map(([, o]) => o)];
    const { source, updates, lines, push } = setup(listed);
    stop = () => source.stop();
    source.start();
    await waitFor(() => updates.length > 0, 5000, { intervalMs: 10 });
    expect(updates.at(-1)!.map((p) => p.metadata!.name)).toEqual(['a']);

    for (const [, o] of malformed.slice(6)) push({ type: 'ADDED', object: o });
    push({ type: 'ADDED', object: good('b') });
    await waitFor(() => updates.at(-1)!.length === 2, 5000, { intervalMs: 10 });
    expect(updates.at(-1)!.map((p) => p.metadata!.name).sort()).toEqual(['a', 'b']);

    // more changes: the bad pods are still in the informer's cache but are not logged again
    push({ type: 'MODIFIED', object: { ...good('b'), metadata: { ...good('b').metadata, resourceVersion: '2' } } });
    push({ type: 'ADDED', object: good('c') });
    await waitFor(() => updates.at(-1)!.length === 3, 5000, { intervalMs: 10 });
    const warnings = lines.filter((l) => l.msg === 'ignoring invalid pod from the API server');
    // every malformed object is reported (objects without a usable name share the informer key '' and replace each other)
    expect(warnings.length).toBeGreaterThanOrEqual(malformed.length - 2);
    expect(new Set(warnings.map((w) => w.pod)).size).toBe(warnings.length);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(source.serverStatus('uid-a')).toBeUndefined();
  });

  it('non-object list items and watch events without an object are dropped by the informer, and the good pods still flow', async () => {
    const { source, updates, lines, push } = setup([null, 'pod', 7, [good('x')], good('a')]);
    stop = () => source.stop();
    source.start();
    await waitFor(() => updates.length > 0, 5000, { intervalMs: 10 });
    expect(updates.at(-1)!.map((p) => p.metadata!.name)).toEqual(['a']);
    push({ type: 'ADDED', object: null });
    push({ type: 'MODIFIED', object: 'x' });
    push({ type: 'ADDED', object: good('b') });
    await waitFor(() => updates.at(-1)!.length === 2, 5000, { intervalMs: 10 });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('a bad mirror-looking pod does not reach the mirror pod manager', async () => {
    const badMirror = { metadata: { name: 'm', namespace: 'default', annotations: { 'kubernetes.io/config.mirror': 'h' } }, spec: { containers: [{ name: 'c', image: 'x' }] } };
    const { source, updates, lines } = setup([good('a'), badMirror]);
    stop = () => source.stop();
    source.start();
    source.setStaticPods([]);
    await waitFor(() => updates.length > 0, 5000, { intervalMs: 10 });
    await new Promise((r) => setTimeout(r, 300));
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.some((l) => l.msg === 'ignoring invalid pod from the API server' && l.pod === 'default/m')).toBe(true);
  });
});
