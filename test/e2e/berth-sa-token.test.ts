// Service-account tokens from the real TokenRequest API. First the token manager alone, as a node identity (any
// profile). Then berth as a node of the rig in its bound-token profile (RIG_PROFILE=bound-token of
// test/e2e/apiserver.sh): the 1.20 API server then gives every pod what a current cluster gives it, a projected
// `kube-api-access-*` volume whose token berth gets as the node (Node authorizer + NodeRestriction), bound to the pod.
// Outside that profile that part is skipped with a warning, unless BERTH_E2E_SWITCH_PROFILE=1 (scripts/test.sh sets
// it): then it restarts kube-apiserver into the profile for its own run and back to scripts/test.sh's default profile
// afterwards (other suites never run at the same time: vitest runs files one by one). By hand, around a restart of
// the shared rig: `flock /tmp/berth-e2e.lock env BERTH_E2E_SWITCH_PROFILE=1 vitest run test/e2e/berth-sa-token.test.ts`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { promisify } from 'node:util';
import type { Pod } from 'kubernetes-types/core/v1';
import type { KubeClient } from '../../src/kube/index.ts';
import { FakeClock, hasCode } from '../../src/lib/index.ts';
import { ServiceAccountTokenError, TokenManager, type TokenApi } from '../../src/kubelet/sources/token-manager.ts';
import { BerthProcess, docker, REPO } from '../helpers/berth.ts';
import { requireEnv } from '../helpers/require.ts';
import path from 'node:path';
import { ensureTestImages, BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { apiServerUrl, countingTokenApi, e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from './helpers/cluster.ts';

const run = promisify(execFile);
const NODE = e2eNodeName;
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Upstream's serviceaccount.WarnOnlyBoundTokenExpirationSeconds (what admission puts in kube-api-access). */
const DEFAULT_EXPIRATION = 3607;
/** token.ExpirationExtensionSeconds: 1.20's --service-account-extend-token-expiration (default true). */
const EXTENDED_EXPIRATION = 365 * 24 * 3600;

/** Does the API server hand out kube-api-access volumes? (Server-side dry run through admission.) */
async function boundTokenProfileActive(): Promise<boolean> {
  const probe = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'profile-probe', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'x' }] } };
  const out = JSON.parse(await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(probe) })) as Pod;
  return (out.spec?.volumes ?? []).some((v) => v.name.startsWith('kube-api-access-') && v.projected);
}

/** Restarts the rig's kube-apiserver in `profile` (scripts/test.sh's settings otherwise; waits for /readyz). */
async function switchRig(profile: 'bound-token' | 'default'): Promise<void> {
  await run('bash', [path.join(REPO, 'test/e2e/apiserver.sh'), 'start'], {
    env: { ...process.env, RIG_PROFILE: profile, RIG_CONTROLLERS: '1', RIG_SA_ADMISSION: '0', RIG_RESTART_ON_CHANGE: '1', RIG_NODES: `node-1 node-2 ${NODE}` },
    timeout: 180_000,
  });
}

/** The controller-manager has given `ns` its default ServiceAccount and its kube-root-ca.crt ConfigMap. */
async function namespaceReady(ns: string): Promise<void> {
  await waitFor(
    async () => (await kubectl(['get', 'serviceaccount/default', 'configmap/kube-root-ca.crt', '-n', ns, '-o', 'name'])).trim().split('\n').length === 2,
    120_000,
    { what: `default ServiceAccount and kube-root-ca.crt in ${ns}`, intervalMs: 1000 },
  );
}

/** 'active': the rig is in the profile; 'switch': this suite may put it there; 'skip': neither (a failure under BERTH_REQUIRE_ALL/CI). */
async function profileGuard(): Promise<'active' | 'switch' | 'skip'> {
  if (await boundTokenProfileActive()) return 'active';
  if (process.env.BERTH_E2E_SWITCH_PROFILE === '1') return 'switch';
  const ok = requireEnv('e2e: the rig\'s bound-token profile', 'pods get no kube-api-access volume', {
    hint: 'set BERTH_E2E_SWITCH_PROFILE=1, or start the rig with RIG_PROFILE=bound-token RIG_RESTART_ON_CHANGE=1',
  });
  return ok ? 'active' : 'skip';
}

const up = await requireCluster();
const mode = up ? await profileGuard() : 'skip';

interface Claims {
  aud: string[];
  exp: number;
  iat: number;
  sub: string;
  'kubernetes.io'?: { namespace: string; pod: { name: string; uid: string }; warnafter?: number };
}
const claimsOf = (jwt: string): Claims => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Claims;

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}
async function tokenReview(token: string, audiences?: string[]): Promise<TokenReviewStatus> {
  const review = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences } : {}) } };
  const out = JSON.parse(await kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(review) })) as { status: TokenReviewStatus };
  return out.status;
}

