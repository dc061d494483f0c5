// The kubelet API's authentication and authorization pieces against upstream pkg/kubelet/server/auth.go
// (nodeAuthorizerAttributesGetter), server.go's 401/403 bodies, k8s.io/apiserver's webhook caches, and berth's
// rule for when the secure port may be served at all.
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, bearerToken, buildAuthenticator, userFromSubject, WebhookTokenAuthenticator, type UserInfo } from '../../src/kubelet/server/auth.ts';
import { buildSubjectAccessReview, computeRequestAttributes, forbiddenMessage, isSubpath, WebhookAuthorizer } from '../../src/kubelet/server/authz.ts';
import { computeApiServingPlan } from '../../src/kubelet/server/index.ts';
import type http from 'node:http';

const alice: UserInfo = { name: 'alice', groups: ['dev'] };

describe('request attributes (upstream GetRequestAttributes)', () => {
  it.each([
    ['GET', '/pods', false, 'get', 'proxy'],
    ['GET', '/containerLogs/default/web/c', false, 'get', 'proxy'],
    ['GET', '/stats/summary', false, 'get', 'stats'],
    ['GET', '/stats', false, 'get', 'stats'],
    ['GET', '/statsfoo', false, 'get', 'proxy'],
    ['GET', '/metrics', false, 'get', 'metrics'],
    ['GET', '/metrics/cadvisor', false, 'get', 'metrics'],
    ['GET', '/logs/', false, 'get', 'log'],
    ['GET', '/logs/syslog', false, 'get', 'log'],
    ['GET', '/spec/', false, 'get', 'spec'],
    ['POST', '/checkpoint/ns/pod/c', false, 'create', 'checkpoint'],
    ['POST', '/exec/ns/pod/c', true, 'create', 'proxy'],
    ['GET', '/exec/ns/pod/c', true, 'create', 'proxy'],
    ['GET', '/portForward/ns/pod', true, 'create', 'proxy'],
    ['GET', '/exec/ns/pod/c', false, 'get', 'proxy'],
    ['PUT', '/pods', false, 'update', 'proxy'],
    ['PATCH', '/pods', false, 'patch', 'proxy'],
    ['DELETE', '/pods', false, 'delete', 'proxy'],
    ['GET', '/healthz', false, 'get', 'proxy'],
  ])('%s %s (upgrade %s) → verb %s, subresource %s', (method, path, upgrade, verb, subresource) => {
    const a = computeRequestAttributes({ user: alice, method, path, nodeName: 'node1', upgrade });
    expect(a).toMatchObject({ verb, subresource, resource: 'nodes', name: 'node1', apiVersion: 'v1', path });
  });

  it('isSubpath matches the prefix itself and paths below it only', () => {
    expect(isSubpath('/stats', '/stats/')).toBe(true);
    expect(isSubpath('/stats/x', '/stats/')).toBe(true);
    expect(isSubpath('/statsx', '/stats/')).toBe(false);
  });

  it('the 403 body names user, verb, resource and subresource as upstream', () => {
    const a = computeRequestAttributes({ user: alice, method: 'GET', path: '/containerLogs/a/b/c', nodeName: 'n' });
    expect(forbiddenMessage(a)).toBe('Forbidden (user=alice, verb=get, resource=nodes, subresource=proxy)');
  });

  it('the SubjectAccessReview carries the node attributes and the user', () => {
    const a = computeRequestAttributes({ user: { name: 'bob', uid: 'u1', groups: ['g'], extra: { k: ['v'] } }, method: 'GET', path: '/stats/summary', nodeName: 'n' });
    expect(buildSubjectAccessReview(a)).toEqual({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        resourceAttributes: { namespace: '', verb: 'get', group: '', version: 'v1', resource: 'nodes', subresource: 'stats', name: 'n' },
        user: 'bob',
        uid: 'u1',
        groups: ['g'],
        extra: { k: ['v'] },
      },
    });
  });
});

