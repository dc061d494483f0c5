// The informer after an API server outage (issue 9, scenario 3): when the first watch that opens again is answered by
// 410 Gone at once (the server's watch cache restarted past our version), the informer relists right away. Only a
// fresh list followed by an instant 410 backs off (the list-loop guard); the outage's saturated back-off must not be
// paid a second time (it was: a 5 min outage gave 30 s to reconnect plus 30 s more before the relist).
import { afterEach, describe, expect, it } from 'vitest';
import { Informer, KubeClient, resources, type ClientConfig } from '../../src/kube/index.ts';
import { silentLogger } from '../../src/lib/index.ts';
import { FakeApiServer, until, type FakePod } from './kube-fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const config = (server: string): ClientConfig => ({ server, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth: { type: 'none' } });
const gone = { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' };

async function setup(): Promise<{ fake: FakeApiServer; informer: Informer<FakePod> }> {
  const fake = await new FakeApiServer().start();
  const client = new KubeClient({ config: config(fake.url), requestTimeoutMs: 2000 });
  // No jitter; the 7th consecutive failure would wait 20·2⁶ = 1280 ms.
  const informer = new Informer<FakePod>({ api: client, ref: resources.pods, log: silentLogger, initialBackoffMs: 20, maxBackoffMs: 5000, random: () => 0.5 });
  cleanups.push(() => fake.close(), () => client.close(), () => informer.stop());
  return { fake, informer };
}

describe('Informer after an outage', () => {
  it('relists at once when the first watch after an outage is answered by 410 Gone', async () => {
    const { fake, informer } = await setup();
    fake.put('a');
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1, 3000, 'watch');
    // The outage: the open watch breaks, then five watch attempts fail (back-off 20 … 320 ms).
    fake.watchFailures.push(503, 503, 503, 503, 503);
    fake.broadcast('ERROR', { ...gone, code: 500, reason: 'InternalError', message: 'connection to etcd lost' });
    await until(() => fake.watchRequests.length === 7 && fake.watches.length === 1, 5000, 'watch open again');
    const t0 = Date.now();
    fake.broadcast('ERROR', gone);
    await until(() => fake.lists.length === 2, 5000, 'relist');
    expect(Date.now() - t0).toBeLessThan(500);
    expect(fake.lists[1]!.query.get('resourceVersion')).toBeNull();
    await until(() => fake.watches.length === 1, 3000, 'watch after the relist');
  });

  it('still backs off when a fresh list is answered by an instant 410 again (no list loop)', async () => {
    const { fake, informer } = await setup();
    informer.start();
    await informer.waitForSync();
    await until(() => fake.watches.length === 1, 3000, 'watch');
    // Each 410 comes at once on a watch from the version just listed: back off (20, then 40 ms) before listing again.
    for (const [lists, minMs] of [[2, 15], [3, 35]] as const) {
      const t0 = Date.now();
      fake.broadcast('ERROR', gone);
      await until(() => fake.lists.length === lists && fake.watches.length === 1, 5000, `relist ${lists}`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(minMs);
    }
    expect(informer.stats().gone).toBe(2);
  });
});
