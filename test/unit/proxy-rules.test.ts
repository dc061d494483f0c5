import { describe, expect, it } from 'vitest';
import { ChainNamer, hash16 } from '../../src/proxy/chain-names.ts';
import { normalizeService } from '../../src/proxy/normalize.ts';
import { type BuildContext, type ServicePortRules, buildGlobalRules, buildServicePortRules, probability } from '../../src/proxy/rules.ts';
import type { EndpointInfo, ServicePortInfo } from '../../src/proxy/types.ts';
import { computeFullSyncPlan } from '../../src/proxy/plan.ts';
import { service } from './proxy-fixtures.ts';
import type { ServiceSpec, ServiceStatus } from 'kubernetes-types/core/v1';

const ctx = (o: Partial<BuildContext> = {}): BuildContext => ({
  namer: new ChainNamer(),
  nodeIP: '192.168.0.2',
  nodeLabels: {},
  largeClusterMode: false,
  masqueradeMark: 0x4000,
  masqueradeAll: false,
  clusterCIDR: '10.244.0.0/16',
  localhostNodePorts: true,
  nodePortIPs: [],
  randomFully: true,
  conntrackTCPLiberal: false,
  ...o,
});

function port(spec: Partial<ServiceSpec>, opts: { status?: ServiceStatus; annotations?: Record<string, string>; index?: number } = {}): ServicePortInfo {
  const n = normalizeService(service('ns1', 'svc1', spec, opts));
  expect(n.problems).toEqual([]);
  return n.value[opts.index ?? 0]!;
}

function ep(ip: string, p: number, o: Partial<EndpointInfo> = {}): EndpointInfo {
  return { ip, port: p, endpoint: `${ip}:${p}`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined, ...o };
}

/** A readable dump: shared-chain rules by table, then each owned chain. */
function dump(r: ServicePortRules): string {
  const out: string[] = [];
  for (const l of r.natTop) out.push(`nat ${l}`);
  for (const l of r.filterTop) out.push(`filter ${l}`);
  for (const [chain, lines] of r.chains) {
    out.push(`:${chain}`);
    out.push(...lines);
  }
  return out.join('\n');
}

const h = (s: string): string => hash16(s);

describe('chain names', () => {
  it('match upstream test vectors', () => {
    // pkg/proxy/iptables/proxier_test.go: ns1/svc1:p80 → KUBE-SVC-XPGD46QRK7WJZT7O, endpoint 10.180.0.1:80 → KUBE-SEP-SXIVWICOYRO3J4NJ
    const n = new ChainNamer();
    expect(n.servicePort('ns1/svc1:p80', 'TCP').svc).toBe('KUBE-SVC-XPGD46QRK7WJZT7O');
    expect(n.endpoint('ns1/svc1:p80', 'TCP', '10.180.0.1:80')).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ');
  });
});

describe('probability', () => {
  it('prints 1/n as iptables-save does', () => {
    expect(probability(2)).toBe('0.50000000000');
    expect(probability(3)).toBe('0.33333333349');
    expect(probability(4)).toBe('0.25000000000');
    expect(probability(5)).toBe('0.20000000019');
    // 2^-12 is a tie at the 11th digit: glibc rounds half to even.
    expect(probability(4096)).toBe('0.00024414062');
  });
  it('round-trips through the kernel representation for n up to 20000', () => {
    for (let n = 2; n <= 20000; n++) {
      const u = Math.round(0x80000000 / n);
      expect(Math.round(0x80000000 * Number(probability(n)))).toBe(u);
    }
  });
});

