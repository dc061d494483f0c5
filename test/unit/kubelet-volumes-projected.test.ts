// Issue #12 item 1: projected volume payloads as pkg/volume/projected collectData: secret, configMap,
// downwardAPI and serviceAccountToken sources merged, items and modes, optional sources, errors aggregated.
import { describe, expect, it } from 'vitest';
import type { Pod, ProjectedVolumeSource } from 'kubernetes-types/core/v1';
import { projectedPayload, type TokenSource } from '../../src/kubelet/volumes/projected.ts';
import type { ConfigDataSource } from '../../src/kubelet/runtime/env.ts';
import { NotFoundError } from '../../src/lib/index.ts';

const pod: Pod = { metadata: { name: 'web', namespace: 'team', uid: 'u-1' }, spec: { serviceAccountName: 'builder', containers: [] } };
const BIN = Buffer.from([0xff, 0x00, 0x80]);
const data: ConfigDataSource = {
  configMap: async (_ns, name) => {
    if (name === 'kube-root-ca.crt') return { 'ca.crt': '-----BEGIN CERTIFICATE-----\n' };
    throw new NotFoundError(`configmap "${name}" not found`);
  },
  secret: async (_ns, name) => {
    if (name === 'creds') return { bin: BIN, user: 'admin' };
    throw new NotFoundError(`secret "${name}" not found`);
  },
};
const asks: unknown[] = [];
const tokens: TokenSource = {
  getToken: async (p, opts) => {
    asks.push({ pod: p.metadata?.name, ...opts });
    return 'tok.en.jwt';
  },
};
const text = (m: Map<string, { data: Buffer; mode: number }>): Record<string, [string, string]> =>
  Object.fromEntries([...m].map(([k, v]) => [k, [v.data.toString('latin1'), v.mode.toString(8)]]));

describe('projectedPayload', () => {
  it('the kube-api-access shape: token, ca.crt and namespace, with the default mode 0644', async () => {
    asks.length = 0;
    const src: ProjectedVolumeSource = {
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    };
    expect(text(await projectedPayload(pod, src, { data, tokens }))).toEqual({
      token: ['tok.en.jwt', '644'],
      'ca.crt': ['-----BEGIN CERTIFICATE-----\n', '644'],
      namespace: ['team', '644'],
    });
    expect(asks).toEqual([{ pod: 'web', serviceAccountName: 'builder', audience: undefined, expirationSeconds: 3607 }]);
  });

  it('items, item modes, defaultMode and bytes of a secret source; audience and the 1 h default expiration', async () => {
    asks.length = 0;
    const src: ProjectedVolumeSource = {
      defaultMode: 0o400,
      sources: [
        { secret: { name: 'creds', items: [{ key: 'bin', path: 'keys/bin', mode: 0o440 }, { key: 'user', path: 'user' }] } },
        { serviceAccountToken: { path: 'vault-token', audience: 'vault' } },
      ],
    };
    const out = await projectedPayload(pod, src, { data, tokens });
    expect(out.get('keys/bin')).toEqual({ data: BIN, mode: 0o440 });
    expect(text(out)).toMatchObject({ user: ['admin', '400'], 'vault-token': ['tok.en.jwt', '400'] });
    expect(asks).toEqual([{ pod: 'web', serviceAccountName: 'builder', audience: 'vault', expirationSeconds: 3600 }]);
  });

  it('optional missing sources are skipped; required ones fail with upstream’s messages, aggregated', async () => {
    const optional: ProjectedVolumeSource = { sources: [{ secret: { name: 'nope', optional: true } }, { configMap: { name: 'nope', optional: true } }] };
    expect((await projectedPayload(pod, optional, { data, tokens })).size).toBe(0);
    await expect(projectedPayload(pod, { sources: [{ secret: { name: 'nope' } }] }, { data, tokens })).rejects.toThrow(/^secret "nope" not found$/);
    await expect(
      projectedPayload(pod, { sources: [{ secret: { name: 'nope' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'zz', path: 'z' }] } }] }, { data, tokens }),
    ).rejects.toThrow('[secret "nope" not found, configmap references non-existent config key: zz]');
  });

  it('a serviceAccountToken source without a token source fails the mount with a clear message', async () => {
    await expect(projectedPayload(pod, { sources: [{ serviceAccountToken: { path: 'token' } }] }, { data })).rejects.toThrow(
      'failed to fetch token: no token source (berth runs without an API server)',
    );
    const failing: TokenSource = { getToken: async () => Promise.reject(new Error('serviceaccounts "builder" is forbidden')) };
    await expect(projectedPayload(pod, { sources: [{ serviceAccountToken: { path: 'token' } }] }, { data, tokens: failing })).rejects.toThrow(
      'failed to fetch token: serviceaccounts "builder" is forbidden',
    );
  });
});
