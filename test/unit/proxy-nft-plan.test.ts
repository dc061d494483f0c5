// Partial and full sync transactions of the nftables mode: a partial sync writes only the changed Service's
// chains and elements (never the whole table, never listing it), stale chains are flushed at once and deleted a
// sync later, a failed partial transaction falls back to a full one, and a full sync against the listed table
// writes only what differs.
import { describe, expect, it } from 'vitest';
import { parseNftTable, parseNftDuration, parsePriority } from '../../src/proxy/nftables/listing.ts';
import { hashAndTruncate } from '../../src/proxy/nftables/names.ts';
import { service, slice, type EP } from './proxy-fixtures.ts';
import { newProxy } from './proxy-nft-fixtures.ts';

const T = 'ip kube-proxy';
const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' }];
const svc = (n: number, extra: Record<string, unknown> = {}) => service('ns', `svc${n}`, { clusterIP: `172.30.0.${n}`, ports: p80, ...extra });
const eps = (n: number, e: EP[]) => slice('ns', `svc${n}`, `svc${n}-1`, [{ name: 'p80', port: 80 }], e);
const chain = (n: number) => `service-${hashAndTruncate(`ns/svc${n}/tcp/p80`)}`;
const epChain = (n: number, ip: string) => `endpoint-${hashAndTruncate(`ns/svc${n}/tcp/p80__${ip}/80`)}`;
const SVC1 = chain(1);

async function started() {
  const t = newProxy();
  t.proxy.onServiceAdd(svc(1));
  t.proxy.onEndpointSliceAdd(eps(1, [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]));
  t.proxy.onServiceAdd(svc(2));
  t.proxy.onEndpointSliceAdd(eps(2, [{ ip: '10.2.0.1' }]));
  t.proxy.onServicesSynced();
  t.proxy.onEndpointSlicesSynced();
  expect((await t.proxy.syncNow()).kind).toBe('full');
  return t;
}

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('nftables partial sync transactions', () => {
  it('adding a Service writes its chains and elements only, after creating the chains they point to', async () => {
    const { nft, proxy } = await started();
    proxy.onServiceAdd(svc(3));
    proxy.onEndpointSliceAdd(eps(3, [{ ip: '10.3.0.1' }]));
    const r = await proxy.syncNow();
    expect(r.kind).toBe('partial');
    expect(r.saveMs).toBe(0);
    const svc3 = chain(3);
    const ep3 = epChain(3, '10.3.0.1');
    expect(lines(nft.last)).toEqual([
      `add chain ${T} ${ep3}`,
      `add chain ${T} ${svc3}`,
      `add rule ${T} ${ep3} ip saddr 10.3.0.1 jump mark-for-masquerade`,
      `add rule ${T} ${ep3} meta l4proto tcp dnat to 10.3.0.1:80`,
      `add rule ${T} ${svc3} ip daddr 172.30.0.3 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade`,
      `add rule ${T} ${svc3} numgen random mod 1 vmap { 0 : goto ${ep3} }`,
      `add element ${T} cluster-ips { 172.30.0.3 }`,
      `add element ${T} service-ips { 172.30.0.3 . tcp . 80 : goto ${svc3} }`,
    ]);
  });

  it('changing one endpoint adds its chain, rewrites the service chain and flushes the old endpoint chain', async () => {
    const { nft, proxy } = await started();
    proxy.onEndpointSliceUpdate(undefined, eps(1, [{ ip: '10.1.0.1' }, { ip: '10.1.0.3' }]));
    const r = await proxy.syncNow();
    expect(r.kind).toBe('partial');
    const text = lines(nft.last);
    const ep1 = epChain(1, '10.1.0.1');
    const ep3 = epChain(1, '10.1.0.3');
    const ep2 = epChain(1, '10.1.0.2');
    expect(text).toEqual([
      `add chain ${T} ${ep3}`,
      `flush chain ${T} ${SVC1}`,
      `flush chain ${T} ${ep2}`,
      `add rule ${T} ${ep3} ip saddr 10.1.0.3 jump mark-for-masquerade`,
      `add rule ${T} ${ep3} meta l4proto tcp dnat to 10.1.0.3:80`,
      `add rule ${T} ${SVC1} ip daddr 172.30.0.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade`,
      `add rule ${T} ${SVC1} numgen random mod 2 vmap { 0 : goto ${ep1}, 1 : goto ${ep3} }`,
    ]);
    expect(r.stats).toMatchObject({ chainsWritten: 2, chainsDeleted: 1, elementsAdded: 0, elementsDeleted: 0 });
  });

  it('deleting a Service removes its elements and flushes its chains; the chains are deleted a sync later', async () => {
    const { nft, proxy } = await started();
    let now = Date.now();
    (proxy as unknown as { clock: { now(): number } }).clock = { now: () => now };
    proxy.onServiceDelete(svc(2));
    await proxy.syncNow();
    expect(lines(nft.last)).toEqual([
      `flush chain ${T} ${epChain(2, '10.2.0.1')}`,
      `flush chain ${T} ${chain(2)}`,
      `delete element ${T} cluster-ips { 172.30.0.2 }`,
      `delete element ${T} service-ips { 172.30.0.2 . tcp . 80 }`,
    ]);
    // Less than a second later nothing is due; after it, the next (even otherwise empty) sync deletes them.
    expect((await proxy.syncNow()).kind).toBe('noop');
    now += 1500;
    const r = await proxy.syncNow();
    expect(r.kind).toBe('partial');
    expect(lines(nft.last).sort()).toEqual([`delete chain ${T} ${epChain(2, '10.2.0.1')}`, `delete chain ${T} ${chain(2)}`].sort());
  });

  it('a Service losing all endpoints moves its ClusterIP to the reject map', async () => {
    const { nft, proxy } = await started();
    proxy.onEndpointSliceUpdate(undefined, eps(2, []));
    await proxy.syncNow();
    const text = lines(nft.last);
    expect(text).toContain(`delete element ${T} service-ips { 172.30.0.2 . tcp . 80 }`);
    expect(text).toContain(`add element ${T} no-endpoint-services { 172.30.0.2 . tcp . 80 comment "ns/svc2:p80" : goto reject-chain }`);
    expect(text.some((l) => l.includes('cluster-ips'))).toBe(false);
  });

  it('an unchanged Service (same event again) writes nothing; a ClusterIP shared by two ports stays until both are gone', async () => {
    const { nft, proxy } = await started();
    const n = nft.applied.length;
    proxy.onEndpointSliceUpdate(undefined, eps(1, [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]));
    expect((await proxy.syncNow()).kind).toBe('noop');
    expect(nft.applied.length).toBe(n);
    proxy.onServiceUpdate(undefined, svc(2, { ports: [...p80, { name: 'p81', port: 81, protocol: 'TCP' }] }));
    await proxy.syncNow();
    expect(nft.last).not.toContain('cluster-ips');
    proxy.onServiceUpdate(undefined, svc(2, { ports: [{ name: 'p81', port: 81, protocol: 'TCP' }] }));
    await proxy.syncNow();
    expect(nft.last).not.toContain('cluster-ips');
    expect(nft.last).toContain(`delete element ${T} service-ips { 172.30.0.2 . tcp . 80 }`);
  });

  it('a rejected partial transaction falls back to a full sync in the same run, and the change is kept until it lands', async () => {
    const { nft, proxy } = await started();
    nft.fail = (text) => !text.startsWith('add table');
    proxy.onServiceAdd(svc(3));
    const r = await proxy.syncNow();
    expect(r).toMatchObject({ kind: 'full', fellBack: true });
    expect(nft.last).toMatch(/^add element ip kube-proxy cluster-ips \{[^}]*172\.30\.0\.3[ ,]/m);
    expect(proxy.metrics().iptablesPartialRestoreFailuresTotal).toBe(1);
  });
});

