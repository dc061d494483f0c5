// The ConfigMap/Secret cache expires on the injected clock (issue #9 defect 4), not on Date.now().
import { describe, expect, it } from 'vitest';
import { ApiConfigData } from '../../src/kubelet/sources/config-data.ts';
import { FakeClock } from '../../src/lib/index.ts';

function fakeApi(): { gets: string[]; api: ConstructorParameters<typeof ApiConfigData>[0] } {
  const gets: string[] = [];
  const api = {
    get: async <T,>(_ref: unknown, name: string): Promise<T> => {
      gets.push(name);
      return { data: { k: `v${gets.length}` } } as T;
    },
  } as unknown as ConstructorParameters<typeof ApiConfigData>[0];
  return { gets, api };
}

describe('ApiConfigData cache on an injected clock', () => {
  it('serves from cache within the TTL and refetches once the fake clock passes it', async () => {
    const { gets, api } = fakeApi();
    const clock = new FakeClock();
    const cd = new ApiConfigData(api, 10_000, clock);
    expect(await cd.configMap('ns', 'cm')).toEqual({ k: 'v1' });
    clock.advance(9_999);
    expect(await cd.configMap('ns', 'cm')).toEqual({ k: 'v1' });
    expect(gets).toHaveLength(1);
    clock.advance(1);
    expect(await cd.configMap('ns', 'cm')).toEqual({ k: 'v2' });
    expect(gets).toHaveLength(2);
  });

  it('a fake clock in the past does not keep entries forever', async () => {
    const { gets, api } = fakeApi();
    const clock = new FakeClock(1_000);
    const cd = new ApiConfigData(api, 10_000, clock);
    await cd.configMap('ns', 'cm');
    clock.advance(20_000);
    await cd.configMap('ns', 'cm');
    expect(gets).toHaveLength(2);
  });
});