describe('buildServicePortRules', () => {
  const SVC = `KUBE-SVC-${h('ns1/svc1:p80tcp')}`;
  const SVL = `KUBE-SVL-${h('ns1/svc1:p80tcp')}`;
  const EXT = `KUBE-EXT-${h('ns1/svc1:p80tcp')}`;
  const FW = `KUBE-FW-${h('ns1/svc1:p80tcp')}`;
  const SEP = (e: string): string => `KUBE-SEP-${h(`ns1/svc1:p80tcp${e}`)}`;
  const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' }];

  it('ClusterIP with two endpoints: DNAT split 1/2, off-cluster masquerade, hairpin', () => {
    const svc = port({ clusterIP: '172.30.0.41', ports: p80 });
    const r = buildServicePortRules(svc, [ep('10.180.0.1', 80), ep('10.180.0.2', 80)], ctx());
    expect(dump(r)).toBe(
      [
        `nat -A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j ${SVC}`,
        `:${SVC}`,
        `-A ${SVC} ! -s 10.244.0.0/16 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
        `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.50000000000 -j ${SEP('10.180.0.1:80')}`,
        `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j ${SEP('10.180.0.2:80')}`,
        `:${SEP('10.180.0.1:80')}`,
        `-A ${SEP('10.180.0.1:80')} -s 10.180.0.1/32 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ`,
        `-A ${SEP('10.180.0.1:80')} -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.180.0.1:80`,
        `:${SEP('10.180.0.2:80')}`,
        `-A ${SEP('10.180.0.2:80')} -s 10.180.0.2/32 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ`,
        `-A ${SEP('10.180.0.2:80')} -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.180.0.2:80`,
      ].join('\n'),
    );
    expect(SEP('10.180.0.1:80')).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ');
  });

  it('no endpoints: REJECT in filter for ClusterIP, externalIP, NodePort and LB, no nat chains', () => {
    const svc = port(
      { type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [{ name: 'p80', port: 80, nodePort: 3001 }] },
      { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } },
    );
    const r = buildServicePortRules(svc, [], ctx());
    expect(dump(r)).toBe(
      [
        'filter -A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        'filter -A KUBE-EXTERNAL-SERVICES -d 192.168.99.11/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        'filter -A KUBE-EXTERNAL-SERVICES -d 1.2.3.4/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        'filter -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 3001 -j REJECT --reject-with icmp-port-unreachable',
      ].join('\n'),
    );
    expect(r.chains).toEqual([]);
  });

  it('NodePort and externalIP with three endpoints: EXT chain masquerades, probabilities 1/3, 1/2, last unconditional', () => {
    const svc = port({ type: 'NodePort', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [{ name: 'p80', port: 80, nodePort: 3001 }] });
    const eps = [ep('10.180.0.1', 80), ep('10.180.0.2', 80), ep('10.180.0.3', 80)];
    const r = buildServicePortRules(svc, eps, ctx({ clusterCIDR: undefined }));
    expect(r.natTop).toEqual([
      `-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j ${SVC}`,
      `-A KUBE-SERVICES -d 192.168.99.11/32 -p tcp -m comment --comment "ns1/svc1:p80 external IP" -m tcp --dport 80 -j ${EXT}`,
      `-A KUBE-NODEPORTS -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 3001 -j ${EXT}`,
    ]);
    expect(r.filterTop).toEqual([]);
    const chains = new Map(r.chains);
    expect(chains.get(EXT)).toEqual([
      `-A ${EXT} -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ`,
      `-A ${EXT} -j ${SVC}`,
    ]);
    // Without a cluster CIDR there is no off-cluster masquerade rule (upstream: no local detector).
    expect(chains.get(SVC)).toEqual([
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.33333333349 -j ${SEP('10.180.0.1:80')}`,
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.50000000000 -j ${SEP('10.180.0.2:80')}`,
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -j ${SEP('10.180.0.3:80')}`,
    ]);
    expect(r.chains.map(([c]) => c)).toEqual([EXT, SVC, SEP('10.180.0.1:80'), SEP('10.180.0.2:80'), SEP('10.180.0.3:80')]);
  });

  it('LoadBalancer with loadBalancerSourceRanges: FW chain, node allowed to its own VIP, DROP in KUBE-PROXY-FIREWALL', () => {
    const svc = port(
      { type: 'LoadBalancer', clusterIP: '172.30.0.41', loadBalancerSourceRanges: ['192.168.0.0/24', '203.0.113.5/8'], ports: [{ name: 'p80', port: 80, nodePort: 3001 }] },
      { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }, { ip: '5.6.7.8', ipMode: 'Proxy' }] } } },
    );
    const r = buildServicePortRules(svc, [ep('10.180.0.1', 80)], ctx());
    expect(r.natTop).toContain(`-A KUBE-SERVICES -d 1.2.3.4/32 -p tcp -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp --dport 80 -j ${FW}`);
    expect(r.natTop.join('\n')).not.toContain('5.6.7.8');
    expect(r.filterTop).toEqual([
      `-A KUBE-PROXY-FIREWALL -d 1.2.3.4/32 -p tcp -m comment --comment "ns1/svc1:p80 traffic not accepted by ${FW}" -m tcp --dport 80 -j DROP`,
    ]);
    expect(new Map(r.chains).get(FW)).toEqual([
      `-A ${FW} -s 192.168.0.0/24 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j ${EXT}`,
      `-A ${FW} -s 203.0.0.0/8 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j ${EXT}`,
      `-A ${FW} -s 1.2.3.4/32 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j ${EXT}`,
      `-A ${FW} -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"`,
    ]);
  });

  it('externalTrafficPolicy Local with a local endpoint: EXT short-circuits local traffic, SVL for the rest, health check port', () => {
    const svc = port(
      { type: 'LoadBalancer', clusterIP: '172.30.0.41', externalTrafficPolicy: 'Local', healthCheckNodePort: 30000, ports: [{ name: 'p80', port: 80, nodePort: 3001 }] },
      { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } },
    );
    const local = ep('10.180.0.1', 80, { isLocal: true });
    const remote = ep('10.180.1.1', 80);
    const r = buildServicePortRules(svc, [local, remote], ctx());
    expect(r.filterTop).toEqual([
      '-A KUBE-NODEPORTS -p tcp -m comment --comment "ns1/svc1:p80 health check node port" -m tcp --dport 30000 -j ACCEPT',
    ]);
    const chains = new Map(r.chains);
    expect(chains.get(EXT)).toEqual([
      `-A ${EXT} -s 10.244.0.0/16 -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -j ${SVC}`,
      `-A ${EXT} -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
      `-A ${EXT} -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j ${SVC}`,
      `-A ${EXT} -j ${SVL}`,
    ]);
    expect(chains.get(SVL)).toEqual([`-A ${SVL} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j ${SEP('10.180.0.1:80')}`]);
    expect(chains.get(SVC)).toHaveLength(3);
    expect(r.localReady).toBe(1);
    expect(r.noLocalExternal).toBe(false);
  });

  it('externalTrafficPolicy Local without local endpoints: external traffic dropped, ClusterIP still served', () => {
    const svc = port({ type: 'NodePort', clusterIP: '172.30.0.41', externalTrafficPolicy: 'Local', ports: [{ name: 'p80', port: 80, nodePort: 3001 }] });
    const r = buildServicePortRules(svc, [ep('10.180.1.1', 80)], ctx());
    expect(r.filterTop).toEqual([
      '-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 3001 -j DROP',
    ]);
    expect(r.natTop).toContain(`-A KUBE-NODEPORTS -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 3001 -j ${EXT}`);
    // No final jump to SVL: only locally originated traffic is short-circuited to the cluster chain.
    expect(new Map(r.chains).get(EXT)?.at(-1)).toBe(
      `-A ${EXT} -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j ${SVC}`,
    );
    expect(new Map(r.chains).has(SVL)).toBe(false);
    expect(r.noLocalExternal).toBe(true);
  });

  it('internalTrafficPolicy Local: SVL for the ClusterIP, DROP when no local endpoint', () => {
    const svc = port({ clusterIP: '172.30.0.41', internalTrafficPolicy: 'Local', ports: p80 });
    const withLocal = buildServicePortRules(svc, [ep('10.180.0.1', 80, { isLocal: true }), ep('10.180.1.1', 80)], ctx());
    expect(withLocal.natTop).toEqual([
      `-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j ${SVL}`,
    ]);
    expect(withLocal.chains.map(([c]) => c)).toEqual([SVL, SEP('10.180.0.1:80')]);
    const without = buildServicePortRules(svc, [ep('10.180.1.1', 80)], ctx());
    expect(dump(without)).toBe(
      'filter -A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp --dport 80 -j DROP',
    );
    expect(without.noLocalInternal).toBe(true);
  });

  it('sessionAffinity ClientIP: recent --rcheck before the split, --set in the SEP chain, with the timeout', () => {
    const svc = port({ clusterIP: '172.30.0.41', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }, ports: p80 });
    const r = buildServicePortRules(svc, [ep('10.180.0.1', 80), ep('10.180.0.2', 80)], ctx({ clusterCIDR: undefined }));
    const chains = new Map(r.chains);
    const s1 = SEP('10.180.0.1:80');
    const s2 = SEP('10.180.0.2:80');
    expect(chains.get(SVC)).toEqual([
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --rcheck --seconds 600 --reap --name ${s1} --mask 255.255.255.255 --rsource -j ${s1}`,
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m recent --rcheck --seconds 600 --reap --name ${s2} --mask 255.255.255.255 --rsource -j ${s2}`,
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.50000000000 -j ${s1}`,
      `-A ${SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j ${s2}`,
    ]);
    expect(chains.get(s1)?.[1]).toBe(
      `-A ${s1} -p tcp -m comment --comment "ns1/svc1:p80" -m recent --set --name ${s1} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.1:80`,
    );
  });

  it('multi-port with UDP and SCTP, named and unnamed ports', () => {
    const n = normalizeService(
      service('ns1', 'dns', { clusterIP: '172.30.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'sc', port: 9, protocol: 'SCTP' }] }),
    );
    const [udp, tcp, sctp] = n.value;
    const c = ctx({ clusterCIDR: undefined });
    const ru = buildServicePortRules(udp!, [ep('10.1.0.1', 5353)], c);
    const udpSvc = `KUBE-SVC-${h('ns1/dns:dnsudp')}`;
    const udpSep = `KUBE-SEP-${h('ns1/dns:dnsudp10.1.0.1:5353')}`;
    expect(ru.natTop).toEqual([`-A KUBE-SERVICES -d 172.30.0.10/32 -p udp -m comment --comment "ns1/dns:dns cluster IP" -m udp --dport 53 -j ${udpSvc}`]);
    expect(new Map(ru.chains).get(udpSep)?.[1]).toBe(`-A ${udpSep} -p udp -m comment --comment "ns1/dns:dns" -m udp -j DNAT --to-destination 10.1.0.1:5353`);
    const rt = buildServicePortRules(tcp!, [], c);
    expect(rt.filterTop[0]).toContain('"ns1/dns:dns-tcp has no endpoints" -m tcp --dport 53');
    const rs = buildServicePortRules(sctp!, [ep('10.1.0.1', 9)], c);
    expect(rs.natTop[0]).toBe(`-A KUBE-SERVICES -d 172.30.0.10/32 -p sctp -m comment --comment "ns1/dns:sc cluster IP" -m sctp --dport 9 -j KUBE-SVC-${h('ns1/dns:scsctp')}`);
    // Unnamed port: the name string has no ":port".
    const un = normalizeService(service('ns1', 'plain', { clusterIP: '172.30.0.11', ports: [{ port: 80 }] })).value[0]!;
    expect(un.nameString).toBe('ns1/plain');
    expect(buildServicePortRules(un, [ep('10.1.0.2', 80)], c).natTop[0]).toBe(
      `-A KUBE-SERVICES -d 172.30.0.11/32 -p tcp -m comment --comment "ns1/plain cluster IP" -m tcp --dport 80 -j KUBE-SVC-${h('ns1/plaintcp')}`,
    );
  });

  it('large cluster mode drops comments from SVC→SEP and SEP rules only', () => {
    const svc = port({ clusterIP: '172.30.0.41', ports: p80 });
    const r = buildServicePortRules(svc, [ep('10.180.0.1', 80), ep('10.180.0.2', 80)], ctx({ largeClusterMode: true }));
    const chains = new Map(r.chains);
    expect(chains.get(SVC)).toEqual([
      `-A ${SVC} ! -s 10.244.0.0/16 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
      `-A ${SVC} -m statistic --mode random --probability 0.50000000000 -j ${SEP('10.180.0.1:80')}`,
      `-A ${SVC} -j ${SEP('10.180.0.2:80')}`,
    ]);
    expect(chains.get(SEP('10.180.0.1:80'))).toEqual([
      `-A ${SEP('10.180.0.1:80')} -s 10.180.0.1/32 -j KUBE-MARK-MASQ`,
      `-A ${SEP('10.180.0.1:80')} -p tcp -m tcp -j DNAT --to-destination 10.180.0.1:80`,
    ]);
    expect(r.natTop[0]).toContain('--comment "ns1/svc1:p80 cluster IP"');
  });

  it('masqueradeAll marks all ClusterIP traffic', () => {
    const svc = port({ clusterIP: '172.30.0.41', ports: p80 });
    const r = buildServicePortRules(svc, [ep('10.180.0.1', 80)], ctx({ masqueradeAll: true }));
    expect(new Map(r.chains).get(SVC)?.[0]).toBe(
      `-A ${SVC} -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
    );
  });

  it('uses terminating-but-serving endpoints only when no endpoint is ready', () => {
    const svc = port({ clusterIP: '172.30.0.41', ports: p80 });
    const term = ep('10.180.0.9', 80, { ready: false, serving: true, terminating: true });
    const notServing = ep('10.180.0.8', 80, { ready: false, serving: false, terminating: true });
    const withReady = buildServicePortRules(svc, [ep('10.180.0.1', 80), term], ctx());
    expect(withReady.reachable.map((e) => e.endpoint)).toEqual(['10.180.0.1:80']);
    const onlyTerm = buildServicePortRules(svc, [term, notServing], ctx());
    expect(onlyTerm.reachable.map((e) => e.endpoint)).toEqual(['10.180.0.9:80']);
    expect(onlyTerm.natTop).toHaveLength(1);
    const none = buildServicePortRules(svc, [notServing], ctx());
    expect(none.filterTop[0]).toContain('has no endpoints');
  });

  it('topology hints keep the cluster chain to same-zone endpoints', () => {
    const svc = port({ clusterIP: '172.30.0.41', ports: p80 }, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } });
    const a = ep('10.180.0.1', 80, { zoneHints: ['zone-a'] });
    const b = ep('10.180.0.2', 80, { zoneHints: ['zone-b'] });
    const r = buildServicePortRules(svc, [a, b], ctx({ nodeLabels: { 'topology.kubernetes.io/zone': 'zone-a' } }));
    expect(r.reachable.map((e) => e.endpoint)).toEqual(['10.180.0.1:80']);
    const noZone = buildServicePortRules(svc, [a, b], ctx());
    expect(noZone.reachable).toHaveLength(2);
  });
});

