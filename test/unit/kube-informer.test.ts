import { describe, it, expect, afterEach } from 'vitest';
import { Writable } from 'node:stream';
import { KubeClient, Informer, resources, type ClientConfig, type KubeApi, type InformerOptions, type WatchStream, type ObjectList } from '../../src/kube/index.ts';
import { createLogger, silentLogger, FakeClock, isNotFound } from '../../src/lib/index.ts';
import { ApiError } from '../../src/kube/index.ts';
import { FakeApiServer, freePort, sleep, until, status, type FakePod } from './kube-fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(server: string): ClientConfig {
  return { server, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth: { type: 'none' } };
}

interface Recorder {
  events: string[];
}

async function setup(opts: Partial<InformerOptions> & { port?: number; server?: FakeApiServer } = {}) {
  const fake = opts.server ?? (await new FakeApiServer().start(opts.port));
  const client = new KubeClient({ config: config(fake.url), requestTimeoutMs: 2000 });
  const informer = new Informer<FakePod>({
    api: client,
    ref: resources.pods,
    log: silentLogger,
    initialBackoffMs: 10,
    maxBackoffMs: 100,
    stallTimeoutMs: 5000,
    ...opts,
  });
  const rec: Recorder = { events: [] };
  informer.addEventHandler({
    onAdd: (p) => void rec.events.push(`add ${p.metadata.name}`),
    onUpdate: (o, n) => void rec.events.push(`update ${n.metadata.name} ${o.metadata.resourceVersion}->${n.metadata.resourceVersion}`),
    onDelete: (p) => void rec.events.push(`delete ${p.metadata.name}`),
  });
  cleanups.push(
    () => fake.close(),
    () => client.close(),
    () => informer.stop(),
  );
  return { fake, client, informer, rec };
}

