// Property tests for the proxy's input normalisation and rule builder (issue #9 campaign item 8): for any Service
// and EndpointSlice, normalisation never throws; for every service port the built rules are well-formed
// iptables-restore lines, every jump lands on a chain that exists, every chain the port owns is reachable, every
// DNAT goes to one of its endpoints, and the same input gives the same text.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Service } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import { ChainNamer } from '../../src/proxy/chain-names.ts';
import { mergeContributions, normalizeEndpointSlice, normalizeService } from '../../src/proxy/normalize.ts';
import { buildServicePortRules, type BuildContext } from '../../src/proxy/rules.ts';
import { endpointsPortKey } from '../../src/proxy/types.ts';

const RUNS = { numRuns: 150 };
const NODE = 'node-a';
const ctx = (o: Partial<BuildContext> = {}): BuildContext => ({
  namer: new ChainNamer(),
  nodeIP: '192.168.0.2',
  nodeLabels: { 'topology.kubernetes.io/zone': 'z1' },
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

/** Targets that are not chains a service port owns. */
const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'KUBE-MARK-MASQ']);
const SHARED_CHAINS = new Set(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXTERNAL-SERVICES', 'KUBE-PROXY-FIREWALL']);

const label = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
const ipv4 = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
const junkIP = fc.oneof({ weight: 10, arbitrary: ipv4 }, fc.constantFrom('', 'None', '::1', 'fd00::1', '010.0.0.1', '1.2.3', '256.1.1.1', ' 10.0.0.1', '10.0.0.0/8', 'x'), fc.string({ maxLength: 12 }));
const port = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 65535 }) }, fc.constantFrom(0, -1, 65536, 1.5, Number.NaN));
const protocol = fc.oneof({ weight: 5, arbitrary: fc.constantFrom('TCP', 'UDP', 'SCTP', undefined) }, fc.constantFrom('tcp', 'ICMP', ''));
const portName = fc.option(label, { nil: undefined });
/** Names a broken or hostile API server could send: quotes and newlines must never reach the rule text. */
const hostileName = fc.oneof({ weight: 16, arbitrary: label }, fc.constantFrom('a"b', 'x\n-A KUBE-SERVICES -j ACCEPT', 'UPPER', 'a b', '', 'é'), fc.string({ maxLength: 10 }));

const service: fc.Arbitrary<Service> = fc.record(
  {
    metadata: fc.record({ namespace: hostileName, name: hostileName, annotations: fc.option(fc.constant({ 'service.kubernetes.io/topology-mode': 'Auto' }), { nil: undefined }) }),
    spec: fc.record(
      {
        type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', undefined),
        clusterIP: junkIP,
        externalIPs: fc.array(junkIP, { maxLength: 2 }),
        ports: fc.array(fc.record({ name: fc.option(hostileName, { nil: undefined }), port, protocol, nodePort: fc.option(port, { nil: undefined }) }, { requiredKeys: ['port'] }), { minLength: 1, maxLength: 3 }),
        sessionAffinity: fc.constantFrom('None', 'ClientIP', 'Sticky', undefined),
        sessionAffinityConfig: fc.option(fc.record({ clientIP: fc.record({ timeoutSeconds: fc.oneof(fc.integer({ min: -5, max: 100_000 }), fc.constant(1.5)) }) }), { nil: undefined }),
        externalTrafficPolicy: fc.constantFrom('Cluster', 'Local', undefined),
        internalTrafficPolicy: fc.constantFrom('Cluster', 'Local', undefined),
        healthCheckNodePort: fc.option(port, { nil: undefined }),
        loadBalancerSourceRanges: fc.array(fc.oneof(ipv4.map((ip) => `${ip}/24`), fc.constantFrom('bogus', '10.0.0.0/33', '192.168.0.0/16')), { maxLength: 2 }),
      },
      { requiredKeys: ['clusterIP', 'ports'] },
    ),
    status: fc.record({ loadBalancer: fc.record({ ingress: fc.array(fc.record({ ip: junkIP }), { maxLength: 2 }) }) }),
  },
  { requiredKeys: ['metadata', 'spec'] },
) as fc.Arbitrary<Service>;

