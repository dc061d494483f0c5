import { describe, expect, it } from 'vitest';
import { ChainNamer, hash16 } from '../../src/proxy/chain-names.ts';
import { normalizeService } from '../../src/proxy/normalize.ts';
import { type BuildContext, buildGlobalRules, buildServicePortRules, type ServicePortRules } from '../../src/proxy/rules.ts';
import { computeFullSyncPlan, computePartialSyncPlan, multisetDiff } from '../../src/proxy/plan.ts';
import { parseIptablesSave } from '../../src/proxy/iptables-save.ts';
import type { EndpointInfo } from '../../src/proxy/types.ts';
import { FakeIptables, service } from './proxy-fixtures.ts';

const ctx: BuildContext = {
  namer: new ChainNamer(),
  nodeIP: '192.168.0.2',
  nodeLabels: {},
  largeClusterMode: false,
  masqueradeMark: 0x4000,
  masqueradeAll: false,
  clusterCIDR: undefined,
  localhostNodePorts: false,
  nodePortIPs: [],
  randomFully: false,
  conntrackTCPLiberal: true,
};
const global = buildGlobalRules(ctx);

function ep(ip: string): EndpointInfo {
  return { ip, port: 80, endpoint: `${ip}:80`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined };
}
function rules(name: string, clusterIP: string, eps: string[], nodePort = 0): ServicePortRules[] {
  return normalizeService(service('ns', name, { type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP, ports: [{ name: 'p', port: 80, ...(nodePort ? { nodePort } : {}) }] })).value.map(
    (p) => buildServicePortRules(p, eps.map(ep), ctx),
  );
}
const SVC = (name: string): string => `KUBE-SVC-${hash16(`ns/${name}:ptcp`)}`;
const SEP = (name: string, ip: string): string => `KUBE-SEP-${hash16(`ns/${name}:ptcp${ip}:80`)}`;