describe('webhook caches', () => {
  it('SubjectAccessReview answers are cached 5 min when allowed and 30 s when denied', async () => {
    let now = 0;
    let calls = 0;
    let allow = true;
    const api = { request: async () => (calls++, { status: { allowed: allow } }) } as never;
    const z = new WebhookAuthorizer({ api, allowedTtlMs: 300_000, deniedTtlMs: 30_000, now: () => now });
    const a = computeRequestAttributes({ user: alice, method: 'GET', path: '/pods', nodeName: 'n' });
    expect((await z.authorize(a)).allowed).toBe(true);
    now = 299_000;
    expect((await z.authorize(a)).allowed).toBe(true);
    expect(calls).toBe(1);
    now = 300_001;
    allow = false;
    expect((await z.authorize(a)).allowed).toBe(false);
    expect(calls).toBe(2);
    now += 29_000;
    await z.authorize(a);
    expect(calls).toBe(2);
    now += 2_000;
    allow = true;
    expect((await z.authorize(a)).allowed).toBe(true);
    expect(calls).toBe(3);
  });

  it('a denied answer with allowed=false and an explicit deny are both refusals', async () => {
    const api = { request: async () => ({ status: { allowed: true, denied: true } }) } as never;
    const z = new WebhookAuthorizer({ api, allowedTtlMs: 1, deniedTtlMs: 1 });
    expect((await z.authorize(computeRequestAttributes({ user: alice, method: 'GET', path: '/pods', nodeName: 'n' }))).allowed).toBe(false);
  });

  it('TokenReview answers are cached 2 min when valid and 30 s when invalid; errors are not cached', async () => {
    let now = 0;
    const bodies: unknown[] = [];
    let reply: unknown = { status: { authenticated: true, user: { username: 'system:serviceaccount:ns:sa', uid: 'x', groups: ['system:serviceaccounts'] } } };
    const api = {
      request: async (o: { body: unknown }) => {
        bodies.push(o.body);
        if (reply instanceof Error) throw reply;
        return reply;
      },
    } as never;
    const t = new WebhookTokenAuthenticator({ api, cacheTtlMs: 120_000, now: () => now });
    expect(await t.authenticateToken('good')).toEqual({ name: 'system:serviceaccount:ns:sa', uid: 'x', groups: ['system:serviceaccounts'] });
    expect(bodies[0]).toEqual({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'good' } });
    now = 119_000;
    await t.authenticateToken('good');
    expect(bodies).toHaveLength(1);
    reply = { status: { authenticated: false } };
    expect(await t.authenticateToken('bad')).toBeUndefined();
    now += 29_000;
    expect(await t.authenticateToken('bad')).toBeUndefined();
    expect(bodies).toHaveLength(2);
    now += 2_000;
    reply = new Error('apiserver down');
    await expect(t.authenticateToken('bad')).rejects.toThrow('apiserver down');
    await expect(t.authenticateToken('bad')).rejects.toThrow('apiserver down');
    expect(bodies).toHaveLength(4);
  });
});

describe('authentication', () => {
  const req = (headers: Record<string, string>, peer?: { authorized: boolean; subject: Record<string, string | string[]> }): http.IncomingMessage =>
    ({ headers, socket: peer ? { authorized: peer.authorized, getPeerCertificate: () => ({ subject: peer.subject }) } : {} }) as never;

  it('reads users from certificate subjects (CN, O as groups) and bearer headers', () => {
    expect(userFromSubject({ CN: 'kube-apiserver-kubelet-client', O: 'system:masters' })).toEqual({ name: 'kube-apiserver-kubelet-client', groups: ['system:masters'] });
    expect(userFromSubject({ CN: 'u', O: ['a', 'b'] })).toEqual({ name: 'u', groups: ['a', 'b'] });
    expect(userFromSubject({ O: 'x' })).toBeUndefined();
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
  });

  it('accepts a verified certificate, ignores an unverified one, and maps to anonymous only when enabled', async () => {
    const strict = buildAuthenticator({ x509: true, anonymous: false });
    expect(await strict.authenticate(req({}, { authorized: true, subject: { CN: 'alice', O: 'dev' } }))).toEqual({ name: 'alice', groups: ['dev'] });
    expect(await strict.authenticate(req({}, { authorized: false, subject: { CN: 'mallory' } }))).toBeUndefined();
    expect(await strict.authenticate(req({}))).toBeUndefined();
    const open = buildAuthenticator({ x509: true, anonymous: true });
    expect(await open.authenticate(req({}))).toEqual(ANONYMOUS);
  });

  it('a token the API server rejects is unauthenticated; one it accepts is the reviewed user', async () => {
    const api = { request: async (o: { body: { spec: { token: string } } }) => ({ status: { authenticated: o.body.spec.token === 'ok', user: { username: 'tok-user' } } }) } as never;
    const a = buildAuthenticator({ x509: false, tokens: new WebhookTokenAuthenticator({ api, cacheTtlMs: 1000 }), anonymous: false });
    expect(await a.authenticate(req({ authorization: 'Bearer ok' }))).toEqual({ name: 'tok-user', groups: [] });
    expect(await a.authenticate(req({ authorization: 'Bearer nope' }))).toBeUndefined();
  });
});

describe('when the secure port is served (computeApiServingPlan)', () => {
  const base = { port: 10250, hasApiServer: false, hasClientCA: false, anonymousAuth: false };
  it.each([
    ['port 0', { ...base, port: 0 }, false],
    ['standalone without a client CA', base, false],
    ['standalone with a client CA (AlwaysAllow for verified users)', { ...base, hasClientCA: true }, true],
    ['standalone, anonymous + AlwaysAllow', { ...base, anonymousAuth: true }, false],
    ['standalone, Webhook without an API server', { ...base, hasClientCA: true, authorizationMode: 'Webhook' }, false],
    ['cluster node (TokenReview + Webhook)', { ...base, hasApiServer: true }, true],
    ['cluster node with anonymous (Webhook decides)', { ...base, hasApiServer: true, anonymousAuth: true }, true],
    ['cluster node, token webhook off and no CA', { ...base, hasApiServer: true, authenticationTokenWebhook: false }, false],
  ])('%s → serve %s', (_name, settings, serve) => {
    expect(computeApiServingPlan(settings).serve).toBe(serve);
  });

  it('defaults: Webhook authorization and TokenReview with an API server', () => {
    expect(computeApiServingPlan({ ...base, hasApiServer: true, hasClientCA: true })).toEqual({ serve: true, x509: true, tokenWebhook: true, anonymous: false, authorization: 'Webhook' });
  });
});
