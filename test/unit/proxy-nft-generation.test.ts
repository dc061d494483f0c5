// The nftables proxy trusts its in-memory copy of the table only while the kernel's ruleset generation proves
// nothing else committed since it last listed the table: every netlink commit must echo the generation right after
// the previous one, and an nft write must move it by exactly one. Then a full sync lists nothing and writes only
// what differs; any gap (a foreign commit, a skipped generation, a failed write) makes the next full sync list.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import { NftError, resolveProxyConfig } from '../../src/proxy/index.ts';
import { AnonSetNameClashError } from '../../src/proxy/nftables/errors.ts';
import { NftNetlink } from '../../src/proxy/nftables/netlink/client.ts';
import type { EncodedBatch } from '../../src/proxy/nftables/netlink/encode.ts';
import { NetlinkTransport, NetlinkUnavailableError } from '../../src/proxy/nftables/netlink/transport.ts';
import { NftablesProxy } from '../../src/proxy/nftables/proxier.ts';
import { service, slice } from './proxy-fixtures.ts';
import { RecordingNft } from './proxy-nft-fixtures.ts';

/** A kernel that only counts generations: each commit (berth's or, via foreign(), anyone's) bumps it. */
class FakeNetlink extends NftNetlink {
  gen = 100;
  commits: EncodedBatch[] = [];
  /** Generations the next commit skips (another writer committing in between). */
  skipNext = 0;
  reject = false;
  /** Commits still to refuse as if an anonymous-set name were taken; the refused batches. */
  clash = 0;
  clashed: EncodedBatch[] = [];
  gone = false;
  constructor() {
    super(new NetlinkTransport());
  }
  override commit(batch: EncodedBatch): Promise<{ generation: number | undefined }> {
    if (this.gone) return Promise.reject(new NetlinkUnavailableError('python3 not found'));
    if (this.reject) return Promise.reject(new NftError('rejected by test', { line: undefined, context: ['x'], stderr: '' }));
    if (this.clash > 0) {
      this.clash--;
      this.clashed.push(batch);
      return Promise.reject(new AnonSetNameClashError('name taken', { line: undefined, context: ['EEXIST: add rule …'], stderr: '' }));
    }
    this.commits.push(batch);
    this.gen += 1 + this.skipNext;
    this.skipNext = 0;
    return Promise.resolve({ generation: this.gen });
  }
  override generation(): Promise<number> {
    return Promise.resolve(this.gen);
  }
  override chainExists(): Promise<boolean> {
    return Promise.resolve(true);
  }
  foreign(): void {
    this.gen++;
  }
}

class NetlinkNft extends RecordingNft {
  readonly nl = new FakeNetlink();
  lists = 0;
  override apply(text: string): Promise<void> {
    this.nl.foreign(); // an nft write is a commit too
    return super.apply(text);
  }
  override listTable(): Promise<string> {
    this.lists++;
    return super.listTable();
  }
  netlink(): Promise<NftNetlink | undefined> {
    return Promise.resolve(this.nl);
  }
}

const svc = (n: number) => service('ns', `svc${n}`, { clusterIP: `172.30.0.${n}`, ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] });
const eps = (n: number, ips: string[]) => slice('ns', `svc${n}`, `svc${n}-1`, [{ name: 'p80', port: 80 }], ips.map((ip) => ({ ip })));

async function started() {
  const nft = new NetlinkNft();
  const proxy = new NftablesProxy({
    config: resolveProxyConfig({ minSyncPeriodMs: 0, clusterCIDR: '10.0.0.0/8' }),
    node: { name: 'n', ip: '192.168.0.2' },
    executor: nft,
    log: silentLogger,
  });
  proxy.onServiceAdd(svc(1));
  proxy.onEndpointSliceAdd(eps(1, ['10.1.0.1', '10.1.0.2']));
  proxy.onServicesSynced();
  proxy.onEndpointSlicesSynced();
  await proxy.start();
  expect((await proxy.syncNow()).kind).toBe('full');
  expect((await proxy.syncNow()).kind).toBe('noop'); // the loop's own first run
  return { nft, proxy };
}

async function fullSync(proxy: NftablesProxy) {
  proxy.requestFullSync();
  const r = await proxy.syncNow();
  expect(r.kind).toBe('full');
  return r;
}

