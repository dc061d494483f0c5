// Selection and cleanup across modes, in throwaway namespaces: `berth cleanup` (runCleanup) removes the nftables
// mode's whole `ip kube-proxy` table as well as the iptables mode's chains, touches no other nft table, and
// `berth rules` in nftables mode shows one Service's elements and chains.
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import {
  CommandNftExecutor,
  NftablesProxy,
  ServiceProxy,
  createIptablesExecutor,
  resolveProxyConfig,
  runCleanup,
  runNftRules,
} from '../../src/proxy/index.ts';
import { Netns, destroyAll, saveNormalized } from './helpers/netns.ts';
import { service, slice } from '../unit/proxy-fixtures.ts';

function feed(proxy: ServiceProxy | NftablesProxy): void {
  proxy.onServiceAdd(service('default', 'web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
  proxy.onServiceAdd(service('default', 'empty', { clusterIP: '10.96.0.11', ports: [{ port: 80 }] }));
  proxy.onEndpointSliceAdd(slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }]));
  proxy.onServicesSynced();
  proxy.onEndpointSlicesSynced();
}

describe('nftables mode: cleanup and rules', () => {
  afterAll(destroyAll);

  it('berth cleanup removes the nftables table and the iptables chains, and leaves other nft tables alone', async () => {
    const ns = await Netns.create('nftclean');
    await ns.exec(['nft', 'add table inet foreign; add chain inet foreign keep { type filter hook input priority 0 ; }']);
    const before = await saveNormalized(ns, 'nft');
    const config = resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16' });
    const nft = new NftablesProxy({ config, node: { name: 'n', ip: '10.0.0.1' }, executor: new CommandNftExecutor({ netns: ns.name }), log: silentLogger });
    feed(nft);
    expect((await nft.syncNow()).kind).toBe('full');
    const ipt = new ServiceProxy({ config, node: { name: 'n' }, executor: await createIptablesExecutor({ backend: 'nft', netns: ns.name, log: silentLogger }), log: silentLogger });
    feed(ipt);
    expect((await ipt.syncNow()).kind).toBe('full');
    expect((await ns.exec(['nft', 'list', 'tables'])).stdout).toContain('table ip kube-proxy');

    const rules = await runNftRules({ service: 'default/web', netns: ns.name });
    expect(rules).toContain('element of service-ips: 10.96.0.10 . tcp . 80 : goto service-');
    expect(rules).toContain('element of service-nodeports: tcp . 30080 : goto external-');
    expect(rules).toMatch(/chain endpoint-[A-Z2-7]{8}-default\/web\/tcp\/http__10\.244\.1\.2\/8080\n {4}ip saddr 10\.244\.1\.2 jump mark-for-masquerade\n {4}meta l4proto tcp dnat to 10\.244\.1\.2:8080/);
    expect(await runNftRules({ service: 'default/empty', netns: ns.name })).toContain('comment "default/empty" : goto reject-chain');
    await expect(runNftRules({ service: 'default/none', netns: ns.name })).rejects.toMatchObject({ code: 'NotFound' });

    const results = await runCleanup({ backend: 'nft', netns: ns.name, log: silentLogger });
    expect(results.map((r) => r.backend)).toEqual(['nft', 'nftables']);
    const tables = (await ns.exec(['nft', 'list', 'tables'])).stdout;
    expect(tables).not.toContain('kube-proxy');
    expect(tables).toContain('table inet foreign');
    expect(await saveNormalized(ns, 'nft')).not.toContain('KUBE-');
    expect((await saveNormalized(ns, 'nft')).replace(/\*\w+\n(:[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT\n?/g, '')).toBe(before.replace(/\*\w+\n(:[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT\n?/g, ''));
    // Idempotent.
    expect((await runCleanup({ backend: 'nft', netns: ns.name, log: silentLogger })).map((r) => r.backend)).toEqual(['nft']);
  });
});
