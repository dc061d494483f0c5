// The nftables mode's netlink path against the real kernel and a real nft, in throwaway namespaces:
//   - berth's encoding of every rule form equals the bytecode a live `nft --debug=netlink` generates for the text;
//   - a table written through netlink lists (`nft list table`) exactly as the text builder expects: a second proxy
//     writing through nft, reconciling against that listing, finds nothing to change;
//   - partial syncs go through netlink only, and stale chains are flushed, then deleted a sync later;
//   - the generation check: a full resync with nothing changed lists nothing and writes nothing; a foreign commit
//     makes the next one list the table;
//   - a rejected batch names the statement that failed; a concrete anonymous-set name already in the table is
//     refused (EEXIST) and the client moves on to fresh names; without python3 the proxy writes through nft, saying so once.
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/lib/index.ts';
import { CommandNftExecutor, NftablesProxy, NftError, resolveProxyConfig } from '../../src/proxy/index.ts';
import { AnonSetNameClashError } from '../../src/proxy/nftables/errors.ts';
import { NftNetlink } from '../../src/proxy/nftables/netlink/client.ts';
import { NFT_MSG_NEWSET, NftBatch, nftType } from '../../src/proxy/nftables/netlink/encode.ts';
import { messageAttrs, splitMessages } from '../../src/proxy/nftables/netlink/nlmsg.ts';
import { NetlinkTransport } from '../../src/proxy/nftables/netlink/transport.ts';
import { Netns, destroyAll } from './helpers/netns.ts';
import { service, slice } from '../unit/proxy-fixtures.ts';
import { NFT_BYTECODE, ruleBytecode } from '../unit/proxy-nft-bytecode-fixtures.ts';

const config = resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.244.0.0/16' });
const node = { name: 'node-a', ip: '10.77.0.1', ips: ['10.77.0.1'] };

/** Services covering every rule form: ClusterIP, NodePort + eTP Local, affinity, LB with source ranges, none ready. */
function feed(proxy: NftablesProxy): void {
  const S = service;
  proxy.onServiceAdd(S('default', 'web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
  proxy.onServiceAdd(S('default', 'local', { type: 'NodePort', clusterIP: '10.96.0.11', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30081 }] }));
  proxy.onServiceAdd(S('default', 'sticky', { clusterIP: '10.96.0.12', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80 }] }));
  proxy.onServiceAdd(
    S(
      'default',
      'lb',
      { type: 'LoadBalancer', clusterIP: '10.96.0.13', loadBalancerSourceRanges: ['10.77.0.2/32', '192.168.0.0/23'], externalIPs: ['10.99.0.11'], ports: [{ name: 'http', port: 80, nodePort: 30082 }] },
      { status: { loadBalancer: { ingress: [{ ip: '10.99.0.10' }] } } },
    ),
  );
  proxy.onServiceAdd(S('default', 'dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
  proxy.onServiceAdd(S('default', 'empty', { clusterIP: '10.96.0.14', ports: [{ name: 'http', port: 80 }] }));
  const eps = (name: string, ips: string[], port = 8080, proto = 'TCP', portName = 'http') =>
    slice('default', name, `${name}-1`, [{ name: portName, port, protocol: proto }], ips.map((ip, i) => ({ ip, node: i === 0 ? 'node-a' : 'node-b' })));
  proxy.onEndpointSliceAdd(eps('web', ['10.244.1.2', '10.244.1.3']));
  proxy.onEndpointSliceAdd(eps('local', ['10.244.1.4', '10.244.2.5']));
  proxy.onEndpointSliceAdd(eps('sticky', ['10.244.1.6', '10.244.2.7', '10.244.2.8']));
  proxy.onEndpointSliceAdd(eps('lb', ['10.244.1.9']));
  proxy.onEndpointSliceAdd(eps('dns', ['10.244.1.10'], 5353, 'UDP', 'dns'));
  proxy.onServicesSynced();
  proxy.onEndpointSlicesSynced();
}

/** Lets the sync loop's own first run (started by start()) pass, so the test's syncNow calls do what they say. */
async function settled(proxy: NftablesProxy): Promise<void> {
  expect((await proxy.syncNow()).kind).toBe('noop');
}

function logCapture(): { log: ReturnType<typeof createLogger>; lines: () => string[] } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString('utf8')));
  return { log: createLogger({ format: 'text', destination: out, level: 'debug' }), lines: () => text.split('\n').filter(Boolean) };
}

