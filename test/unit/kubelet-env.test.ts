// makeEnvironment / expand against pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, the downward API
// (pkg/fieldpath, resource.ExtractContainerResourceValue) and third_party/forked/golang/expansion.
import { describe, expect, it } from 'vitest';
import type { Container, EnvFromSource, EnvVar, Pod } from 'kubernetes-types/core/v1';
import { NotFoundError } from '../../src/lib/index.ts';
import { EnvConfigError, expand, makeEnvironment, type ConfigDataSource, type EnvContext } from '../../src/kubelet/runtime/env.ts';
import { pod, spec } from './helpers/kubelet-fixtures.ts';

const SERVICE_ENV = {
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  WEB_SERVICE_HOST: '10.96.3.4',
};

function source(configMaps: Record<string, Record<string, string>>, secrets: Record<string, Record<string, string>> = {}): ConfigDataSource {
  return {
    configMap: async (ns, name) => {
      const d = configMaps[`${ns}/${name}`];
      if (!d) throw new NotFoundError(`configmaps "${name}" not found`);
      return d;
    },
    secret: async (ns, name) => {
      const d = secrets[`${ns}/${name}`];
      if (!d) throw new NotFoundError(`secrets "${name}" not found`);
      return d;
    },
  };
}

function ctx(o: { env?: EnvVar[]; envFrom?: EnvFromSource[]; container?: Partial<Container>; p?: Pod; data?: ConfigDataSource; serviceEnv?: Record<string, string> }): EnvContext {
  const container = spec('app', { env: o.env, envFrom: o.envFrom, ...o.container });
  const p = o.p ?? pod({ containers: [container] });
  p.metadata!.labels = { app: 'web', tier: 'front' };
  p.metadata!.annotations = { 'example.com/owner': 'team-a' };
  p.spec!.serviceAccountName = 'builder';
  return {
    pod: p,
    container,
    hostIP: '192.168.1.10',
    podIP: '10.1.0.5',
    nodeName: 'node-1',
    serviceEnv: o.serviceEnv ?? {},
    data: o.data,
    nodeAllocatable: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30 },
  };
}
const asMap = (vars: { key: string; value: string }[]): Record<string, string> => Object.fromEntries(vars.map((v) => [v.key, v.value]));