describe('computeFullSyncPlan', () => {
  it('writes everything on an empty node: chains, rules, NodePort tail last, jumps from built-in chains', () => {
    const plan = computeFullSyncPlan(rules('a', '10.96.0.1', ['10.1.0.1']), global, new Map());
    const a = SVC('a');
    const s = SEP('a', '10.1.0.1');
    expect(plan.text).toBe(
      [
        '*filter',
        ':KUBE-PROXY-CANARY - [0:0]',
        ':KUBE-FORWARD - [0:0]',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-EXTERNAL-SERVICES - [0:0]',
        ':KUBE-NODEPORTS - [0:0]',
        ':KUBE-PROXY-FIREWALL - [0:0]',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-I OUTPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-I OUTPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I INPUT 1 -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        'COMMIT',
        '*nat',
        ':KUBE-PROXY-CANARY - [0:0]',
        ':KUBE-POSTROUTING - [0:0]',
        ':KUBE-MARK-MASQ - [0:0]',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-NODEPORTS - [0:0]',
        `:${a} - [0:0]`,
        `:${s} - [0:0]`,
        '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
        '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
        '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
        `-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "ns/a:p cluster IP" -m tcp --dport 80 -j ${a}`,
        '-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        `-A ${a} -m comment --comment "ns/a:p -> 10.1.0.1:80" -j ${s}`,
        `-A ${s} -s 10.1.0.1/32 -m comment --comment "ns/a:p" -j KUBE-MARK-MASQ`,
        `-A ${s} -p tcp -m comment --comment "ns/a:p" -m tcp -j DNAT --to-destination 10.1.0.1:80`,
        '-I POSTROUTING 1 -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        'COMMIT',
        '*mangle',
        ':KUBE-PROXY-CANARY - [0:0]',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('writes nothing when the kernel already matches, and only the drift otherwise', async () => {
    const fake = new FakeIptables();
    const desired = [...rules('a', '10.96.0.1', ['10.1.0.1', '10.1.0.2']), ...rules('b', '10.96.0.2', [])];
    await fake.restore(computeFullSyncPlan(desired, global, new Map()).text);
    expect(computeFullSyncPlan(desired, global, parseIptablesSave(await fake.save())).text).toBe('');

    // Someone edits one SEP chain and deletes a rule from KUBE-SERVICES: only those are repaired.
    const sep = SEP('a', '10.1.0.2');
    fake.tables.get('nat')!.set(sep, ['-A ' + sep + ' -j ACCEPT']);
    const ks = fake.chain('nat', 'KUBE-SERVICES')!;
    ks.splice(0, 1);
    const plan = computeFullSyncPlan(desired, global, parseIptablesSave(await fake.save()));
    expect(plan.text).toBe(
      [
        '*nat',
        `:${sep} - [0:0]`,
        `-A ${sep} -s 10.1.0.2/32 -m comment --comment "ns/a:p" -j KUBE-MARK-MASQ`,
        `-A ${sep} -p tcp -m comment --comment "ns/a:p" -m tcp -j DNAT --to-destination 10.1.0.2:80`,
        `-I KUBE-SERVICES 1 -d 10.96.0.1/32 -p tcp -m comment --comment "ns/a:p cluster IP" -m tcp --dport 80 -j ${SVC('a')}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    await fake.restore(plan.text);
    expect(computeFullSyncPlan(desired, global, parseIptablesSave(await fake.save())).text).toBe('');
  });

  it('rewrites KUBE-SERVICES when the NodePort jump is no longer last, and rewrites instead of editing past the limit', async () => {
    const fake = new FakeIptables();
    const desired = rules('a', '10.96.0.1', ['10.1.0.1']);
    await fake.restore(computeFullSyncPlan(desired, global, new Map()).text);
    const ks = fake.chain('nat', 'KUBE-SERVICES')!;
    ks.reverse();
    const plan = computeFullSyncPlan(desired, global, parseIptablesSave(await fake.save()));
    expect(plan.text).toContain(':KUBE-SERVICES - [0:0]');
    await fake.restore(plan.text);
    expect(fake.chain('nat', 'KUBE-SERVICES')!.at(-1)).toContain('must be the last rule');

    const many = Array.from({ length: 20 }, (_, i) => rules(`s${i}`, `10.96.1.${i}`, ['10.1.0.1'])).flat();
    const p2 = computeFullSyncPlan(many, global, parseIptablesSave(await fake.save()), { maxIncrementalEdits: 5 });
    expect(p2.text).toContain(':KUBE-SERVICES - [0:0]');
    expect(p2.text).not.toContain('-I KUBE-SERVICES');
  });

  it('deletes stale service chains, but keeps one a foreign rule still jumps to', async () => {
    const fake = new FakeIptables();
    await fake.restore(computeFullSyncPlan([...rules('a', '10.96.0.1', ['10.1.0.1']), ...rules('b', '10.96.0.2', ['10.1.0.2'])], global, new Map()).text);
    await fake.restore(['*nat', ':FOREIGN - [0:0]', `-A FOREIGN -j ${SVC('b')}`, 'COMMIT', ''].join('\n'));
    const plan = computeFullSyncPlan([], global, parseIptablesSave(await fake.save()));
    expect(plan.text).toContain(`-X ${SVC('a')}`);
    expect(plan.text).toContain(`-X ${SEP('a', '10.1.0.1')}`);
    expect(plan.text).not.toContain(`-X ${SVC('b')}`);
    expect(plan.text).not.toContain(`-X ${SEP('b', '10.1.0.2')}`);
    expect(plan.stats.staleKept.sort()).toEqual([`nat/${SEP('b', '10.1.0.2')}`, `nat/${SVC('b')}`].sort());
    await fake.restore(plan.text);
    expect(fake.chain('nat', SVC('a'))).toBeUndefined();
  });
});

describe('computePartialSyncPlan', () => {
  it('writes only the changed Service: new chains, -I into shared chains, nothing else', () => {
    const plan = computePartialSyncPlan([{ prev: [], next: rules('new', '10.96.0.9', ['10.1.0.9']) }]);
    const s = SVC('new');
    const e = SEP('new', '10.1.0.9');
    expect(plan.text).toBe(
      [
        '*nat',
        `:${s} - [0:0]`,
        `:${e} - [0:0]`,
        `-A ${s} -m comment --comment "ns/new:p -> 10.1.0.9:80" -j ${e}`,
        `-A ${e} -s 10.1.0.9/32 -m comment --comment "ns/new:p" -j KUBE-MARK-MASQ`,
        `-A ${e} -p tcp -m comment --comment "ns/new:p" -m tcp -j DNAT --to-destination 10.1.0.9:80`,
        `-I KUBE-SERVICES 1 -d 10.96.0.9/32 -p tcp -m comment --comment "ns/new:p cluster IP" -m tcp --dport 80 -j ${s}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('an endpoint change rewrites the SVC chain and the new SEP, deletes the old SEP, leaves unchanged SEPs alone', () => {
    const prev = rules('a', '10.96.0.1', ['10.1.0.1', '10.1.0.2']);
    const next = rules('a', '10.96.0.1', ['10.1.0.1', '10.1.0.3']);
    const plan = computePartialSyncPlan([{ prev, next }]);
    const lines = plan.text.split('\n');
    expect(lines).toContain(`:${SVC('a')} - [0:0]`);
    expect(lines).toContain(`:${SEP('a', '10.1.0.3')} - [0:0]`);
    expect(lines).toContain(`-X ${SEP('a', '10.1.0.2')}`);
    expect(plan.text).not.toContain(`:${SEP('a', '10.1.0.1')}`);
    expect(plan.text).not.toContain(`-A ${SEP('a', '10.1.0.1')}`);
    expect(plan.text).not.toContain('KUBE-SERVICES');
    expect(plan.text).not.toContain('*filter');
    expect(lines.at(-2)).toBe('COMMIT');
    expect(lines.indexOf(`-X ${SEP('a', '10.1.0.2')}`)).toBeGreaterThan(lines.findIndex((l) => l.startsWith(`-A ${SVC('a')}`)));
  });

  it('losing all endpoints swaps the DNAT for a REJECT and deletes the chains', () => {
    const prev = rules('a', '10.96.0.1', ['10.1.0.1']);
    const next = rules('a', '10.96.0.1', []);
    const plan = computePartialSyncPlan([{ prev, next }]);
    expect(plan.text).toBe(
      [
        '*filter',
        '-I KUBE-SERVICES 1 -d 10.96.0.1/32 -p tcp -m comment --comment "ns/a:p has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        'COMMIT',
        '*nat',
        `:${SVC('a')} - [0:0]`,
        `:${SEP('a', '10.1.0.1')} - [0:0]`,
        `-D KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "ns/a:p cluster IP" -m tcp --dport 80 -j ${SVC('a')}`,
        `-X ${SVC('a')}`,
        `-X ${SEP('a', '10.1.0.1')}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('applies on top of a full sync to the same state a full sync would produce', async () => {
    const fake = new FakeIptables();
    const before = [...rules('a', '10.96.0.1', ['10.1.0.1', '10.1.0.2'], 30001), ...rules('b', '10.96.0.2', ['10.1.0.5'])];
    await fake.restore(computeFullSyncPlan(before, global, new Map()).text);
    const a2 = rules('a', '10.96.0.1', ['10.1.0.2', '10.1.0.3'], 30002);
    const c = rules('c', '10.96.0.3', []);
    await fake.restore(
      computePartialSyncPlan([
        { prev: before.slice(0, 1), next: a2 },
        { prev: before.slice(1), next: [] },
        { prev: [], next: c },
      ]).text,
    );
    expect(computeFullSyncPlan([...a2, ...c], global, parseIptablesSave(await fake.save())).text).toBe('');
  });

  it('is empty when nothing changed', () => {
    const r = rules('a', '10.96.0.1', ['10.1.0.1']);
    expect(computePartialSyncPlan([{ prev: r, next: rules('a', '10.96.0.1', ['10.1.0.1']) }]).text).toBe('');
  });
});

describe('multisetDiff', () => {
  it('counts duplicates', () => {
    expect(multisetDiff(['a', 'a', 'b'], ['a', 'c'])).toEqual({ removed: ['a', 'b'], added: ['c'] });
  });
});
