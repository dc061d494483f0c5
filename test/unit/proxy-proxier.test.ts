// ServiceProxy against FakeIptables: full vs partial syncs, fallback, canary, health, conntrack, bad input.
import { describe, expect, it } from 'vitest';
import { FakeClock, silentLogger } from '../../src/lib/index.ts';
import { ServiceProxy } from '../../src/proxy/proxier.ts';
import { resolveProxyConfig, type ProxyConfig } from '../../src/proxy/config.ts';
import type { Conntrack, ConntrackDeletion } from '../../src/proxy/conntrack.ts';
import type { ServiceHealthServer } from '../../src/proxy/healthcheck.ts';
import { FakeIptables, service, slice } from './proxy-fixtures.ts';

function setup(cfg: Partial<ProxyConfig> = {}) {
  const fake = new FakeIptables();
  const clock = new FakeClock();
  const deletions: ConntrackDeletion[] = [];
  const conntrack: Conntrack = { delete: (d) => (deletions.push(d), Promise.resolve(1)) };
  const hc = { services: new Map<string, number>(), counts: new Map<string, number>() };
  const healthServer: ServiceHealthServer = {
    syncServices: (s) => ((hc.services = new Map(s)), Promise.resolve()),
    syncEndpoints: (c) => void (hc.counts = new Map(c)),
    addressOf: () => undefined,
    close: () => Promise.resolve(),
  };
  const proxy = new ServiceProxy({
    config: resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16', ...cfg }),
    node: { name: 'me', ip: '192.168.0.2' },
    executor: fake,
    conntrack,
    healthServer,
    log: silentLogger,
    clock,
  });
  return { fake, clock, proxy, deletions, hc };
}

const web = service('default', 'web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] });
const webSlice = (ips: string[]) => slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], ips.map((ip) => ({ ip })));