describe('nftables mode through netlink (real kernel, real nft)', () => {
  afterAll(destroyAll);

  it('encodes every rule form into the bytecode a live nft generates for the same text', async () => {
    const ns = await Netns.create('nlenc');
    const head = [
      'add table ip kube-proxy',
      ...['c1', 'fw', 'mark-for-masquerade', 'endpoint-A', 'endpoint-B'].map((c) => `add chain ip kube-proxy ${c}`),
      'add set ip kube-proxy affinity-A { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }',
    ];
    const input = [...head, ...NFT_BYTECODE.map(([rule]) => `add rule ip kube-proxy c1 ${rule}`)].join('\n') + '\n';
    const r = await ns.exec(['sh', '-c', `nft --debug=netlink -f - <<'EOF'\n${input}EOF`]);
    expect(r.code, r.stderr).toBe(0);
    // One block per rule: "ip kube-proxy c1" then "  [ … ]" lines (anonymous sets print their own blocks first).
    const blocks: string[][] = [];
    for (const line of r.stdout.split('\n')) {
      if (line === 'ip kube-proxy c1') blocks.push([]);
      else if (line.startsWith('  [ ') && blocks.length > 0) blocks[blocks.length - 1]!.push(line.trim());
    }
    expect(blocks).toHaveLength(NFT_BYTECODE.length);
    NFT_BYTECODE.forEach(([rule], i) => expect(ruleBytecode(rule), rule).toEqual(blocks[i]));
  });

  it('a table written through netlink lists exactly as the text builder expects; partial syncs stay on netlink', async () => {
    const ns = await Netns.create('nlpx');
    const proxy = new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name }), log: silentLogger });
    feed(proxy);
    await proxy.start();
    try {
      const first = await proxy.syncNow();
      expect(first.kind).toBe('full');
      await settled(proxy);
      expect(proxy.transactionCounts).toMatchObject({ nft: 0, setup: 1 });
      expect(proxy.transactionCounts.netlink).toBeGreaterThan(0);

      // A proxy writing through nft, reconciling against `nft list table`, finds every chain, rule, element and
      // set as its own text builder would have written them.
      const viaText = new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name, transport: 'nft' }), log: silentLogger });
      feed(viaText);
      const check = await viaText.syncNow();
      expect(check.kind).toBe('full');
      expect(check.stats).toMatchObject({ chainsWritten: 0, rulesWritten: 0, elementsAdded: 0, elementsDeleted: 0, chainsDeleted: 0, setsAdded: 0, setsDeleted: 0 });
      const listing = (await ns.exec(['nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout;
      expect(listing).toContain('numgen random mod 3 vmap {');
      expect(listing).toContain('ip saddr != { 10.77.0.2, 192.168.0.0/23 } drop');
      expect(listing).toContain('update @affinity-');
      // The anonymous sets carry berth's concrete names in the kernel, yet list inline like nft's own.
      expect(listing).not.toMatch(/__(map|set)/);

      // Partial syncs: a scaled Service and a deleted one, through netlink only.
      proxy.onEndpointSliceUpdate(undefined, slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }, { ip: '10.244.1.20' }]));
      proxy.onServiceDelete(service('default', 'dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
      const partial = await proxy.syncNow();
      expect(partial).toMatchObject({ kind: 'partial', stats: { chainsWritten: 2, chainsDeleted: 3 } });
      expect(proxy.transactionCounts.nft).toBe(0);
      const after = (await ns.exec(['nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout;
      expect(after).toContain('dnat to 10.244.1.20:8080');
      expect(after).not.toContain('dnat to 10.244.1.3:8080');
      expect(after).not.toContain('10.96.0.53 . udp . 53');
      // The stale chains are flushed now and deleted by a later sync.
      expect(after).toMatch(/chain service-[A-Z2-7]{8}-default\/dns\/udp\/dns \{\s*\}/);
      await new Promise((r) => setTimeout(r, 1100));
      proxy.onEndpointSliceUpdate(undefined, slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }]));
      expect((await proxy.syncNow()).stats).toMatchObject({ staleChainsDeleted: 3 });
      expect((await ns.exec(['nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout).not.toContain('default/dns/udp');

      // The text builder still agrees after the partial syncs.
      const viaText2 = new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name, transport: 'nft' }), log: silentLogger });
      feed(viaText2);
      viaText2.onEndpointSliceUpdate(undefined, slice('default', 'web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }]));
      viaText2.onServiceDelete(service('default', 'dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
      expect((await viaText2.syncNow()).stats).toMatchObject({ chainsWritten: 0, elementsAdded: 0, elementsDeleted: 0, chainsDeleted: 0 });
    } finally {
      await proxy.stop();
    }
  });

  it('a full resync trusts the table while the generation is its own, and lists it after a foreign commit', async () => {
    const ns = await Netns.create('nlgen');
    const proxy = new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name }), log: silentLogger });
    feed(proxy);
    await proxy.start();
    try {
      await proxy.syncNow();
      expect(proxy.fullSyncBasis).toBe('listing');
      await settled(proxy);
      proxy.requestFullSync();
      const quiet = await proxy.syncNow();
      expect(quiet).toMatchObject({ kind: 'full', restoreBytes: 0 });
      expect(proxy.fullSyncBasis).toBe('generation');
      // Someone else commits (any table): berth can no longer know its table is untouched.
      await ns.exec(['nft', 'add', 'table', 'inet', 'foreign']);
      await ns.exec(['nft', 'delete', 'element', 'ip', 'kube-proxy', 'cluster-ips', '{ 10.96.0.10 }']);
      proxy.requestFullSync();
      const repaired = await proxy.syncNow();
      expect(proxy.fullSyncBasis).toBe('listing');
      expect(repaired.stats).toMatchObject({ elementsAdded: 1, chainsWritten: 0 });
      expect((await ns.exec(['nft', 'list', 'set', 'ip', 'kube-proxy', 'cluster-ips'])).stdout).toContain('10.96.0.10');
      // Its own commits chain on again from the listing.
      proxy.requestFullSync();
      await proxy.syncNow();
      expect(proxy.fullSyncBasis).toBe('generation');
    } finally {
      await proxy.stop();
    }
  });

  it('maps a rejected message back to its statement; nothing of the batch is applied', async () => {
    const ns = await Netns.create('nlerr');
    await ns.exec(['nft', 'add table ip kube-proxy; add chain ip kube-proxy a']);
    const transport = new NetlinkTransport({ netns: ns.name });
    const nl = new NftNetlink(transport);
    try {
      const b = nl.newBatch();
      b.addChain('b');
      b.addRule('a', 'jump b');
      b.addRule('missing', 'drop');
      const err = await nl.commit(b.finish()!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NftError);
      expect((err as NftError).context).toEqual(['ENOENT: add rule ip kube-proxy missing drop']);
      expect((await ns.exec(['nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout).not.toContain('chain b');
      expect(await nl.chainExists('a')).toBe(true);
      expect(await nl.chainExists('b')).toBe(false);
    } finally {
      transport.close();
    }
  });

  it('a concrete anonymous-set name already in the table fails with EEXIST; the client moves on to fresh names', async () => {
    const ns = await Netns.create('nlclash');
    await ns.exec(['nft', 'add table ip kube-proxy; add chain ip kube-proxy a; add chain ip kube-proxy b; add chain ip kube-proxy svc']);
    const transport = new NetlinkTransport({ netns: ns.name });
    const nl = new NftNetlink(transport, { concreteAnonNames: true });
    const vmap = 'numgen random mod 2 vmap { 0 : goto a, 1 : goto b }';
    try {
      const b1 = nl.newBatch();
      b1.addRule('svc', vmap);
      const first = b1.finish()!;
      await nl.commit(first);
      // A writer that reuses those names (same prefix and counter: a clock set back) collides with the set in place.
      const name = splitMessages(first.bytes).find((m) => m.type === nftType(NFT_MSG_NEWSET))!;
      const taken = messageAttrs(name).get(2)!.toString('latin1').replace(/\0$/, '');
      const m = /^__map(.+x)(\d+)$/.exec(taken)!;
      const forged = new NftBatch(first.nextSeq, { prefix: m[1]!, next: Number(m[2]) });
      forged.addRule('svc', vmap);
      const err = await nl.commit(forged.finish()!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AnonSetNameClashError);
      expect((err as NftError).context[0]).toMatch(/^EEXIST: add rule ip kube-proxy svc numgen/);
      // The client's next batch uses fresh names and goes through; both rules list inline.
      const b2 = nl.newBatch();
      b2.addRule('svc', vmap);
      await nl.commit(b2.finish()!);
      const listing = (await ns.exec(['nft', 'list', 'chain', 'ip', 'kube-proxy', 'svc'])).stdout;
      expect(listing.match(/numgen random mod 2 vmap \{ 0 : goto a, 1 : goto b \}/g)).toHaveLength(2);
    } finally {
      transport.close();
    }
  });

  it('without python3 the proxy writes through nft and says so once', async () => {
    const ns = await Netns.create('nlnopy');
    const { log, lines } = logCapture();
    const proxy = new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name, python: '/nonexistent/python3' }), log });
    feed(proxy);
    await proxy.start();
    try {
      expect((await proxy.syncNow()).kind).toBe('full');
      await settled(proxy);
      proxy.onServiceDelete(service('default', 'empty', { clusterIP: '10.96.0.14', ports: [{ name: 'http', port: 80 }] }));
      expect((await proxy.syncNow()).kind).toBe('partial');
      expect(proxy.transactionCounts).toMatchObject({ netlink: 0, setup: 0 });
      expect(proxy.transactionCounts.nft).toBe(2);
      expect(lines().filter((l) => l.includes('nftables netlink path unavailable'))).toHaveLength(1);
      expect((await ns.exec(['nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout).toContain('10.96.0.10 . tcp . 80');
    } finally {
      await proxy.stop();
    }
  });
});
