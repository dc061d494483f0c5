// Fixtures for the nftables-mode unit tests: an NftExecutor that records transactions, and a proxy wired to it.
import { silentLogger } from '../../src/lib/index.ts';
import { resolveProxyConfig } from '../../src/proxy/index.ts';
import type { NftExecutor } from '../../src/proxy/nftables/executor.ts';
import { NftablesProxy } from '../../src/proxy/nftables/proxier.ts';

/** Records every transaction; the kernel starts empty. */
export class RecordingNft implements NftExecutor {
  readonly applied: string[] = [];
  listing = '';
  fail: ((text: string) => boolean) | undefined;
  apply(text: string): Promise<void> {
    if (this.fail?.(text)) return Promise.reject(new Error('rejected by test'));
    this.applied.push(text);
    return Promise.resolve();
  }
  listTable(): Promise<string> {
    return Promise.resolve(this.listing);
  }
  canaryPresent(): Promise<boolean> {
    return Promise.resolve(true);
  }
  version(): Promise<string> {
    return Promise.resolve('nftables v1.0.6');
  }
  get last(): string {
    return this.applied[this.applied.length - 1] ?? '';
  }
}

export function newProxy(o: { nodeIP?: string; clusterCIDR?: string; nodePortAddresses?: string[]; masqueradeAll?: boolean } = {}) {
  const nft = new RecordingNft();
  const proxy = new NftablesProxy({
    config: resolveProxyConfig({
      minSyncPeriodMs: 0,
      clusterCIDR: o.clusterCIDR ?? '10.0.0.0/8',
      nodePortAddresses: o.nodePortAddresses ?? [],
      masqueradeAll: o.masqueradeAll ?? false,
    }),
    node: { name: 'test-node', ip: o.nodeIP ?? '192.168.0.2', ips: [o.nodeIP ?? '192.168.0.2'] },
    executor: nft,
    log: silentLogger,
  });
  return { nft, proxy };
}

