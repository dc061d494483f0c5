// FakeIptables (used by the unit tests) against real iptables: the same proxy event sequence through both must
// leave the same berth chains and jump rules. Keeps the fake honest (a fake that drifts from the tool hides bugs).
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import { ServiceProxy, computeCleanupPlan, createIptablesExecutor, parseIptablesSave, resolveProxyConfig, type IptablesExecutor } from '../../src/proxy/index.ts';
import { Netns, destroyAll } from './helpers/netns.ts';
import { FakeIptables, service, slice } from '../unit/proxy-fixtures.ts';

function berthView(save: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [table, t] of parseIptablesSave(save)) {
    for (const [chain, rules] of t.chains) {
      if (chain.startsWith('KUBE-') || rules.length > 0) out[`${table}/${chain}`] = rules;
    }
  }
  return out;
}

describe.each(['nft', 'legacy'] as const)('FakeIptables contract (%s)', (backend) => {
  afterAll(destroyAll);

  it('matches real iptables through full, partial, fallback and cleanup', async () => {
    const ns = await Netns.create('contract');
    const real = await createIptablesExecutor({ backend, netns: ns.name, log: silentLogger });
    const fake = new FakeIptables();
    const mk = (executor: IptablesExecutor) =>
      new ServiceProxy({ config: resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16' }), node: { name: 'n', ip: '10.0.0.1' }, executor, log: silentLogger });
    const proxies = [mk(real), mk(fake)];
    const both = async (f: (p: ServiceProxy) => void): Promise<string[]> => {
      const kinds: string[] = [];
      for (const p of proxies) {
        f(p);
        kinds.push((await p.syncNow()).kind);
      }
      expect(berthView(await fake.save())).toEqual(berthView(await real.save()));
      return kinds;
    };
    const web = service('default', 'web', { type: 'NodePort', clusterIP: '10.96.0.10', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP' }] });
    const webSlice = (ips: string[]) => slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], ips.map((ip) => ({ ip, node: 'n' })));
    const lb = service('default', 'lb', { type: 'LoadBalancer', clusterIP: '10.96.0.11', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, loadBalancerSourceRanges: ['10.0.0.0/8'], externalIPs: ['9.9.9.9'], ports: [{ port: 80, nodePort: 30081 }] }, { status: { loadBalancer: { ingress: [{ ip: '5.5.5.5' }] } } });

    expect(await both((p) => {
      p.onServiceAdd(web);
      p.onEndpointSliceAdd(webSlice(['10.244.1.2', '10.244.1.3']));
      p.onServicesSynced();
      p.onEndpointSlicesSynced();
    })).toEqual(['full', 'full']);
    expect(await both((p) => p.onServiceAdd(lb))).toEqual(['partial', 'partial']);
    expect(await both((p) => p.onEndpointSliceAdd(slice('default', 'lb', 'lb-1', [{ port: 8080 }], [{ ip: '10.244.1.9', node: 'other' }])))).toEqual(['partial', 'partial']);
    expect(await both((p) => p.onEndpointSliceUpdate(undefined, webSlice(['10.244.1.3', '10.244.1.4', '10.244.1.5'])))).toEqual(['partial', 'partial']);
    expect(await both((p) => p.onServiceDelete(web))).toEqual(['partial', 'partial']);
    expect(await both((p) => (p as unknown as { needFullSync: boolean }).needFullSync = true)).toEqual(['full', 'full']);

    // Table order differs between save outputs, so each gets its own (equivalent) cleanup input.
    const realPlan = computeCleanupPlan(parseIptablesSave(await real.save()));
    const fakePlan = computeCleanupPlan(parseIptablesSave(await fake.save()));
    expect(realPlan.chains.sort()).toEqual(fakePlan.chains.sort());
    await real.restore(realPlan.text);
    await fake.restore(fakePlan.text);
    expect(berthView(await fake.save())).toEqual(berthView(await real.save()));
    expect(Object.keys(berthView(await real.save()))).toEqual([]);
  });
});