describe('nftables proxy: full syncs trusted by the ruleset generation', () => {
  it('after its own commits only, a full sync lists nothing and writes nothing', async () => {
    const { nft, proxy } = await started();
    expect(nft.lists).toBe(1);
    expect(proxy.transactionCounts).toEqual({ netlink: 1, nft: 0, setup: 1 });
    proxy.onEndpointSliceUpdate(undefined, eps(1, ['10.1.0.1', '10.1.0.3']));
    expect((await proxy.syncNow()).kind).toBe('partial');
    const r = await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('generation');
    expect(r.restoreBytes).toBe(0);
    expect(nft.lists).toBe(1);
  });

  it('a change pending at a trusted full sync is written, as a partial sync would', async () => {
    const { nft, proxy } = await started();
    proxy.onServiceAdd(svc(2));
    proxy.onEndpointSliceAdd(eps(2, ['10.2.0.1']));
    const r = await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('generation');
    expect(r.stats).toMatchObject({ chainsWritten: 2, elementsAdded: 2 });
    expect(nft.nl.commits).toHaveLength(2);
    expect(nft.lists).toBe(1);
  });

  it('a foreign commit makes the next full sync list the table; trust resumes after it', async () => {
    const { nft, proxy } = await started();
    nft.nl.foreign();
    await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('listing');
    expect(nft.lists).toBe(2);
    await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('generation');
  });

  it('a commit that does not produce the next generation (someone committed in between) breaks the trust', async () => {
    const { nft, proxy } = await started();
    nft.nl.skipNext = 1;
    proxy.onEndpointSliceUpdate(undefined, eps(1, ['10.1.0.9']));
    expect((await proxy.syncNow()).kind).toBe('partial');
    await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('listing');
  });

  it('an nft write moved the generation by more than one: not trusted', async () => {
    const { nft, proxy } = await started();
    const apply = nft.apply.bind(nft);
    nft.apply = (text: string) => {
      nft.nl.foreign();
      return apply(text);
    };
    // A node change forces a full sync with the setup written by nft (context changed: listing, then setup).
    proxy.onNodeUpdate({ metadata: { name: 'n', labels: { zone: 'b' } }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } });
    await proxy.syncNow();
    await fullSync(proxy);
    expect(proxy.fullSyncBasis).toBe('listing');
  });

  it('a rejected netlink batch falls back to a listed full sync and keeps the change until it lands', async () => {
    const { nft, proxy } = await started();
    nft.nl.reject = true;
    proxy.onServiceAdd(svc(3));
    await expect(proxy.syncNow()).rejects.toThrow('rejected by test');
    nft.nl.reject = false;
    const r = await proxy.syncNow();
    expect(r.kind).toBe('full');
    expect(proxy.fullSyncBasis).toBe('listing');
    expect(r.stats?.elementsAdded).toBeGreaterThan(0);
  });

  it('an anonymous-set name taken in the kernel: the same steps are encoded again and committed once more', async () => {
    const { nft, proxy } = await started();
    const before = nft.nl.commits.length;
    nft.nl.clash = 1;
    proxy.onServiceAdd(svc(5));
    proxy.onEndpointSliceAdd(eps(5, ['10.1.0.5', '10.1.0.6']));
    const r = await proxy.syncNow();
    expect(r).toMatchObject({ kind: 'partial' });
    expect(r.fellBack).toBeFalsy();
    expect(nft.nl.clashed).toHaveLength(1);
    expect(nft.nl.commits.slice(before)).toHaveLength(1);
    const retried = nft.nl.commits[before]!;
    expect(retried).not.toBe(nft.nl.clashed[0]);
    expect(retried.stats).toEqual(nft.nl.clashed[0]!.stats);
    expect(proxy.transactionCounts.nft).toBe(0);
    // A second clash in a row is an error like any other: the sync fails over to a listed full sync.
    nft.nl.clash = 2;
    proxy.onEndpointSliceUpdate(undefined, eps(5, ['10.1.0.7']));
    expect(await proxy.syncNow()).toMatchObject({ fellBack: true });
  });

  it('when the helper can no longer be started, the proxy writes with nft from the fallback full sync on', async () => {
    const { nft, proxy } = await started();
    nft.nl.gone = true;
    proxy.onServiceAdd(svc(4));
    // The partial sync fails, and the full sync it falls back to in the same run already writes with nft.
    const r = await proxy.syncNow();
    expect(r).toMatchObject({ kind: 'full', fellBack: true });
    expect(proxy.transactionCounts.nft).toBeGreaterThan(0);
    expect(nft.last).toContain('172.30.0.4');
  });
});