describe('nftables full sync against the listed table', () => {
  it('writes only the setup when the kernel already holds every chain and element', async () => {
    const { nft, proxy } = await started();
    // What nft would list after the first sync (rules as nft prints them).
    const svc1Rules = lines(nft.applied[0]!).filter((l) => l.startsWith('add rule') && l.includes('/')).map((l) => l.split(' '));
    const chains = new Map<string, string[]>();
    for (const parts of svc1Rules) {
      const name = parts[4]!;
      if (!chains.has(name)) chains.set(name, []);
      chains.get(name)!.push(parts.slice(5).join(' '));
    }
    const elems = (set: string) =>
      lines(nft.applied[0]!)
        .filter((l) => l.startsWith(`add element ${T} ${set} `))
        .map((l) => l.slice(l.indexOf('{') + 2, -2))
        .join(', ');
    nft.listing = [
      'table ip kube-proxy {',
      `\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\telements = { ${elems('cluster-ips')} }\n\t}`,
      `\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { ${elems('service-ips')} }\n\t}`,
      ...[...chains].map(([c, rules]) => `\tchain ${c} {\n${rules.map((r) => `\t\t${r}`).join('\n')}\n\t}`),
      '}',
    ].join('\n');
    (proxy as unknown as { needFullSync: boolean }).needFullSync = true;
    const r = await proxy.syncNow();
    expect(r.kind).toBe('full');
    expect(r.stats).toMatchObject({ chainsWritten: 0, elementsAdded: 0, elementsDeleted: 0, chainsDeleted: 0 });
    // A foreign element and a stale service chain are removed.
    nft.listing = nft.listing.replace('elements = { 172.30.0.1', 'elements = { 172.30.0.99, 172.30.0.1').replace(/\n}$/, '\n\tchain service-AAAAAAAA-ns/gone/tcp/p80 {\n\t\tjump mark-for-masquerade\n\t}\n}');
    (proxy as unknown as { needFullSync: boolean }).needFullSync = true;
    const r2 = await proxy.syncNow();
    expect(r2.stats).toMatchObject({ chainsWritten: 0, elementsDeleted: 1, chainsDeleted: 1 });
    expect(nft.last).toContain(`delete element ${T} cluster-ips { 172.30.0.99 }`);
    expect(nft.last).toContain(`flush chain ${T} service-AAAAAAAA-ns/gone/tcp/p80`);
  });
});

