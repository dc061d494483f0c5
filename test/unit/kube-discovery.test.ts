import { describe, it, expect, afterEach } from 'vitest';
import { Discovery, KubeClient, resources, type ClientConfig } from '../../src/kube/index.ts';
import { isNotFound, FakeClock } from '../../src/lib/index.ts';
import { startFixture, sendJson, status, type Fixture } from './kube-fixture.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(server: string): ClientConfig {
  return { server, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth: { type: 'none' } };
}

function group(name: string, versions: string[], preferred = versions[0]) {
  return {
    name,
    versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${name}/${preferred}`, version: preferred },
  };
}

async function setup(groups: unknown[]): Promise<{ fx: Fixture; discovery: Discovery; clock: FakeClock }> {
  const fx = await startFixture((req, res) => {
    if (req.path === '/api') sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'] });
    else if (req.path === '/apis') sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    else if (req.path === '/version') sendJson(res, 200, { major: '1', minor: '20', gitVersion: 'v1.20.2' });
    else sendJson(res, 404, status(404, 'NotFound', 'nope'));
  });
  const client = new KubeClient({ config: config(fx.url) });
  const clock = new FakeClock();
  cleanups.push(() => fx.close(), () => client.close());
  return { fx, discovery: new Discovery({ api: client, clock, cacheTtlMs: 60_000 }), clock };
}

describe('Discovery', () => {
  it('picks the first served candidate (1.20: v1beta1 only; 1.21+: v1)', async () => {
    const old = await setup([group('discovery.k8s.io', ['v1beta1']), group('policy', ['v1beta1']), group('coordination.k8s.io', ['v1', 'v1beta1'])]);
    expect(await old.discovery.preferredVersion('discovery.k8s.io', ['v1', 'v1beta1'])).toBe('v1beta1');
    expect(await old.discovery.preferredVersion('policy', ['v1', 'v1beta1'])).toBe('v1beta1');
    expect(await old.discovery.preferredVersion('', ['v1'])).toBe('v1');
    expect(await old.discovery.resolve(resources.endpointslices, ['v1', 'v1beta1'])).toEqual({ ...resources.endpointslices, version: 'v1beta1' });
    const fresh = await setup([group('discovery.k8s.io', ['v1', 'v1beta1']), group('policy', ['v1', 'v1beta1'])]);
    expect(await fresh.discovery.preferredVersion('discovery.k8s.io', ['v1', 'v1beta1'])).toBe('v1');
    expect(await fresh.discovery.servedVersions('policy')).toEqual(['v1', 'v1beta1']);
  });

  it('throws NotFound when nothing fits, and caches the group list for its TTL', async () => {
    const { fx, discovery, clock } = await setup([group('policy', ['v1beta1'])]);
    const err = await discovery.preferredVersion('discovery.k8s.io', ['v1', 'v1beta1']).catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
    expect((err as Error).message).toMatch(/none of v1, v1beta1 is served/);
    await discovery.preferredVersion('policy', ['v1', 'v1beta1']);
    expect(fx.requests.filter((r) => r.path === '/apis')).toHaveLength(1);
    clock.advance(60_000);
    await discovery.preferredVersion('policy', ['v1beta1']);
    expect(fx.requests.filter((r) => r.path === '/apis')).toHaveLength(2);
  });

  it('serverVersion reads /version', async () => {
    const { discovery } = await setup([]);
    expect(await discovery.serverVersion()).toMatchObject({ major: '1', minor: '20', gitVersion: 'v1.20.2' });
  });
});