describe('expand ($(VAR) expansion)', () => {
  const vars: Record<string, string> = { A: 'a', B: 'b', EMPTY: '' };
  it.each([
    ['$(A)', 'a'],
    ['x$(A)y$(B)z', 'xaybz'],
    ['$(EMPTY)!', '!'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['$$$(A)', '$a'],
    ['$(A', '$(A'],
    ['$A', '$A'],
    ['cost $5', 'cost $5'],
    ['end$', 'end$'],
    ['$()', '$()'],
  ])('%j → %j', (input, out) => {
    expect(expand(input, (n) => vars[n])).toBe(out);
  });
});

describe('makeEnvironment', () => {
  it('env in declared order; $(VAR) sees earlier variables and service variables, not later ones', async () => {
    const env: EnvVar[] = [
      { name: 'HOST', value: 'db' },
      { name: 'URL', value: 'postgres://$(HOST):$(PORT)/x' },
      { name: 'PORT', value: '5432' },
      { name: 'API', value: 'https://$(KUBERNETES_SERVICE_HOST)' },
      { name: 'LITERAL', value: '$$(HOST)' },
    ];
    const vars = await makeEnvironment(ctx({ env, serviceEnv: SERVICE_ENV }));
    const m = asMap(vars);
    expect(m).toMatchObject({ HOST: 'db', URL: 'postgres://db:$(PORT)/x', PORT: '5432', API: 'https://10.96.0.1', LITERAL: '$(HOST)' });
    const keys = vars.map((v) => v.key).filter((k) => env.some((e) => e.name === k));
    expect(keys).toEqual(['HOST', 'URL', 'PORT', 'API', 'LITERAL']);
  });

  it('a later env entry replaces an earlier one of the same name, and may refer to it', async () => {
    const m = asMap(await makeEnvironment(ctx({ env: [{ name: 'P', value: '/bin' }, { name: 'P', value: '$(P):/usr/bin' }] })));
    expect(m.P).toBe('/bin:/usr/bin');
  });

  it('envFrom with prefix; env overrides envFrom; service links do not override either', async () => {
    const data = source({ 'default/settings': { MODE: 'dev', LEVEL: '3', WEB_SERVICE_HOST: 'from-cm' } }, { 'default/creds': { TOKEN: 's3cr3t' } });
    const vars = await makeEnvironment(
      ctx({
        data,
        serviceEnv: SERVICE_ENV,
        envFrom: [{ configMapRef: { name: 'settings' } }, { prefix: 'SEC_', secretRef: { name: 'creds' } }],
        env: [{ name: 'MODE', value: 'prod' }],
      }),
    );
    expect(asMap(vars)).toEqual({
      MODE: 'prod',
      LEVEL: '3',
      WEB_SERVICE_HOST: 'from-cm',
      SEC_TOKEN: 's3cr3t',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
    });
  });

  it('an envFrom variable named like a KUBERNETES_ service variable keeps its envFrom value', async () => {
    const data = source({ 'default/settings': { KUBERNETES_SERVICE_HOST: 'proxy.local' } });
    const m = asMap(await makeEnvironment(ctx({ data, serviceEnv: SERVICE_ENV, envFrom: [{ configMapRef: { name: 'settings' } }] })));
    expect(m.KUBERNETES_SERVICE_HOST).toBe('proxy.local');
    expect(m.KUBERNETES_SERVICE_PORT).toBe('443');
  });

  it('enableServiceLinks: false → only the master (KUBERNETES_*) service variables', async () => {
    const p = pod({ spec: { enableServiceLinks: false } });
    const m = asMap(await makeEnvironment(ctx({ p, serviceEnv: SERVICE_ENV })));
    expect(m).toEqual({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
  });

  it('fieldRef: pod metadata, labels/annotations, node, IPs, service account', async () => {
    const ref = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
    const m = asMap(
      await makeEnvironment(
        ctx({
          env: [
            ref('NAME', 'metadata.name'),
            ref('NS', 'metadata.namespace'),
            ref('UID', 'metadata.uid'),
            ref('TIER', "metadata.labels['tier']"),
            ref('OWNER', "metadata.annotations['example.com/owner']"),
            ref('NODE', 'spec.nodeName'),
            ref('SA', 'spec.serviceAccountName'),
            ref('HOST_IP', 'status.hostIP'),
            ref('POD_IP', 'status.podIP'),
            { name: 'ADDR', value: '$(POD_IP):8080' },
          ],
        }),
      ),
    );
    expect(m).toEqual({
      NAME: 'web',
      NS: 'default',
      UID: 'uid-1',
      TIER: 'front',
      OWNER: 'team-a',
      NODE: 'node-1',
      SA: 'builder',
      HOST_IP: '192.168.1.10',
      POD_IP: '10.1.0.5',
      ADDR: '10.1.0.5:8080',
    });
  });

  it('fieldRef to an unsupported path is an error', async () => {
    await expect(makeEnvironment(ctx({ env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.nope' } } }] }))).rejects.toBeInstanceOf(EnvConfigError);
  });

  it('resourceFieldRef: divisors round up; unset limits fall back to node allocatable; unset requests are 0', async () => {
    const rf = (name: string, resource: string, divisor?: string, containerName?: string): EnvVar => ({
      name,
      valueFrom: { resourceFieldRef: { resource, divisor, containerName } },
    });
    const m = asMap(
      await makeEnvironment(
        ctx({
          container: { resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1500m' } } },
          env: [
            rf('CPU_REQ', 'requests.cpu'),
            rf('CPU_REQ_M', 'requests.cpu', '1m'),
            rf('CPU_LIM', 'limits.cpu'),
            rf('MEM_REQ_MI', 'requests.memory', '1Mi'),
            rf('MEM_REQ', 'requests.memory'),
            rf('MEM_LIM_MI', 'limits.memory', '1Mi'),
            rf('EPH_REQ', 'requests.ephemeral-storage'),
          ],
        }),
      ),
    );
    expect(m).toEqual({
      CPU_REQ: '1',
      CPU_REQ_M: '250',
      CPU_LIM: '2',
      MEM_REQ_MI: '64',
      MEM_REQ: String(64 * 2 ** 20),
      MEM_LIM_MI: '8192',
      EPH_REQ: '0',
    });
  });

  it('configMapKeyRef / secretKeyRef from the data source', async () => {
    const data = source({ 'default/cm': { level: 'debug' } }, { 'default/sec': { password: 'pw' } });
    const m = asMap(
      await makeEnvironment(
        ctx({
          data,
          env: [
            { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'cm', key: 'level' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'sec', key: 'password' } } },
          ],
        }),
      ),
    );
    expect(m).toMatchObject({ LEVEL: 'debug', PASSWORD: 'pw' });
  });

  describe('missing ConfigMaps and Secrets', () => {
    const cases: { name: string; o: Parameters<typeof ctx>[0]; message: string }[] = [
      { name: 'envFrom configmap, no data source', o: { envFrom: [{ configMapRef: { name: 'x' } }] }, message: 'configmap "x" not found' },
      { name: 'envFrom secret, no data source', o: { envFrom: [{ secretRef: { name: 's' } }] }, message: 'secret "s" not found' },
      { name: 'configMapKeyRef, no data source', o: { env: [{ name: 'V', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } }] }, message: 'configmap "x" not found' },
      {
        name: 'configMapKeyRef, configmap missing',
        o: { data: source({}), env: [{ name: 'V', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } }] },
        message: 'configmap "x" not found',
      },
      {
        name: 'secretKeyRef, secret missing',
        o: { data: source({}), env: [{ name: 'V', valueFrom: { secretKeyRef: { name: 'db', key: 'k' } } }] },
        message: 'secret "db" not found',
      },
      {
        name: 'configMapKeyRef, key missing',
        o: { data: source({ 'default/x': { other: '1' } }), env: [{ name: 'V', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } }] },
        message: "couldn't find key k in ConfigMap default/x",
      },
    ];
    it.each(cases)('$name → EnvConfigError "$message"', async ({ o, message }) => {
      const p = makeEnvironment(ctx(o));
      await expect(p).rejects.toBeInstanceOf(EnvConfigError);
      await expect(p).rejects.toThrow(message);
    });

    it('optional envFrom of a missing configmap is skipped', async () => {
      const m = asMap(await makeEnvironment(ctx({ data: source({}), envFrom: [{ configMapRef: { name: 'x', optional: true } }], env: [{ name: 'A', value: '1' }] })));
      expect(m).toEqual({ A: '1' });
    });

    it('optional keyRef to a missing configmap or key → the variable is not set at all', async () => {
      const data = source({ 'default/cm': { present: 'yes' } });
      const m = asMap(
        await makeEnvironment(
          ctx({
            data,
            env: [
              { name: 'NO_CM', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } } },
              { name: 'NO_KEY', valueFrom: { configMapKeyRef: { name: 'cm', key: 'absent', optional: true } } },
              { name: 'NO_SECRET', valueFrom: { secretKeyRef: { name: 'gone', key: 'k', optional: true } } },
              { name: 'OK', valueFrom: { configMapKeyRef: { name: 'cm', key: 'present', optional: true } } },
            ],
          }),
        ),
      );
      expect(m).toEqual({ OK: 'yes' });
    });
  });
});