describe('nft listing parser', () => {
  it('reads chains, base-chain priorities, element maps with comments and set timeouts', () => {
    const t = parseNftTable(`table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tmap no-endpoint-services {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 10.96.0.8 . udp . 53 comment "default/x" : drop,
\t\t\t     10.96.0.7 . tcp . 80 comment "default/empty:http" : goto reject-chain }
\t}
\tset affinity-X/y {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 3h
\t\telements = { 10.77.0.2 timeout 3h expires 2h59m58s }
\t}
\tchain filter-prerouting {
\t\ttype filter hook prerouting priority dstnat - 10; policy accept;
\t\tct state new jump firewall-check
\t}
\tchain reject-chain {
\t\tcomment "helper"
\t\treject
\t}
}`);
    expect(t.exists).toBe(true);
    expect([...t.sets.get('no-endpoint-services')!.elements]).toEqual([
      ['10.96.0.8 . udp . 53', 'drop'],
      ['10.96.0.7 . tcp . 80', 'goto reject-chain'],
    ]);
    expect(t.sets.get('affinity-X/y')).toMatchObject({ timeoutSeconds: 10800, elements: new Map([['10.77.0.2', '']]) });
    expect(t.chains.get('filter-prerouting')).toEqual({ base: { type: 'filter', hook: 'prerouting', priority: -110 }, rules: ['ct state new jump firewall-check'] });
    expect(t.chains.get('reject-chain')!.rules).toEqual(['reject']);
    expect(parseNftTable('').exists).toBe(false);
    expect(parsePriority('srcnat')).toBe(100);
    expect(parseNftDuration('1h2m3s')).toBe(3723);
  });
});

describe('nftables large full sync', () => {
  it('splits a large first sync into transactions: chains first, rules in chunks, map elements last', async () => {
    const { NftState, planFull } = await import('../../src/proxy/nftables/plan.ts');
    const { buildNftServicePort } = await import('../../src/proxy/nftables/ruleset.ts');
    const { NftNamer } = await import('../../src/proxy/nftables/names.ts');
    const { normalizeService } = await import('../../src/proxy/normalize.ts');
    const ctx = { namer: new NftNamer(), masqueradeMark: 0x4000, masqueradeAll: false, clusterCIDR: '10.0.0.0/8', nodePortIPs: [], nodeIP: '10.0.0.1', nodeLabels: {} };
    const all = new Map<string, ReturnType<typeof buildNftServicePort>[]>();
    for (let i = 1; i <= 30; i++) {
      const [p] = normalizeService(svc(i)).value;
      const ep = { ip: `10.9.0.${i}`, port: 80, endpoint: `10.9.0.${i}:80`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined };
      all.set(`ns/svc${i}`, [buildNftServicePort(p!, [ep], ctx)]);
    }
    const plan = planFull({ state: new NftState(), all, observed: parseNftTable(''), ctx, now: 0, recreateBaseChains: false, chunkRules: 40 });
    // 30 Services × (2 + 2 rules) = 120 rules → 3 chunks of 40, plus the first and the last transaction.
    expect(plan.texts.length).toBe(5);
    expect(plan.texts[0]).toMatch(/^add table ip kube-proxy/);
    expect(plan.texts[0]).not.toMatch(/add rule ip kube-proxy service-[A-Z2-7]{8}-/);
    expect(plan.texts[0]).not.toContain('add element ip kube-proxy service-ips');
    expect(plan.texts.slice(1, 4).every((t) => t.split('\n').filter(Boolean).every((l) => l.startsWith('add rule ')))).toBe(true);
    expect(plan.texts[4]).toMatch(/^add element ip kube-proxy cluster-ips /);
    expect(plan.texts.join('')).toBe(plan.text);
  });
});
