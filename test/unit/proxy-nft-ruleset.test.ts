// Golden rulesets of the nftables mode, modelled on upstream's pkg/proxy/nftables/proxier_test.go
// (TestOverallNFTablesRules and friends): the same Services and endpoints must give the same chains, rules, sets
// and map elements, with upstream's names (the hashes in the names are upstream's too).
import { describe, expect, it } from 'vitest';
import type { ServiceSpec, ServiceStatus } from 'kubernetes-types/core/v1';
import { hashAndTruncate } from '../../src/proxy/nftables/names.ts';
import { service, slice, type EP } from './proxy-fixtures.ts';
import { newProxy } from './proxy-nft-fixtures.ts';

const T = 'ip kube-proxy';
/** The per-Service statements of a transaction (what follows the fixed setup), sorted as upstream compares them. */
function serviceLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^add (chain|rule|set|element) ip kube-proxy \S*\//.test(l) || /^add element ip kube-proxy (cluster-ips|service-ips|service-nodeports|no-endpoint-services|no-endpoint-nodeports|firewall-ips) /.test(l))
    .flatMap((l) => {
      // Split batched element statements into one per element, as upstream writes them.
      const m = /^add element (ip kube-proxy \S+) \{ (.*) \}$/.exec(l);
      return m ? m[2]!.split(', ').map((e) => `add element ${m[1]} { ${e} }`) : [l];
    })
    .sort();
}

const p80 = (extra: Record<string, unknown> = {}) => [{ name: 'p80', port: 80, protocol: 'TCP', ...extra }];
const S = (ns: string, name: string, spec: Partial<ServiceSpec>, status?: ServiceStatus) => service(ns, name, spec, status ? { status } : {});
const E = (ns: string, name: string, eps: EP[]) => slice(ns, name, `${name}-1`, [{ name: 'p80', port: 80 }], eps);

async function syncAll(svcs: ReturnType<typeof S>[], slices: ReturnType<typeof E>[], o?: Parameters<typeof newProxy>[0]) {
  const t = newProxy(o);
  for (const s of svcs) t.proxy.onServiceAdd(s);
  for (const s of slices) t.proxy.onEndpointSliceAdd(s);
  t.proxy.onServicesSynced();
  t.proxy.onEndpointSlicesSynced();
  const r = await t.proxy.syncNow();
  expect(r.kind).toBe('full');
  return t;
}

