// Issue #9 defect 2: Secret/ConfigMap data kept as bytes, and decoded Secret plaintext cached only for
// the pods that use it (upstream's cache-based secret manager: RegisterPod/UnregisterPod).
import { describe, expect, it } from 'vitest';
import { ApiConfigData, decodeConfigData } from '../../src/kubelet/sources/config-data.ts';
import { FakeClock } from '../../src/lib/index.ts';

const BIN = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x80]);

function fakeApi(): { gets: string[]; api: ConstructorParameters<typeof ApiConfigData>[0] } {
  const gets: string[] = [];
  const api = {
    get: async <T,>(ref: { resource?: string } | unknown, name: string): Promise<T> => {
      gets.push(name);
      const resource = (ref as { resource?: string }).resource ?? '';
      if (resource.includes('secret') || name.startsWith('s')) return { data: { bin: BIN.toString('base64') } } as T;
      return { data: { k: 'v' }, binaryData: { b: BIN.toString('base64') } } as T;
    },
  } as unknown as ConstructorParameters<typeof ApiConfigData>[0];
  return { gets, api };
}

describe('decodeConfigData', () => {
  it('Secret data and ConfigMap binaryData become the exact bytes; ConfigMap data stays text', () => {
    const s = decodeConfigData('secrets', { data: { bin: BIN.toString('base64') } });
    expect(Buffer.isBuffer(s.bin) && s.bin.equals(BIN)).toBe(true);
    const cm = decodeConfigData('configmaps', { data: { k: 'v' }, binaryData: { b: BIN.toString('base64') } });
    expect(cm.k).toBe('v');
    expect(Buffer.from(cm.b as Buffer).equals(BIN)).toBe(true);
  });
});

describe('ApiConfigData: secret plaintext bounded to the pods that use it', () => {
  it('a secret is cached while a pod uses it and dropped when the last user is released', async () => {
    const { gets, api } = fakeApi();
    const cd = new ApiConfigData(api, 60_000, new FakeClock());
    await cd.secret('ns', 's1', 'pod-a');
    await cd.secret('ns', 's1', 'pod-b');
    expect(gets).toEqual(['s1']);
    expect(cd.size).toBe(1);
    cd.releasePod('pod-a');
    expect(cd.size).toBe(1);
    cd.releasePod('pod-b');
    expect(cd.size).toBe(0);
    await cd.secret('ns', 's1', 'pod-c');
    expect(gets).toEqual(['s1', 's1']);
  });

  it('a secret fetched for no pod is never kept', async () => {
    const { gets, api } = fakeApi();
    const cd = new ApiConfigData(api, 60_000, new FakeClock());
    await cd.secret('ns', 's1');
    await cd.secret('ns', 's1');
    expect(gets).toHaveLength(2);
    expect(cd.size).toBe(0);
  });

  it('entries expire on the TTL even while a pod still uses them (no plaintext kept for ever)', async () => {
    const { gets, api } = fakeApi();
    const clock = new FakeClock();
    const cd = new ApiConfigData(api, 10_000, clock);
    await cd.secret('ns', 's1', 'pod-a');
    clock.advance(10_000);
    await cd.configMap('ns', 'cm', 'pod-a');
    expect(cd.size).toBe(1); // the expired secret was swept; only the configMap remains
    expect(gets).toEqual(['s1', 'cm']);
  });
});