describe('ServiceProxy', () => {
  it('does not sync before Services and endpoints are synced', async () => {
    const { fake, proxy } = setup();
    proxy.onServiceAdd(web);
    expect((await proxy.syncNow()).kind).toBe('skipped');
    proxy.onServicesSynced();
    expect((await proxy.syncNow()).kind).toBe('skipped');
    proxy.onEndpointSlicesSynced();
    expect((await proxy.syncNow()).kind).toBe('full');
    expect(fake.restores).toHaveLength(1);
  });

  it('first sync full, then partial syncs with only the changed Service, no restore when nothing changed', async () => {
    const { fake, proxy } = setup();
    proxy.onServiceAdd(web);
    proxy.onEndpointSliceAdd(webSlice(['10.244.1.2']));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    expect((await proxy.syncNow()).kind).toBe('full');
    expect((await proxy.syncNow()).kind).toBe('noop');
    expect(fake.restores).toHaveLength(1);

    proxy.onServiceAdd(service('default', 'api', { clusterIP: '10.96.0.11', ports: [{ port: 443 }] }));
    const r = await proxy.syncNow();
    expect(r.kind).toBe('partial');
    const text = fake.restores.at(-1)!;
    expect(text).toContain('default/api has no endpoints');
    expect(text).not.toContain('default/web');
    expect(fake.saves).toBe(1); // partial syncs never read the kernel

    proxy.onEndpointSliceUpdate(undefined, webSlice(['10.244.1.2', '10.244.1.3']));
    await proxy.syncNow();
    const t2 = fake.restores.at(-1)!;
    expect(t2).toContain('10.244.1.3:8080');
    expect(t2).not.toContain('default/api');
    expect(fake.chain('nat', 'KUBE-SERVICES')!.at(-1)).toContain('must be the last rule');
    const m = proxy.metrics();
    expect(m.syncsTotal).toEqual({ full: 1, partial: 2, noop: 1 });
    expect(m.services).toBe(2);
    expect(m.endpoints).toBe(2);
    expect(m.iptablesRulesTotal.nat).toBe(fake.tables.get('nat')!.size > 0 ? countOwn(fake, 'nat') : 0);
    expect(m.iptablesRulesTotal.filter).toBe(countOwn(fake, 'filter'));
  });

  it('a failed partial restore falls back to a full sync at once; pending changes survive a failed full sync', async () => {
    const { fake, proxy, clock } = setup();
    proxy.onServiceAdd(web);
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    proxy.onEndpointSliceAdd(webSlice(['10.244.1.2']));
    fake.failNext = 'line 3: RULE_DELETE failed';
    const r = await proxy.syncNow();
    expect(r).toMatchObject({ kind: 'full', fellBack: true });
    expect(fake.restores.at(-1)).toContain('10.244.1.2:8080');
    expect(proxy.metrics().iptablesPartialRestoreFailuresTotal).toBe(1);

    proxy.onServiceDelete(web);
    // The partial fails, then the full one too: the error surfaces and the change stays pending.
    fake.failNext = 'boom';
    fake.failures = 2;
    await expect(proxy.syncNow()).rejects.toThrow('boom');
    expect(proxy.healthy()).toBe(true);
    clock.advance(61_000);
    expect(proxy.healthy()).toBe(false);
    expect((await proxy.syncNow()).kind).toBe('full');
    expect(fake.chain('nat', 'KUBE-SERVICES')!.join('\n')).not.toContain('default/web');
    expect(proxy.healthy()).toBe(true);
  });

  it('the canary going missing forces a full sync that restores the flushed rules', async () => {
    const { fake, proxy } = setup();
    proxy.onServiceAdd(web);
    proxy.onEndpointSliceAdd(webSlice(['10.244.1.2']));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    fake.tables = new Map(); // someone ran iptables -F / -X everywhere
    await proxy.checkCanaryNow();
    const r = await proxy.syncNow();
    expect(r.kind).toBe('full');
    expect(fake.chain('mangle', 'KUBE-PROXY-CANARY')).toEqual([]);
    expect(fake.chain('nat', 'KUBE-SERVICES')!.join('\n')).toContain('default/web:http cluster IP');
    expect(proxy.metrics().canaryFullSyncsTotal).toBe(1);
  });

  it('runs a full sync after fullSyncPeriodMs and when node labels change', async () => {
    const { proxy, clock, fake } = setup({ fullSyncPeriodMs: 3_600_000 });
    proxy.onServiceAdd(web);
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    clock.advance(3_600_000);
    expect((await proxy.syncNow()).kind).toBe('full');
    expect(fake.restores).toHaveLength(1); // nothing drifted: the full sync wrote nothing
    proxy.onNodeUpdate({ metadata: { name: 'me', labels: { 'topology.kubernetes.io/zone': 'z' } }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } });
    expect((await proxy.syncNow()).kind).toBe('full');
    proxy.onNodeUpdate({ metadata: { name: 'someone-else' } });
    expect((await proxy.syncNow()).kind).toBe('noop');
  });

  it('switching into large-cluster mode is a full sync without comments in SEP chains', async () => {
    const { proxy, fake } = setup({ largeClusterEndpointsThreshold: 2 });
    proxy.onServiceAdd(web);
    proxy.onEndpointSliceAdd(webSlice(['10.244.1.2']));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    expect(fake.restores[0]).toContain('-m comment --comment "default/web:http" -j KUBE-MARK-MASQ');
    proxy.onEndpointSliceUpdate(undefined, webSlice(['10.244.1.2', '10.244.1.3', '10.244.1.4']));
    const r = await proxy.syncNow();
    expect(r.kind).toBe('full');
    expect(proxy.metrics().largeClusterMode).toBe(true);
    expect(fake.restores.at(-1)).toContain('-A KUBE-SEP-');
    expect(fake.restores.at(-1)).not.toMatch(/-A KUBE-SEP-\S+ -s \S+ -m comment/);
  });

  it('health check listeners follow eTP=Local LoadBalancers with their local endpoint count', async () => {
    const { proxy, hc } = setup();
    proxy.onServiceAdd(
      service('default', 'lb', { type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30080 }] }),
    );
    proxy.onEndpointSliceAdd(slice('default', 'lb', 'lb-1', [{ port: 8080 }], [{ ip: '10.244.1.2', node: 'me' }, { ip: '10.244.2.2', node: 'other' }]));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    expect(hc.services).toEqual(new Map([['default/lb', 32000]]));
    expect(hc.counts).toEqual(new Map([['default/lb', 1]]));
    proxy.onEndpointSliceUpdate(undefined, slice('default', 'lb', 'lb-1', [{ port: 8080 }], [{ ip: '10.244.2.2', node: 'other' }]));
    await proxy.syncNow();
    expect(hc.counts.get('default/lb')).toBe(0);
  });

  it('deletes stale UDP conntrack entries for removed endpoints and newly active Services', async () => {
    const { proxy, deletions } = setup();
    proxy.onServiceAdd(service('kube-system', 'dns', { type: 'NodePort', clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] }));
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    expect(deletions).toEqual([]);
    const dnsSlice = (ips: string[]) => slice('kube-system', 'dns', 'dns-1', [{ name: 'dns', port: 5353, protocol: 'UDP' }], ips.map((ip) => ({ ip })));
    proxy.onEndpointSliceAdd(dnsSlice(['10.244.1.5', '10.244.1.6']));
    await proxy.syncNow();
    expect(deletions).toEqual([{ origDst: '10.96.0.53', dport: 53 }, { dport: 30053 }]);
    deletions.length = 0;
    proxy.onEndpointSliceUpdate(undefined, dnsSlice(['10.244.1.6']));
    await proxy.syncNow();
    expect(deletions).toEqual([
      { origDst: '10.96.0.53', dstNat: '10.244.1.5' },
      { dport: 30053, dstNat: '10.244.1.5' },
    ]);
  });

  it('bad Services and slices never break the rules of others', async () => {
    const { proxy, fake } = setup();
    proxy.onServiceAdd(web);
    proxy.onEndpointSliceAdd(webSlice(['10.244.1.2']));
    proxy.onServiceAdd(service('default', 'broken', { clusterIP: '10.96.0.999', ports: [{ port: 80 }] }));
    proxy.onServiceAdd(service('default', 'halfbad', { clusterIP: '10.96.0.12', externalIPs: ['x'], ports: [{ name: 'a', port: 0 }, { name: 'b', port: 81, protocol: 'FOO' }, { name: 'c', port: 82 }] }));
    const bad = slice('default', 'halfbad', 'hb-1', [{ name: 'c', port: 9000 }], [{ ip: '10.244.9.9' }, { ip: '300.1.1.1' }]);
    proxy.onEndpointSliceAdd(bad);
    proxy.onServicesSynced();
    proxy.onEndpointSlicesSynced();
    await proxy.syncNow();
    const nat = fake.chain('nat', 'KUBE-SERVICES')!.join('\n');
    expect(nat).toContain('default/web:http cluster IP');
    expect(nat).toContain('default/halfbad:c cluster IP');
    expect(nat).not.toContain('10.96.0.999');
    expect(fake.restores.join('\n')).not.toContain('300.1.1.1');
  });
});

function countOwn(fake: FakeIptables, table: string): number {
  let n = 0;
  for (const [chain, rules] of fake.tables.get(table) ?? []) if (chain.startsWith('KUBE-')) n += rules.length;
  return n;
}