describe('Informer', () => {
  it('lists with pagination, then watches from the list resourceVersion with bookmarks', async () => {
    const fake = await new FakeApiServer().start();
    for (let i = 0; i < 7; i++) fake.put(`p${i}`);
    const { informer, rec } = await setup({ server: fake, pageSize: 3, fieldSelector: 'spec.nodeName=node-1', labelSelector: 'app=x' });
    informer.start();
    await informer.waitForSync();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.list()).toHaveLength(7);
    expect(rec.events.filter((e) => e.startsWith('add'))).toHaveLength(7);
    expect(fake.lists.map((r) => [r.query.get('limit'), r.query.get('continue'), r.query.get('resourceVersion')])).toEqual([
      ['3', null, '0'],
      ['3', '3', null],
      ['3', '6', null],
    ]);
    expect(fake.lists.every((r) => r.query.get('fieldSelector') === 'spec.nodeName=node-1' && r.query.get('labelSelector') === 'app=x')).toBe(true);
    await until(() => fake.watches.length === 1, 3000, 'watch');
    const wq = fake.watchRequests[0]!.query;
    expect(wq.get('resourceVersion')).toBe('107');
    expect(wq.get('allowWatchBookmarks')).toBe('true');
    expect(wq.get('fieldSelector')).toBe('spec.nodeName=node-1');
    expect(informer.get('default/p3').metadata.name).toBe('p3');
    expect(() => informer.get('default/nope')).toThrow(/not in informer cache/);
    try {
      informer.get('default/nope');
    } catch (e: unknown) {
      expect(isNotFound(e)).toBe(true);
    }
  });

  it('applies watch events split across chunks and several per chunk', async () => {
    const { fake, informer, rec } = await setup();
    fake.splitEvents = 4;
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    fake.put('a');
    fake.put('b');
    fake.put('a', { v: '2' });
    fake.remove('b');
    await until(() => rec.events.length === 4);
    expect(rec.events).toEqual(['add a', 'add b', 'update a 101->103', 'delete b']);
    expect(informer.list().map((p) => p.metadata.name)).toEqual(['a']);
    // several events in one chunk
    fake.splitEvents = 1;
    fake.broadcastRaw(
      [
        { type: 'ADDED', object: { metadata: { name: 'c', namespace: 'default', resourceVersion: '200' } } },
        { type: 'ADDED', object: { metadata: { name: 'd', namespace: 'default', resourceVersion: '201' } } },
      ]
        .map((e) => JSON.stringify(e) + '\n')
        .join(''),
    );
    await until(() => rec.events.length === 6);
    expect(informer.resourceVersion()).toBe('201');
  });

  it('re-watches from the last resourceVersion (bookmark) when the server ends a watch, without relisting', async () => {
    const { fake, informer } = await setup();
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    fake.put('a');
    fake.rv = 150;
    fake.bookmark();
    await until(() => informer.resourceVersion() === '150');
    fake.endWatches();
    await until(() => fake.watchRequests.length === 2);
    expect(fake.watchRequests[1]!.query.get('resourceVersion')).toBe('150');
    expect(fake.lists).toHaveLength(1);
  });

  it('relists after a malformed line, synthesizing deletes, updates and adds for what changed meanwhile', async () => {
    const { fake, informer, rec } = await setup();
    fake.put('keep');
    fake.put('change');
    fake.put('vanish');
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    rec.events.length = 0;
    // changes the informer never hears about over the watch
    fake.put('change', { v: '2' }, { silent: true });
    fake.remove('vanish', { silent: true });
    fake.put('new', {}, { silent: true });
    fake.broadcastRaw('{"type":"ADDED","object":{"metadata":{"name":"x"}}\n'); // truncated JSON
    await until(() => fake.lists.length === 2, 3000, 'relist');
    await until(() => rec.events.length === 3);
    expect(rec.events.sort()).toEqual(['add new', 'delete vanish', 'update change 102->104']);
    expect(informer.list().map((p) => p.metadata.name).sort()).toEqual(['change', 'keep', 'new']);
    expect(informer.stats().lists).toBe(2);
  });

  it('relists on an ERROR event with code 410, as a consistent read (no resourceVersion)', async () => {
    const { fake, informer } = await setup();
    fake.put('a');
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    fake.broadcast('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' });
    await until(() => fake.lists.length === 2, 3000, 'relist');
    expect(fake.lists[1]!.query.get('resourceVersion')).toBeNull();
    expect(informer.stats().gone).toBe(1);
    await until(() => fake.watches.length === 1);
    expect(informer.hasSynced()).toBe(true);
  });

  it('relists when the watch request itself answers 410 Gone', async () => {
    const { fake, informer } = await setup();
    fake.watchFailures.push(410);
    informer.start();
    await informer.waitForSync();
    await until(() => fake.lists.length === 2, 3000, 'relist');
    await until(() => fake.watches.length === 1);
    expect(fake.watchRequests).toHaveLength(2);
  });

  it('relists as a consistent read when the server has not reached the requested version', async () => {
    const { fake, informer } = await setup();
    fake.watchFailures.push({
      ...status(504, 'Timeout', 'Too large resource version: 107, current: 100'),
      code: 504,
      details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
    });
    informer.start();
    await informer.waitForSync();
    await until(() => fake.lists.length === 2, 3000, 'relist');
    expect(fake.lists[1]!.query.get('resourceVersion')).toBeNull();
    await until(() => fake.watches.length === 1);
  });

  it('re-watches (no relist) after a 5xx on the watch, and retries a failing list with back-off', async () => {
    const { fake, informer } = await setup();
    fake.listFailures.push(500, 503);
    fake.watchFailures.push(500, 500);
    informer.start();
    await informer.waitForSync();
    expect(fake.lists).toHaveLength(3);
    await until(() => fake.watches.length === 1);
    expect(fake.watchRequests).toHaveLength(3);
    expect(fake.lists).toHaveLength(3);
    expect(informer.stats().failures).toBe(4);
  });

  it('replaces a silent (stalled) watch, and bookmarks keep a quiet watch alive', async () => {
    const { fake, informer } = await setup({ stallTimeoutMs: 250 });
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    // bookmarks every 80 ms: no reconnect for 600 ms
    const timer = setInterval(() => fake.bookmark(), 80);
    await sleep(600);
    clearInterval(timer);
    expect(fake.watchRequests).toHaveLength(1);
    // silence: replaced within ~stall timeout, without a relist
    await until(() => fake.watchRequests.length === 2, 2000, 'reconnect');
    expect(informer.stats().stalls).toBe(1);
    expect(fake.lists).toHaveLength(1);
  });

  it('backs off on connection refused (growing delays) and syncs once the server is up', async () => {
    const port = await freePort();
    const real = new KubeClient({ config: config(`http://127.0.0.1:${port}`), requestTimeoutMs: 1000 });
    const attempts: number[] = [];
    const api: Pick<KubeApi, 'list' | 'watch'> = {
      list: <T>(...a: Parameters<KubeApi['list']>): Promise<ObjectList<T>> => {
        attempts.push(Date.now());
        return real.list<T>(...a);
      },
      watch: <T>(...a: Parameters<KubeApi['watch']>): Promise<WatchStream<T>> => real.watch<T>(...a),
    };
    const informer = new Informer<FakePod>({ api, ref: resources.pods, log: silentLogger, initialBackoffMs: 20, maxBackoffMs: 160, random: () => 0.5 });
    cleanups.push(() => real.close(), () => informer.stop());
    informer.start();
    await until(() => attempts.length >= 5, 3000, 'attempts');
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    // 20, 40, 80, 160 (±timer slack)
    expect(gaps[0]!).toBeGreaterThanOrEqual(15);
    expect(gaps[1]!).toBeGreaterThanOrEqual(35);
    expect(gaps[2]!).toBeGreaterThanOrEqual(70);
    expect(gaps[3]!).toBeGreaterThanOrEqual(150);
    expect(informer.hasSynced()).toBe(false);
    expect(informer.healthy()).toBe(false);
    const fake = await new FakeApiServer().start(port);
    cleanups.push(() => fake.close());
    fake.put('late');
    await informer.waitForSync();
    expect(informer.list().map((p) => p.metadata.name)).toEqual(['late']);
    expect(informer.healthy()).toBe(true);
  });

  it('survives handlers that throw or reject, and logs them', async () => {
    const lines: string[] = [];
    const log = createLogger({
      destination: new Writable({
        write(chunk: Buffer, _e, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    });
    const { fake, informer, rec } = await setup({ log });
    informer.addEventHandler({
      onAdd: () => {
        throw new Error('boom in onAdd');
      },
      onUpdate: () => Promise.reject(new Error('async boom')),
    });
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1);
    fake.put('a');
    fake.put('a', { v: '2' });
    fake.put('b');
    await until(() => rec.events.length === 3);
    expect(rec.events).toEqual(['add a', 'update a 101->102', 'add b']);
    await until(() => lines.some((l) => l.includes('async boom')));
    expect(lines.some((l) => l.includes('boom in onAdd') && l.includes('event handler failed'))).toBe(true);
    expect(informer.list()).toHaveLength(2);
  });

  it('replays adds to a handler registered after sync; stop() ends the watch; waitForSync rejects after stop', async () => {
    const { fake, informer } = await setup();
    fake.put('a');
    fake.put('b');
    informer.start();
    await informer.waitForSync();
    const late: string[] = [];
    const remove = informer.addEventHandler({ onAdd: (p) => void late.push(p.metadata.name) });
    expect(late.sort()).toEqual(['a', 'b']);
    remove();
    await until(() => fake.watches.length === 1);
    await informer.stop();
    await until(() => fake.watches.length === 0, 2000, 'watch closed');
    const other = new Informer<FakePod>({ api: { list: () => new Promise(() => undefined), watch: () => new Promise(() => undefined) }, ref: resources.pods, log: silentLogger });
    other.start();
    const w = other.waitForSync();
    await other.stop();
    await expect(w).rejects.toThrow(/stopped/);
  });

  it('reports sync age and health from its clock', async () => {
    const clock = new FakeClock();
    let resolveWatch: (() => void) | undefined;
    const api: Pick<KubeApi, 'list' | 'watch'> = {
      list: <T>() => Promise.resolve({ metadata: { resourceVersion: '5' }, items: [] } as ObjectList<T>),
      // a watch that opens and then never delivers anything
      watch: <T>() =>
        Promise.resolve({
          close: () => resolveWatch?.(),
          [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<never>>((r) => (resolveWatch = () => r({ done: true, value: undefined }))) }),
        } as unknown as WatchStream<T>),
    };
    const informer = new Informer<FakePod>({ api, ref: resources.pods, log: silentLogger, clock, stallTimeoutMs: 60_000, unhealthyAfterMs: 90_000 });
    cleanups.push(() => informer.stop());
    expect(informer.lastSyncAgeMs()).toBe(Number.POSITIVE_INFINITY);
    informer.start();
    await informer.waitForSync();
    expect(informer.lastSyncAgeMs()).toBe(0);
    await until(() => informer.stats().watches === 1, 1000, 'watch');
    clock.advance(30_000);
    expect(informer.lastSyncAgeMs()).toBe(30_000);
    expect(informer.healthy()).toBe(true);
    // the stall watchdog fires at 60 s and the watch is reopened (fresh sync)
    clock.advance(30_000);
    await until(() => informer.stats().watches === 2, 1000, 'rewatch');
    expect(informer.lastSyncAgeMs()).toBe(0);
  });

  it('becomes unhealthy when it cannot reach the server after a sync', async () => {
    const clock = new FakeClock();
    let watchCalls = 0;
    const api: Pick<KubeApi, 'list' | 'watch'> = {
      list: <T>() => Promise.resolve({ metadata: { resourceVersion: '5' }, items: [] } as ObjectList<T>),
      watch: () => {
        watchCalls++;
        return Promise.reject(new ApiError('ApiUnavailable', 'connect ECONNREFUSED', { statusCode: 0 }));
      },
    };
    const informer = new Informer<FakePod>({ api, ref: resources.pods, log: silentLogger, clock, stallTimeoutMs: 60_000, maxBackoffMs: 30_000 });
    cleanups.push(() => informer.stop());
    informer.start();
    await informer.waitForSync();
    expect(informer.healthy()).toBe(true);
    for (let i = 0; i < 40; i++) {
      await sleep(2); // let the loop reach its next back-off sleep
      clock.advance(10_000);
    }
    expect(watchCalls).toBeGreaterThan(10); // it kept retrying, backing off to ~30 s
    expect(informer.lastSyncAgeMs()).toBe(400_000);
    expect(informer.healthy()).toBe(false); // default threshold 2·60 s + 30 s
    expect(informer.hasSynced()).toBe(true);
  });

  it('periodic relist when relistPeriodMs is set', async () => {
    const { fake, informer } = await setup({ relistPeriodMs: 200 });
    informer.start();
    await informer.waitForSync();
    await until(() => fake.lists.length >= 3, 3000, 'periodic relists');
    expect(informer.stats().stalls).toBe(0);
  });
});