describe('nftables names (upstream servicePortChainNameBase / servicePortEndpointChainNameBase)', () => {
  it('hash the same as upstream', () => {
    expect(hashAndTruncate('ns1/svc1/tcp/p80')).toBe('ULMVA6XW-ns1/svc1/tcp/p80');
    expect(hashAndTruncate('ns1/svc1/tcp/p80__10.180.0.1/80')).toBe('5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
    expect(hashAndTruncate('ns4/svc4/tcp/p80__10.180.0.5/80')).toBe('5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80');
  });
  it('truncate names longer than 240 characters and keep them unique through the hash', () => {
    const long = hashAndTruncate(`${'a'.repeat(63)}/${'b'.repeat(63)}/tcp/${'c'.repeat(63)}__10.0.0.1/80${'x'.repeat(60)}`);
    expect(long.length).toBe(240);
    expect(long.endsWith('...')).toBe(true);
  });
});

describe('nftables ruleset (upstream TestOverallNFTablesRules)', () => {
  const svcs = [
    S('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: p80() }),
    S(
      'ns2',
      'svc2',
      { type: 'LoadBalancer', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.42', ports: p80({ nodePort: 3001 }), externalIPs: ['192.168.99.22'], healthCheckNodePort: 30000 },
      { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } },
    ),
    S('ns3', 'svc3', { type: 'NodePort', clusterIP: '172.30.0.43', ports: p80({ nodePort: 3003 }) }),
    S('ns4', 'svc4', { type: 'NodePort', clusterIP: '172.30.0.44', externalIPs: ['192.168.99.33'], ports: p80() }),
    S(
      'ns5',
      'svc5',
      {
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Cluster',
        clusterIP: '172.30.0.45',
        ports: p80({ nodePort: 3002 }),
        healthCheckNodePort: 30000,
        loadBalancerSourceRanges: [' 203.0.113.0/25'],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      },
      { loadBalancer: { ingress: [{ ip: '5.6.7.8' }] } },
    ),
    S('ns6', 'svc6', { clusterIP: '172.30.0.46', ports: p80() }),
  ];
  const slices = [
    E('ns1', 'svc1', [{ ip: '10.180.0.1' }]),
    E('ns2', 'svc2', [{ ip: '10.180.0.2' }]),
    E('ns3', 'svc3', [{ ip: '10.180.0.3' }]),
    E('ns4', 'svc4', [{ ip: '10.180.0.4' }, { ip: '10.180.0.5', node: 'test-node' }]),
    E('ns5', 'svc5', [{ ip: '10.180.0.3' }]),
  ];

  it('writes the same chains, rules, sets and elements for every kind of Service', async () => {
    const { nft } = await syncAll(svcs, slices);
    const expected = `
      add chain ${T} service-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
      add chain ${T} endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
      add rule ${T} endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
      add rule ${T} endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
      add element ${T} cluster-ips { 172.30.0.41 }
      add element ${T} service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

      add chain ${T} service-42NFTM6N-ns2/svc2/tcp/p80
      add rule ${T} service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ${T} service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
      add chain ${T} external-42NFTM6N-ns2/svc2/tcp/p80
      add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
      add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
      add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
      add chain ${T} endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
      add rule ${T} endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
      add rule ${T} endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
      add element ${T} cluster-ips { 172.30.0.42 }
      add element ${T} service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
      add element ${T} service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
      add element ${T} service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
      add element ${T} service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
      add element ${T} no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
      add element ${T} no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
      add element ${T} no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

      add chain ${T} service-4AT6LBPK-ns3/svc3/tcp/p80
      add rule ${T} service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ${T} service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
      add chain ${T} external-4AT6LBPK-ns3/svc3/tcp/p80
      add rule ${T} external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
      add rule ${T} external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
      add chain ${T} endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
      add rule ${T} endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
      add rule ${T} endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
      add element ${T} cluster-ips { 172.30.0.43 }
      add element ${T} service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
      add element ${T} service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

      add chain ${T} service-LAUZTJTB-ns4/svc4/tcp/p80
      add rule ${T} service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ${T} service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80, 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
      add chain ${T} external-LAUZTJTB-ns4/svc4/tcp/p80
      add rule ${T} external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
      add rule ${T} external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
      add chain ${T} endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
      add rule ${T} endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
      add rule ${T} endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
      add chain ${T} endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
      add rule ${T} endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
      add rule ${T} endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
      add element ${T} cluster-ips { 172.30.0.44 }
      add element ${T} service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
      add element ${T} service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

      add set ${T} affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
      add chain ${T} service-HVFWP5L3-ns5/svc5/tcp/p80
      add rule ${T} service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ${T} service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
      add rule ${T} service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
      add chain ${T} external-HVFWP5L3-ns5/svc5/tcp/p80
      add rule ${T} external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
      add rule ${T} external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
      add chain ${T} endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
      add rule ${T} endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
      add rule ${T} endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
      add rule ${T} endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
      add chain ${T} firewall-HVFWP5L3-ns5/svc5/tcp/p80
      add rule ${T} firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
      add element ${T} cluster-ips { 172.30.0.45 }
      add element ${T} service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
      add element ${T} service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
      add element ${T} service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
      add element ${T} firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

      add element ${T} cluster-ips { 172.30.0.46 }
      add element ${T} no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }`;
    const want = expected.split('\n').map((l) => l.trim()).filter(Boolean).sort();
    expect(serviceLines(nft.last)).toEqual(want);
  });

  it('writes upstream setupNFTables: base chains, hooks, priorities, jumps, maps and the masquerade chains', async () => {
    const { nft } = await syncAll([], [], { nodePortAddresses: ['192.168.0.0/24'] });
    const setup = nft.last.split('\n').filter((l) => !l.startsWith('flush ') && !l.startsWith('delete ') && l !== '');
    expect(setup.filter((l) => / hook /.test(l))).toEqual([
      `add chain ${T} filter-prerouting { type filter hook prerouting priority -110 ; }`,
      `add chain ${T} filter-input { type filter hook input priority -110 ; }`,
      `add chain ${T} filter-forward { type filter hook forward priority -110 ; }`,
      `add chain ${T} filter-output { type filter hook output priority -110 ; }`,
      `add chain ${T} filter-output-post-dnat { type filter hook output priority -90 ; }`,
      `add chain ${T} nat-prerouting { type nat hook prerouting priority -100 ; }`,
      `add chain ${T} nat-output { type nat hook output priority -100 ; }`,
      `add chain ${T} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    ]);
    expect(setup.filter((l) => l.startsWith('add rule') || l.startsWith('add element')).sort()).toEqual(
      [
        `add rule ${T} filter-input ct state new jump nodeport-endpoints-check`,
        `add rule ${T} filter-input ct state new jump service-endpoints-check`,
        `add rule ${T} filter-forward ct state new jump service-endpoints-check`,
        `add rule ${T} filter-output ct state new jump service-endpoints-check`,
        `add rule ${T} filter-prerouting ct state new jump firewall-check`,
        `add rule ${T} filter-output ct state new jump firewall-check`,
        `add rule ${T} nat-output jump services`,
        `add rule ${T} nat-prerouting jump services`,
        `add rule ${T} nat-postrouting jump masquerading`,
        `add rule ${T} filter-forward ct state new jump cluster-ips-check`,
        `add rule ${T} filter-output-post-dnat ct state new jump cluster-ips-check`,
        `add rule ${T} mark-for-masquerade mark set mark or 0x4000`,
        `add rule ${T} masquerading mark and 0x4000 == 0 return`,
        `add rule ${T} masquerading mark set mark xor 0x4000`,
        `add rule ${T} masquerading masquerade fully-random`,
        `add rule ${T} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
        `add element ${T} nodeport-ips { 192.168.0.2 }`,
        `add rule ${T} reject-chain reject`,
        `add rule ${T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
        `add rule ${T} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
        `add rule ${T} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
        `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
        `add rule ${T} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
      ].sort(),
    );
  });

  it('without nodePortAddresses: NodePorts on every local address except 127.0.0.0/8 (no localhost NodePorts, as upstream)', async () => {
    const { nft } = await syncAll([], []);
    expect(nft.last).toContain(`add rule ${T} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports`);
    expect(nft.last).toContain(`add rule ${T} nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports`);
    expect(nft.last).toContain(`delete set ${T} nodeport-ips`);
  });

  it('internalTrafficPolicy Local without local endpoints drops ClusterIP traffic; masqueradeAll marks everything', async () => {
    const { nft } = await syncAll([S('ns1', 'svc1', { clusterIP: '172.30.0.41', internalTrafficPolicy: 'Local', ports: p80() })], [E('ns1', 'svc1', [{ ip: '10.180.0.1' }])], {
      masqueradeAll: true,
    });
    expect(serviceLines(nft.last)).toEqual(
      [`add element ${T} cluster-ips { 172.30.0.41 }`, `add element ${T} no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : drop }`].sort(),
    );
    const all = await syncAll([S('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: p80() })], [E('ns1', 'svc1', [{ ip: '10.180.0.1' }])], { masqueradeAll: true });
    expect(all.nft.last).toContain(`add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade`);
  });

  it('terminating endpoints are used only when no endpoint is ready (upstream terminating fallback)', async () => {
    const eps: EP[] = [
      { ip: '10.0.1.1', ready: false, serving: true, terminating: true },
      { ip: '10.0.1.2', ready: false, serving: false, terminating: true },
    ];
    const { nft } = await syncAll([S('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: p80() })], [E('ns1', 'svc1', eps)]);
    const lines = serviceLines(nft.last);
    expect(lines.filter((l) => l.startsWith(`add chain ${T} endpoint-`)).map((l) => l.split('__')[1])).toEqual(['10.0.1.1/80']);
    const ready = await syncAll([S('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: p80() })], [E('ns1', 'svc1', [...eps, { ip: '10.0.1.3' }])]);
    expect(serviceLines(ready.nft.last).filter((l) => l.startsWith(`add chain ${T} endpoint-`)).map((l) => l.split('__')[1])).toEqual(['10.0.1.3/80']);
  });

  it('loadBalancerSourceRanges containing the node IP also allow the load balancer IPs (hairpin from the node)', async () => {
    const { nft } = await syncAll(
      [S('ns5', 'svc5', { type: 'LoadBalancer', clusterIP: '172.30.0.45', ports: p80({ nodePort: 3002 }), loadBalancerSourceRanges: ['192.168.0.0/24', '203.0.113.0/25'] }, { loadBalancer: { ingress: [{ ip: '5.6.7.8' }] } })],
      [E('ns5', 'svc5', [{ ip: '10.180.0.3' }])],
    );
    expect(nft.last).toContain(`add rule ${T} firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 5.6.7.8, 192.168.0.0/24, 203.0.113.0/25 } drop`);
  });
});
