// Backend detection (iptables-wrapper rules) and `berth rules` against the real tools, in a throwaway namespace.
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import { ServiceProxy, createIptablesExecutor, resolveProxyConfig, runRules, supportsRandomFully } from '../../src/proxy/index.ts';
import { Netns, destroyAll } from './helpers/netns.ts';
import { service, slice } from '../unit/proxy-fixtures.ts';

describe('iptables backend', () => {
  afterAll(destroyAll);

  it('auto follows the variant holding more rules, and the hint chain over rule counts', async () => {
    const ns = await Netns.create('backend');
    const auto = async () => (await createIptablesExecutor({ backend: 'auto', netns: ns.name, log: silentLogger })).backend;
    expect(await auto()).toBe('nft');
    await ns.exec(['iptables-legacy', '-t', 'filter', '-A', 'INPUT', '-s', '192.0.2.1/32', '-j', 'DROP']);
    expect(await auto()).toBe('legacy');
    await ns.exec(['iptables-nft', '-t', 'mangle', '-N', 'KUBE-IPTABLES-HINT']);
    expect(await auto()).toBe('nft');
    const ex = await createIptablesExecutor({ backend: 'legacy', netns: ns.name, log: silentLogger });
    expect(ex.backend).toBe('legacy');
    expect(supportsRandomFully(await ex.version())).toBe(true);
    expect(await ex.chainExists('filter', 'INPUT')).toBe(true);
    expect(await ex.chainExists('mangle', 'KUBE-PROXY-CANARY')).toBe(false);
  });

  it('reports the failing line of a rejected restore', async () => {
    const ns = await Netns.create('backend');
    for (const backend of ['legacy', 'nft'] as const) {
      const ex = await createIptablesExecutor({ backend, netns: ns.name, log: silentLogger });
      const err = await ex.restore('*nat\n:KUBE-X - [0:0]\n-D KUBE-X -j ACCEPT\nCOMMIT\n').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'RestoreFailed', line: 3 });
      expect((err as { context: string[] }).context).toContain('>3: -D KUBE-X -j ACCEPT');
    }
  });

  it('runRules describes a Service from the live tables', async () => {
    const ns = await Netns.create('backend');
    const executor = await createIptablesExecutor({ backend: 'nft', netns: ns.name, log: silentLogger });
    const proxy = new ServiceProxy({ config: resolveProxyConfig({ minSyncPeriodMs: 0 }), node: { name: 'n' }, executor, log: silentLogger });
    proxy.onServiceAdd(service('default', 'web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] }));
    proxy.onEndpointSliceAdd(slice('default', 'web', 'w', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }]));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    const text = await runRules({ service: 'default/web', backend: 'nft', netns: ns.name, log: silentLogger });
    expect(text).toContain('(endpoint 10.244.1.2:8080)');
    expect(text).toContain('-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP"');
    await expect(runRules({ service: 'default/none', backend: 'nft', netns: ns.name, log: silentLogger })).rejects.toMatchObject({ code: 'NotFound' });
  });
});
