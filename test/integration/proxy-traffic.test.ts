// The proxy with real iptables and real traffic, inside namespaces this test creates:
//
//   client (10.77.0.2, .3) ──veth── node (10.77.0.1 | 10.244.1.1) ──veth── pods (10.244.1.11 … .15)
//
// berth's rules live in `node`; endpoints are identity servers in `pods`; the client connects through the node,
// so DNAT happens in PREROUTING (and in OUTPUT for traffic from the node itself). Every mode: iptables on both
// backends, and nftables (berth's `ip kube-proxy` table); the same scenarios, differing only where upstream's modes
// differ (the nftables mode serves no NodePorts on 127.0.0.1 and needs no route_localnet).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service, ServiceStatus } from 'kubernetes-types/core/v1';
import { silentLogger } from '../../src/lib/index.ts';
import {
  CommandNftExecutor,
  NftablesProxy,
  ServiceProxy,
  createConntrack,
  createIptablesExecutor,
  createServiceHealthServer,
  createSysctl,
  resolveProxyConfig,
  type ServiceHealthServer,
} from '../../src/proxy/index.ts';
import { CHI2_CRIT_P001, Netns, chiSquareUniform, destroyAll, link, removeScripts, startEndpoints, traffic } from './helpers/netns.ts';
import { service, slice, type EP } from '../unit/proxy-fixtures.ts';

const POD = (n: number): string => `10.244.1.${10 + n}`;
const ANS = (n: number): string => `${POD(n)}:8080`;

interface World {
  node: Netns;
  client: Netns;
  pods: Netns;
  proxy: ServiceProxy | NftablesProxy;
  health: ServiceHealthServer;
}

type Mode = { mode: 'iptables'; backend: 'nft' | 'legacy' } | { mode: 'nftables'; backend: 'nftables' };

async function createWorld(m: Mode): Promise<World> {
  const node = await Netns.create('node');
  const client = await Netns.create('cl');
  const pods = await Netns.create('pods');
  await link(client, 'c0', '10.77.0.2/24', node, 'n0', '10.77.0.1/24');
  await client.ip('addr', 'add', '10.77.0.3/24', 'dev', 'c0');
  await client.ip('route', 'add', 'default', 'via', '10.77.0.1');
  await link(pods, 'p0', `${POD(1)}/24`, node, 'n1', '10.244.1.1/24');
  for (let i = 2; i <= 5; i++) await pods.ip('addr', 'add', `${POD(i)}/24`, 'dev', 'p0');
  await pods.ip('route', 'add', 'default', 'via', '10.244.1.1');
  // A real node has a default route; here it leads to a namespace that forwards nothing, so traffic that escapes
  // DNAT goes nowhere but still passes the filter chains (REJECT / DROP) as it would on a node.
  const sink = await Netns.create('sink');
  await link(node, 'n2', '10.78.0.1/30', sink, 's0', '10.78.0.2/30');
  await sink.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']);
  await node.ip('route', 'add', 'default', 'via', '10.78.0.2');
  await startEndpoints(pods, [1, 2, 3, 4, 5].map(POD), 8080, 5353);

  const health = createServiceHealthServer({ bindAddress: '127.0.0.1', portFor: () => 0, log: silentLogger });
  const common = {
    config: resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16' }),
    node: { name: 'node-a', ip: '10.77.0.1', ips: ['10.77.0.1', '10.244.1.1'] },
    sysctl: createSysctl({ netns: node.name }),
    conntrack: createConntrack({ netns: node.name, log: silentLogger }),
    healthServer: health,
    log: silentLogger,
  };
  const proxy =
    m.mode === 'nftables'
      ? new NftablesProxy({ ...common, executor: new CommandNftExecutor({ netns: node.name }) })
      : new ServiceProxy({ ...common, executor: await createIptablesExecutor({ backend: m.backend, netns: node.name, log: silentLogger }) });
  return { node, client, pods, proxy, health };
}

const http = [{ name: 'http', port: 80, protocol: 'TCP' }];
const eps = (ns: number[], node = 'node-b'): EP[] => ns.map((n) => ({ ip: POD(n), node }));
const sl = (name: string, e: EP[], port = 8080, proto = 'TCP') => slice('default', name, `${name}-1`, [{ name: proto === 'UDP' ? 'dns' : 'http', port, protocol: proto }], e);