describe('buildGlobalRules', () => {
  it('writes masquerade, forward and localnet protection as upstream, in save form', () => {
    const g = buildGlobalRules({
      masqueradeMark: 0x4000,
      masqueradeAll: false,
      clusterCIDR: undefined,
      localhostNodePorts: true,
      nodePortIPs: [],
      randomFully: true,
      conntrackTCPLiberal: false,
    });
    expect(g.fixed).toEqual([
      {
        table: 'nat',
        chain: 'KUBE-POSTROUTING',
        lines: [
          '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
          '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
          '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        ],
      },
      { table: 'nat', chain: 'KUBE-MARK-MASQ', lines: ['-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000'] },
      {
        table: 'filter',
        chain: 'KUBE-FORWARD',
        lines: [
          '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
          '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
          '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        ],
      },
      {
        table: 'filter',
        chain: 'KUBE-FIREWALL',
        lines: [
          '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
        ],
      },
    ]);
    expect(g.natServicesTail).toEqual([
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    ]);
    expect(g.jumps.map((j) => `${j.table} ${j.line}`)).toEqual([
      'filter -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      'filter -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      'filter -A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
      'filter -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'filter -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'filter -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      'filter -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'filter -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'filter -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'nat -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'nat -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      'filter -A INPUT -j KUBE-FIREWALL',
      'filter -A OUTPUT -j KUBE-FIREWALL',
    ]);
  });

  it('without localhost NodePorts excludes 127.0.0.0/8; nodePortAddresses give one jump per IP; no --random-fully when unsupported', () => {
    const base = { masqueradeMark: 0x4000, masqueradeAll: false, clusterCIDR: undefined, randomFully: false, conntrackTCPLiberal: true };
    const g = buildGlobalRules({ ...base, localhostNodePorts: false, nodePortIPs: [] });
    expect(g.natServicesTail[0]).toBe(
      '-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    );
    expect(g.fixed.find((f) => f.chain === 'KUBE-POSTROUTING')?.lines[2]).toMatch(/-j MASQUERADE$/);
    expect(g.fixed.find((f) => f.chain === 'KUBE-FORWARD')?.lines).toHaveLength(2);
    expect(g.fixed.some((f) => f.chain === 'KUBE-FIREWALL')).toBe(false);
    const g2 = buildGlobalRules({ ...base, localhostNodePorts: false, nodePortIPs: ['192.168.0.2', '127.0.0.1'] });
    expect(g2.natServicesTail).toEqual([
      '-A KUBE-SERVICES -d 192.168.0.2/32 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -j KUBE-NODEPORTS',
    ]);
  });
});

describe('full rule set', () => {
  it('declares every chain a rule jumps to, in the same table', () => {
    const c = ctx();
    const ports: ServicePortRules[] = [];
    const specs: Partial<ServiceSpec>[] = [
      { clusterIP: '172.30.0.1', ports: [{ name: 'a', port: 80 }] },
      { type: 'NodePort', clusterIP: '172.30.0.2', externalTrafficPolicy: 'Local', ports: [{ name: 'a', port: 80, nodePort: 30001 }] },
      { type: 'LoadBalancer', clusterIP: '172.30.0.3', loadBalancerSourceRanges: ['10.0.0.0/8'], externalIPs: ['9.9.9.9'], ports: [{ name: 'a', port: 80, nodePort: 30002 }] },
      { clusterIP: '172.30.0.4', internalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP', ports: [{ name: 'a', port: 53, protocol: 'UDP' }] },
    ];
    specs.forEach((s, i) => {
      for (const p of normalizeService(service('ns', `s${i}`, s, { status: { loadBalancer: { ingress: [{ ip: '5.5.5.5' }] } } })).value) {
        ports.push(buildServicePortRules(p, [ep('10.0.1.1', 8080, { isLocal: true }), ep('10.0.2.1', 8080)], c));
      }
    });
    const plan = computeFullSyncPlan(ports, buildGlobalRules(c), new Map());
    let table = '';
    let declared = new Set<string>();
    const builtin = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
    for (const line of plan.text.split('\n')) {
      if (line.startsWith('*')) {
        table = line.slice(1);
        declared = new Set();
      } else if (line.startsWith(':')) declared.add(line.slice(1).split(' ')[0]!);
      else if (/^-[AI] /.test(line)) {
        const chain = line.split(' ')[1]!;
        expect(builtin.has(chain) || declared.has(chain), `${table} ${line}`).toBe(true);
        const t = /-j (KUBE-\S+)/.exec(line)?.[1];
        if (t) expect(declared.has(t), `${table}: ${line}`).toBe(true);
      }
    }
  });
});