const sliceFor = (svc: Service): fc.Arbitrary<EndpointSlice> =>
  fc.record({
    apiVersion: fc.constant('discovery.k8s.io/v1'),
    kind: fc.constant('EndpointSlice'),
    metadata: fc.constant({ namespace: svc.metadata!.namespace!, name: `${svc.metadata!.name}-x`, labels: { 'kubernetes.io/service-name': svc.metadata!.name! } }),
    addressType: fc.constantFrom('IPv4', 'IPv4', 'IPv4', 'IPv6'),
    ports: fc.constant((svc.spec?.ports ?? []).map((p) => ({ name: p.name ?? '', port: typeof p.port === 'number' && p.port > 0 && p.port < 65536 ? 8000 + (p.port % 1000) : p.port, protocol: p.protocol ?? 'TCP' }))),
    endpoints: fc.array(
      fc.record({
        addresses: fc.tuple(junkIP),
        nodeName: fc.constantFrom(NODE, 'node-b', undefined),
        conditions: fc.record({ ready: fc.option(fc.boolean(), { nil: undefined }), serving: fc.option(fc.boolean(), { nil: undefined }), terminating: fc.option(fc.boolean(), { nil: undefined }) }),
        hints: fc.option(fc.record({ forZones: fc.constant([{ name: 'z1' }]) }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 5 },
    ),
  }) as fc.Arbitrary<EndpointSlice>;

const world = service.chain((svc) => fc.tuple(fc.constant(svc), sliceFor(svc), fc.boolean(), fc.boolean()));

const quotesBalanced = (l: string): boolean => (l.match(/"/g)?.length ?? 0) % 2 === 0;

describe('proxy rules (properties)', () => {
  it('normalisation never throws on arbitrary objects', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), fc.anything({ maxDepth: 4 }), (a, b) => {
        const svc = { metadata: { namespace: 'ns', name: 'n' }, spec: a } as unknown as Service;
        expect(() => normalizeService(svc)).not.toThrow();
        const slice = { metadata: { namespace: 'ns', labels: { 'kubernetes.io/service-name': 'n' } }, addressType: 'IPv4', ...(typeof b === 'object' && b ? b : {}) } as unknown as EndpointSlice;
        expect(() => normalizeEndpointSlice(slice, NODE)).not.toThrow();
      }),
      RUNS,
    );
  });

  it('for any Service and slice: well-formed lines, jumps to existing chains, reachable owned chains, DNAT only to endpoints, deterministic', () => {
    let withEndpoints = 0;
    fc.assert(
      fc.property(world, ([svc, slice, masqueradeAll, large]) => {
        const ports = normalizeService(svc).value;
        const eps = mergeContributions([normalizeEndpointSlice(slice, NODE).value]);
        for (const sp of ports) {
          const endpoints = eps.get(endpointsPortKey(sp.portName, sp.protocol)) ?? [];
          const c = ctx({ masqueradeAll, largeClusterMode: large });
          const r = buildServicePortRules(sp, endpoints, c);
          const owned = new Set(r.chains.map(([name]) => name));
          expect(owned.size).toBe(r.chains.length);
          const all = [...r.natTop, ...r.filterTop, ...r.chains.flatMap(([, lines]) => lines)];
          const jumped = new Set<string>();
          for (const l of all) {
            expect(l).not.toMatch(/[\n\r\0]/);
            expect(quotesBalanced(l)).toBe(true);
            const m = /^-A (\S+) /.exec(l);
            expect(m).not.toBeNull();
            expect(owned.has(m![1]!) || SHARED_CHAINS.has(m![1]!)).toBe(true);
            const j = / -j (\S+)/.exec(l);
            if (j) {
              const t = j[1]!;
              expect(BUILTIN_TARGETS.has(t) || owned.has(t)).toBe(true);
              jumped.add(t);
            }
            const dnat = /--to-destination (\S+)/.exec(l);
            if (dnat) expect(endpoints.map((e) => e.endpoint)).toContain(dnat[1]);
          }
          for (const chain of owned) {
            expect(chain.length).toBeLessThanOrEqual(28);
            // every owned chain is a jump target, except the EXT chain of a fail-closed firewall (no range usable:
            // the FW chain lets nothing through to it, as upstream)
            if (chain.startsWith('KUBE-EXT-') && sp.loadBalancerSourceRangesDenyAll && owned.has(chain.replace('KUBE-EXT-', 'KUBE-FW-'))) continue;
            expect(jumped.has(chain)).toBe(true);
          }
          for (const e of r.reachable) expect(endpoints).toContain(e);
          if (r.reachable.length) withEndpoints++;
          const again = buildServicePortRules(sp, endpoints, ctx({ masqueradeAll, largeClusterMode: large }));
          expect(again.natTop).toEqual(r.natTop);
          expect(again.filterTop).toEqual(r.filterTop);
          expect(again.chains).toEqual(r.chains);
        }
      }),
      RUNS,
    );
    // the generator must reach the interesting part (ports with endpoints DNATed to), not only rejections
    expect(withEndpoints).toBeGreaterThan(RUNS.numRuns / 10);
  });

  it('each ready endpoint of a Cluster-policy port is picked with probability 1/n overall', () => {
    fc.assert(
      fc.property(fc.uniqueArray(ipv4, { minLength: 1, maxLength: 12 }), (ips) => {
        const svc: Service = { metadata: { namespace: 'ns', name: 's' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] } };
        const sp = normalizeService(svc).value[0]!;
        const endpoints = ips.map((ip) => ({ ip, port: 8080, endpoint: `${ip}:8080`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined }));
        const r = buildServicePortRules(sp, endpoints, ctx());
        const svcChain = r.chains.find(([n]) => n.startsWith('KUBE-SVC-'))!;
        const probs = svcChain[1].filter((l) => / -j KUBE-SEP-/.test(l)).map((l) => Number(/--probability (\S+)/.exec(l)?.[1] ?? '1'));
        expect(probs).toHaveLength(ips.length);
        // P(endpoint i) = p_i · Π_{k<i} (1 - p_k) = 1/n (to the 11 decimals iptables keeps)
        let rest = 1;
        for (const p of probs) {
          expect(Math.abs(rest * p - 1 / ips.length)).toBeLessThan(1e-6);
          rest *= 1 - p;
        }
      }),
      { numRuns: 50 },
    );
  });
});
