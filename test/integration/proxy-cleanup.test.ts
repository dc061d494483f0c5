// `berth cleanup` against real iptables in a throwaway namespace: after berth programmed Services on top of
// foreign (Docker-like) rules, cleanup leaves iptables-save exactly as it was before berth ran.
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import { ServiceProxy, createIptablesExecutor, resolveProxyConfig, runCleanup } from '../../src/proxy/index.ts';
import { Netns, destroyAll, saveNormalized } from './helpers/netns.ts';
import { service, slice } from '../unit/proxy-fixtures.ts';

const FOREIGN = `*filter
:DOCKER-USER - [0:0]
-A INPUT -s 192.0.2.1/32 -j DROP
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
*mangle
-A OUTPUT -p udp -m udp --dport 9 -j ACCEPT
COMMIT
`;

async function programServices(ns: Netns, backend: 'nft' | 'legacy'): Promise<void> {
  const executor = await createIptablesExecutor({ backend, netns: ns.name, log: silentLogger });
  const proxy = new ServiceProxy({ config: resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16' }), node: { name: 'n' }, executor, log: silentLogger });
  proxy.onServiceAdd(service('default', 'web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
  proxy.onServiceAdd(service('default', 'empty', { clusterIP: '10.96.0.11', ports: [{ port: 80 }] }));
  proxy.onServiceAdd(
    service('default', 'lb', { type: 'LoadBalancer', clusterIP: '10.96.0.12', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, loadBalancerSourceRanges: ['10.0.0.0/8'], ports: [{ port: 80, nodePort: 30081 }] }, { status: { loadBalancer: { ingress: [{ ip: '5.5.5.5' }] } } }),
  );
  proxy.onEndpointSliceAdd(slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }]));
  proxy.onEndpointSliceAdd(slice('default', 'lb', 'lb-1', [{ port: 8080 }], [{ ip: '10.244.1.4', node: 'n' }]));
  proxy.onServicesSynced();
  proxy.onEndpointSlicesSynced();
  expect((await proxy.syncNow()).kind).toBe('full');
  proxy.onEndpointSliceUpdate(undefined, slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.5' }]));
  expect((await proxy.syncNow()).kind).toBe('partial');
}

describe.each(['nft', 'legacy'] as const)('berth cleanup (%s)', (backend) => {
  afterAll(destroyAll);

  it('leaves the tables exactly as they were before berth', async () => {
    const ns = await Netns.create('clean');
    await ns.exec(['sh', '-c', `printf '%s' "$0" | iptables-${backend}-restore --noflush`, FOREIGN]);
    const before = await saveNormalized(ns, backend);
    expect(before).toContain('-A FORWARD -j DOCKER-USER');

    await programServices(ns, backend);
    const programmed = await saveNormalized(ns, backend);
    expect(programmed).toContain(':KUBE-SERVICES');
    expect(programmed).toContain('KUBE-SEP-');

    const results = await runCleanup({ backend, netns: ns.name, log: silentLogger });
    expect(results[0]!.chains.length).toBeGreaterThan(10);
    expect(results[0]!.kept).toEqual([]);
    expect(await saveNormalized(ns, backend)).toBe(before);

    // Idempotent: nothing left to remove.
    const again = await runCleanup({ backend, netns: ns.name, log: silentLogger });
    expect(again[0]!.chains).toEqual([]);
    expect(await saveNormalized(ns, backend)).toBe(before);
  });
});

describe('berth cleanup (all backends)', () => {
  afterAll(destroyAll);

  it('cleans both variants after a backend switch', async () => {
    const ns = await Netns.create('clean');
    const before = { nft: await saveNormalized(ns, 'nft'), legacy: await saveNormalized(ns, 'legacy') };
    await programServices(ns, 'legacy');
    await programServices(ns, 'nft');
    const results = await runCleanup({ backend: 'all', netns: ns.name, log: silentLogger });
    expect(results.map((r) => r.backend).sort()).toEqual(['legacy', 'nft']);
    for (const b of ['nft', 'legacy'] as const) {
      const after = await saveNormalized(ns, b);
      expect(after).not.toContain('KUBE-');
      // Tables touched by berth may now exist (empty), but nothing else changed.
      expect(after.replace(/\*\w+\n(:[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT\n?/g, '')).toBe(before[b].replace(/\*\w+\n(:[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT\n?/g, ''));
    }
  });
});