function services(): { svc: Service[]; slices: ReturnType<typeof sl>[] } {
  const S = (name: string, spec: Parameters<typeof service>[2], status?: ServiceStatus) =>
    service('default', name, spec, status ? { status } : {});
  return {
    svc: [
      S('two', { type: 'NodePort', clusterIP: '10.96.0.2', ports: [{ ...http[0]!, nodePort: 30002 }] }),
      S('three', { clusterIP: '10.96.0.3', ports: http }),
      S('five', { clusterIP: '10.96.0.5', ports: http }),
      S('sticky', { clusterIP: '10.96.0.6', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: http }),
      S('empty', { type: 'NodePort', clusterIP: '10.96.0.7', ports: [{ ...http[0]!, nodePort: 30007 }] }),
      S(
        'local-yes',
        { type: 'LoadBalancer', clusterIP: '10.96.0.8', externalTrafficPolicy: 'Local', healthCheckNodePort: 32008, ports: [{ ...http[0]!, nodePort: 30008 }] },
        { loadBalancer: { ingress: [{ ip: '10.99.0.8' }] } },
      ),
      S('local-no', { type: 'NodePort', clusterIP: '10.96.0.9', externalTrafficPolicy: 'Local', ports: [{ ...http[0]!, nodePort: 30009 }] }),
      S(
        'lb',
        { type: 'LoadBalancer', clusterIP: '10.96.0.10', loadBalancerSourceRanges: ['10.77.0.2/32'], externalIPs: ['10.99.0.11'], ports: [{ ...http[0]!, nodePort: 30010 }] },
        { loadBalancer: { ingress: [{ ip: '10.99.0.10' }] } },
      ),
      S('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    ],
    slices: [
      sl('two', eps([1, 2])),
      sl('three', eps([1, 2, 3])),
      sl('five', eps([1, 2, 3, 4, 5])),
      sl('sticky', eps([1, 2, 3, 4, 5])),
      sl('local-yes', [...eps([1], 'node-a'), ...eps([2])]),
      sl('local-no', eps([3])),
      sl('lb', eps([4])),
      sl('dns', eps([4]), 5353, 'UDP'),
    ],
  };
}

const MODES: Mode[] = [
  { mode: 'iptables', backend: 'nft' },
  { mode: 'iptables', backend: 'legacy' },
  { mode: 'nftables', backend: 'nftables' },
];

describe.each(MODES)('proxy with real traffic ($mode, $backend)', (m) => {
  const { backend } = m;
  const nftables = m.mode === 'nftables';
  let w: World;

  beforeAll(async () => {
    w = await createWorld(m);
    const { svc, slices } = services();
    for (const s of svc) w.proxy.onServiceAdd(s);
    for (const s of slices) w.proxy.onEndpointSliceAdd(s);
    w.proxy.onServicesSynced();
    w.proxy.onEndpointSlicesSynced();
    await w.proxy.start();
    const r = await w.proxy.syncNow();
    expect(r.kind).toBe('full');
    // The nftables mode writes every Service through netlink (the fixed setup alone goes through nft).
    if (w.proxy instanceof NftablesProxy) expect(w.proxy.transactionCounts).toMatchObject({ nft: 0, setup: 1 });
    if (w.proxy instanceof NftablesProxy) expect(w.proxy.transactionCounts.netlink).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await w?.proxy.stop();
    await destroyAll();
    await removeScripts();
  });

  it('sets the sysctls it needs inside the node namespace', async () => {
    // Localhost NodePorts need route_localnet in iptables mode; the nftables mode (as upstream's) neither needs
    // nor sets it (a new namespace may inherit the host's value, so nothing is asserted about it there).
    if (!nftables) expect((await w.node.exec(['sysctl', '-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('1');
    expect((await w.node.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');
  });

  it('ClusterIP reaches the endpoints from another namespace (PREROUTING) and from the node itself (OUTPUT)', async () => {
    const fromClient = await traffic(w.client, '10.96.0.2', 80, { count: 20, concurrency: 4 });
    expect(fromClient.errors).toEqual({});
    expect(Object.keys(fromClient.answers).sort()).toEqual([ANS(1), ANS(2)]);
    const fromNode = await traffic(w.node, '10.96.0.2', 80, { count: 20, concurrency: 4 });
    expect(fromNode.errors).toEqual({});
    expect(Object.keys(fromNode.answers).every((a) => [ANS(1), ANS(2)].includes(a))).toBe(true);
  });

  it('NodePort works on the node IP from outside (masqueraded); on 127.0.0.1 from the node only in iptables mode', async () => {
    const r = await traffic(w.client, '10.77.0.1', 30002, { count: 20, concurrency: 4 });
    expect(r.errors).toEqual({});
    expect(Object.values(r.answers).reduce((a, b) => a + b)).toBe(20);
    // eTP=Cluster: the endpoint sees the node, not the client.
    expect(Object.keys(r.peers)).toEqual(['10.244.1.1']);
    const lo = await traffic(w.node, '127.0.0.1', 30002, { count: 5, perTimeoutMs: 3000 });
    if (nftables) {
      // Upstream's nftables mode excludes 127.0.0.0/8 from NodePorts: nothing listens there, so it is refused.
      expect(lo.errors).toEqual({ ECONNREFUSED: 5 });
      return;
    }
    expect(lo.errors).toEqual({});
    expect(Object.values(lo.answers).reduce((a, b) => a + b)).toBe(5);
  });

  it('spreads connections uniformly over 2, 3 and 5 endpoints (chi-square, 1200 connections each)', async () => {
    for (const [ip, n] of [['10.96.0.2', 2], ['10.96.0.3', 3], ['10.96.0.5', 5]] as const) {
      const r = await traffic(w.client, ip, 80, { count: 1200, concurrency: 16, deadlineMs: 30_000 });
      expect(r.errors).toEqual({});
      const counts = Object.values(r.answers);
      expect(counts.reduce((a, b) => a + b)).toBe(1200);
      expect(counts).toHaveLength(n);
      const chi2 = chiSquareUniform(counts, n);
      expect(chi2, `${ip}: ${JSON.stringify(r.answers)} chi2=${chi2.toFixed(2)}`).toBeLessThan(CHI2_CRIT_P001[n - 1]!);
    }
  });

  it('ClientIP affinity pins a client to one endpoint', async () => {
    const r = await traffic(w.client, '10.96.0.6', 80, { count: 60, concurrency: 1 });
    expect(r.errors).toEqual({});
    expect(Object.keys(r.answers)).toHaveLength(1);
    // Another client address gets its own (possibly different) pin, still exactly one.
    const other = await traffic(w.client, '10.96.0.6', 80, { count: 30, bind: '10.77.0.3' });
    expect(Object.keys(other.answers)).toHaveLength(1);
  });

  it('a Service without endpoints is rejected at once, not left to time out', async () => {
    for (const [ip, port] of [['10.96.0.7', 80], ['10.77.0.1', 30007]] as const) {
      const r = await traffic(w.client, ip, port, { count: 3, perTimeoutMs: 3000 });
      expect(r.errors).toEqual({ ECONNREFUSED: 3 });
      expect(r.firstErrorMs!).toBeLessThan(500);
    }
  });

  it('externalTrafficPolicy Local: local endpoint only with the client source preserved; dropped where none is local', async () => {
    for (const [ip, port] of [['10.77.0.1', 30008], ['10.99.0.8', 80]] as const) {
      const yes = await traffic(w.client, ip, port, { count: 30, concurrency: 4 });
      expect(yes.errors).toEqual({});
      expect(yes.answers).toEqual({ [ANS(1)]: 30 });
      expect(yes.peers).toEqual({ '10.77.0.2': 30 });
    }
    const no = await traffic(w.client, '10.77.0.1', 30009, { count: 2, perTimeoutMs: 800 });
    expect(no.errors).toEqual({ TIMEOUT: 2 });
    // ClusterIP traffic is not subject to the external policy.
    const cip = await traffic(w.client, '10.96.0.9', 80, { count: 5 });
    expect(cip.answers).toEqual({ [ANS(3)]: 5 });
  });

  it('serves healthCheckNodePort with the local endpoint count', async () => {
    const addr = w.health.addressOf('default/local-yes');
    expect(addr).toBeDefined();
    const res = await fetch(`http://127.0.0.1:${addr!.port}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ service: { namespace: 'default', name: 'local-yes' }, localEndpoints: 1, serviceProxyHealthy: true });
  });

  it('LoadBalancer IP honours loadBalancerSourceRanges; externalIPs reach the Service', async () => {
    const allowed = await traffic(w.client, '10.99.0.10', 80, { count: 5, bind: '10.77.0.2' });
    expect(allowed.answers).toEqual({ [ANS(4)]: 5 });
    const denied = await traffic(w.client, '10.99.0.10', 80, { count: 2, bind: '10.77.0.3', perTimeoutMs: 800 });
    expect(denied.errors).toEqual({ TIMEOUT: 2 });
    const ext = await traffic(w.client, '10.99.0.11', 80, { count: 5, bind: '10.77.0.3' });
    expect(ext.answers).toEqual({ [ANS(4)]: 5 });
  });

  it('partial syncs: scaled endpoints, a removed Service and a Service losing all endpoints take effect', async () => {
    w.proxy.onEndpointSliceUpdate(undefined, sl('two', eps([1, 2, 3])));
    expect((await w.proxy.syncNow()).kind).toBe('partial');
    const r = await traffic(w.client, '10.96.0.2', 80, { count: 120, concurrency: 8 });
    expect(Object.keys(r.answers).sort()).toEqual([ANS(1), ANS(2), ANS(3)]);

    w.proxy.onServiceDelete(services().svc.find((s) => s.metadata!.name === 'three')!);
    w.proxy.onEndpointSliceUpdate(undefined, sl('five', []));
    const rep = await w.proxy.syncNow();
    expect(rep.kind).toBe('partial');
    expect(rep.stats?.chainsDeleted).toBe(1 + 3 + 1 + 5);
    const gone = await traffic(w.client, '10.96.0.3', 80, { count: 2, perTimeoutMs: 800 });
    expect(gone.answers).toEqual({});
    const rejected = await traffic(w.client, '10.96.0.5', 80, { count: 2 });
    expect(rejected.errors).toEqual({ ECONNREFUSED: 2 });
    if (w.proxy instanceof NftablesProxy) expect(w.proxy.transactionCounts.nft).toBe(0);
  });

  it('UDP: reaches the endpoint; after an endpoint change the stale conntrack entry is removed', async () => {
    const first = await traffic(w.client, '10.96.0.53', 53, { proto: 'udp', count: 3, bindPort: 40053 });
    expect(first.answers).toEqual({ '10.244.1.14:5353': 3 });
    // The old endpoint still answers (its process lives on): without conntrack cleanup the same 5-tuple
    // would keep reaching it.
    w.proxy.onEndpointSliceUpdate(undefined, sl('dns', eps([5]), 5353, 'UDP'));
    expect((await w.proxy.syncNow()).kind).toBe('partial');
    const after = await traffic(w.client, '10.96.0.53', 53, { proto: 'udp', count: 3, bindPort: 40053 });
    expect(after.answers).toEqual({ '10.244.1.15:5353': 3 });
    expect(w.proxy.metrics().conntrackEntriesDeletedTotal).toBeGreaterThan(0);
  });

  it('detects flushed tables through the canary and restores the rules with a full sync', async () => {
    if (nftables) await w.node.exec(['nft', 'flush', 'ruleset']);
    else await w.node.exec(['sh', '-c', `for t in nat filter mangle; do iptables-${backend} -t $t -F; iptables-${backend} -t $t -X; done`]);
    const broken = await traffic(w.client, '10.96.0.2', 80, { count: 1, perTimeoutMs: 800 });
    expect(broken.answers).toEqual({});
    await w.proxy.checkCanaryNow();
    const r = await w.proxy.syncNow();
    expect(r.kind).toBe('full');
    const ok = await traffic(w.client, '10.96.0.2', 80, { count: 10 });
    expect(ok.errors).toEqual({});
    expect(w.proxy.metrics().canaryFullSyncsTotal).toBe(1);
    // And a full sync right after writes nothing.
    (w.proxy as unknown as { needFullSync: boolean }).needFullSync = true;
    const again = await w.proxy.syncNow();
    // iptables: nothing at all. nftables: nothing either, and no listing: the ruleset generation is the one berth's
    // own last commit produced, so the table is what berth committed.
    if (nftables) expect(again).toMatchObject({ kind: 'full', restoreBytes: 0, stats: { chainsWritten: 0, elementsAdded: 0, elementsDeleted: 0, chainsDeleted: 0 } });
    else expect(again).toMatchObject({ kind: 'full', restoreBytes: 0 });
    expect(w.proxy.healthy()).toBe(true);
  });
});