/** One GET to the API server with `token` as bearer; resolves with status code and body. */
function getWithToken(p: string, token: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL(p, apiServerUrl()), { ca: readFileSync(paths.caCert), headers: { authorization: `Bearer ${token}` }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

// The token manager alone, as a node identity that runs no berth (node-2), in whatever profile the rig is in: the
// TokenRequest API needs only --service-account-issuer/-signing-key-file, which the rig always passes.
describe.skipIf(!up)('TokenManager against the real API server as a node (Node authorizer + NodeRestriction)', () => {
  const NS = uniqueName('sa-tm');
  let api: KubeClient;
  let count = { calls: 0 };
  let counted: TokenApi;
  let bound: Pod;
  let elsewhere: Pod;
  const podOn = (name: string, nodeName: string): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      // Named explicitly: the default profile runs without the ServiceAccount admission plugin, which would set it.
      spec: { nodeName, serviceAccountName: 'default', automountServiceAccountToken: false, containers: [{ name: 'c', image: BUSYBOX_IMAGE }] },
    });
  const getPod = async (name: string): Promise<Pod> => JSON.parse(await kubectl(['get', 'pod', '-n', NS, name, '-o', 'json'])) as Pod;

  beforeAll(async () => {
    await kubectl(['create', 'namespace', NS]);
    await namespaceReady(NS);
    await kubectl(['apply', '-f', '-'], { input: podOn('bound', 'node-2') });
    await kubectl(['apply', '-f', '-'], { input: podOn('elsewhere', 'node-1') });
    bound = await getPod('bound');
    elsewhere = await getPod('elsewhere');
    ({ api, tokenApi: counted, count } = await countingTokenApi('node-2'));
  }, 150_000);

  afterAll(async () => {
    await api?.close();
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']).catch(() => undefined);
  });

  it('gets a pod-bound token, serves it from cache, and asks again once 80 % of its lifetime has passed', async () => {
    const clock = new FakeClock(Date.now());
    const tm = new TokenManager({ api: counted, clock, random: () => 0 });
    count.calls = 0;
    const opts = { serviceAccountName: 'default', expirationSeconds: 600 };
    const first = await tm.getToken(bound, opts);
    expect(await tokenReview(first)).toMatchObject({
      authenticated: true,
      user: { username: `system:serviceaccount:${NS}:default`, extra: { 'authentication.kubernetes.io/pod-uid': [bound.metadata?.uid] } },
    });
    clock.advance(479_000);
    expect(await tm.getToken(bound, opts)).toBe(first);
    expect(count.calls).toBe(1);
    clock.advance(1_001); // past 480 s = 80 % of 600 s: an early refresh from the real server
    const second = await tm.getToken(bound, opts);
    expect(count.calls).toBe(2);
    expect((await tokenReview(second)).authenticated).toBe(true);
    tm.deleteServiceAccountToken(bound.metadata!.uid!);
    await tm.getToken(bound, opts);
    expect(count.calls).toBe(3);
  });

  it("is refused, with NodeRestriction's message, a token bound to a pod on another node", async () => {
    const tm = new TokenManager({ api });
    const err = await tm.getToken(elsewhere, { serviceAccountName: 'default', expirationSeconds: 600 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceAccountTokenError);
    expect(hasCode(err, 'Forbidden')).toBe(true);
    expect((err as Error).message).toContain('node requested token bound to a pod scheduled on a different node');
  });
});

describe.skipIf(mode === 'skip')('berth in the bound-token profile: kube-api-access volumes from the TokenRequest API', () => {
  const NS = uniqueName('sa-token');
  const POD = 'api-access';
  const berth = new BerthProcess({ nodeName: NODE, extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(NODE)}`, '--node-ip=127.0.0.1'] });
  let pod: Pod;
  let containerId: string;
  const cat = async (file: string): Promise<string> => (await run('docker', ['exec', containerId, 'cat', file])).stdout;

  let switched = false;

  beforeAll(async () => {
    await ensureTestImages(docker);
    // The namespace's default ServiceAccount (ServiceAccount admission needs it) and kube-root-ca.crt come from the
    // controller-manager, whose watches take a while to come back after an API server restart: wait for them first.
    await kubectl(['create', 'namespace', NS]);
    await namespaceReady(NS);
    if (mode === 'switch') {
      switched = true;
      await switchRig('bound-token');
      expect(await boundTokenProfileActive()).toBe(true);
    }
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']);
    berth.start();
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, namespace: NS },
      spec: {
        nodeName: NODE,
        terminationGracePeriodSeconds: 2,
        containers: [
          {
            name: 'c',
            image: BUSYBOX_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', 'sleep 3600'],
            volumeMounts: [{ name: 'vault-token', mountPath: '/var/run/secrets/berth', readOnly: true }],
          },
        ],
        volumes: [{ name: 'vault-token', projected: { sources: [{ serviceAccountToken: { audience: 'berth-e2e', expirationSeconds: 600, path: 'token' } }] } }],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    pod = await waitFor(
      async () => {
        const p = JSON.parse(await kubectl(['get', 'pod', '-n', NS, POD, '-o', 'json'])) as Pod;
        return p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') && p;
      },
      90_000,
      { what: 'pod with kube-api-access volume Ready', intervalMs: 500 },
    );
    containerId = (pod.status?.containerStatuses?.[0]?.containerID ?? '').replace(/^docker:\/\//, '');
  }, 300_000);

  afterAll(async () => {
    await berth.cleanup();
    // No kubelet confirms the pod's end any more: delete it for good, then its namespace.
    await kubectl(['delete', 'pod', '-n', NS, '--all', '--grace-period=0', '--force']).catch(() => undefined);
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']).catch(() => undefined);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined);
    if (switched) {
      await switchRig('default');
      // The next suites find a controller-manager that has caught up with the restarted API server.
      const probe = uniqueName('kcm-probe');
      await kubectl(['create', 'namespace', probe]);
      await namespaceReady(probe).finally(() => kubectl(['delete', 'namespace', probe, '--wait=false']).catch(() => undefined));
    }
  }, 300_000);

  it('starts a pod whose spec carries the kube-api-access-* projected volume the API server added', () => {
    const v = pod.spec?.volumes?.find((x) => /^kube-api-access-[a-z0-9]{5}$/.test(x.name));
    expect(v?.projected?.sources).toEqual([
      { serviceAccountToken: { expirationSeconds: DEFAULT_EXPIRATION, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ]);
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({ name: v!.name, mountPath: SA_DIR, readOnly: true });
    expect(pod.status?.phase).toBe('Running');
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives the container the namespace and the cluster CA from kube-root-ca.crt', async () => {
    expect(await cat(`${SA_DIR}/namespace`)).toBe(NS);
    expect(await cat(`${SA_DIR}/ca.crt`)).toBe(readFileSync(paths.caCert, 'utf8'));
  });

  it("mounts a token that authenticates as the pod's service account, bound to the pod (TokenReview)", async () => {
    const token = await cat(`${SA_DIR}/token`);
    const review = await tokenReview(token);
    expect(review.authenticated).toBe(true);
    expect(review.user?.username).toBe(`system:serviceaccount:${NS}:default`);
    expect(review.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual([POD]);
    expect(review.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.metadata?.uid]);
    // Used directly: authenticated as the service account, which RBAC does not let read pods.
    const res = await getWithToken(`/api/v1/namespaces/${NS}/pods/${POD}`, token);
    expect(res.code).toBe(403);
    expect((JSON.parse(res.body) as { message?: string }).message).toContain(`User "system:serviceaccount:${NS}:default" cannot get resource "pods"`);
  });

  it("carries the requested expirationSeconds: 3607 s as warnafter (1.20 extends kube-api-access tokens' exp to a year)", async () => {
    const c = claimsOf(await cat(`${SA_DIR}/token`));
    expect(c.sub).toBe(`system:serviceaccount:${NS}:default`);
    expect(c['kubernetes.io']?.pod).toEqual({ name: POD, uid: pod.metadata?.uid });
    expect((c['kubernetes.io']?.warnafter ?? NaN) - c.iat).toBe(DEFAULT_EXPIRATION);
    expect(c.exp - c.iat).toBe(EXTENDED_EXPIRATION);
    expect(Math.abs(c.iat * 1000 - Date.now())).toBeLessThan(10 * 60_000);
  });

  it('honours a projected serviceAccountToken source: audience and expirationSeconds 600 (the API minimum) in the token', async () => {
    const token = await cat('/var/run/secrets/berth/token');
    const c = claimsOf(token);
    expect(c.aud).toEqual(['berth-e2e']);
    expect(c.exp - c.iat).toBe(600);
    expect(c['kubernetes.io']?.warnafter).toBeUndefined();
    expect(await tokenReview(token, ['berth-e2e'])).toMatchObject({ authenticated: true, audiences: ['berth-e2e'] });
    // Not valid for the API server's own audience.
    expect((await tokenReview(token)).authenticated).not.toBe(true);
  });
});
