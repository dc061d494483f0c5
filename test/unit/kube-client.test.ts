import { describe, it, expect, afterEach } from 'vitest';
import type http from 'node:http';
import {
  KubeClient,
  type ClientConfig,
  resources,
  ApiError,
  ApiNotFoundError,
  WatchDecodeError,
  WatchEventDecoder,
  buildUserAgent,
  resourcePath,
  type WatchEvent,
} from '../../src/kube/index.ts';
import { NotFoundError, hasCode, BerthError } from '../../src/lib/index.ts';
import { startFixture, sendJson, status, freePort, sleep, type Fixture, type RecordedRequest } from './kube-fixture.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(server: string, auth: ClientConfig['auth'] = { type: 'token', token: 'sekret' }): ClientConfig {
  return { server, source: 'test', context: undefined, namespace: undefined, tls: { insecureSkipTlsVerify: false }, auth };
}

async function setup(handler: (req: RecordedRequest, res: http.ServerResponse) => void, opts: { base?: string; timeoutMs?: number } = {}): Promise<{ fx: Fixture; client: KubeClient }> {
  const fx = await startFixture(handler);
  const client = new KubeClient({ config: config(fx.url + (opts.base ?? '')), requestTimeoutMs: opts.timeoutMs ?? 2000 });
  cleanups.push(() => fx.close(), () => client.close());
  return { fx, client };
}

const echo = (req: RecordedRequest, res: http.ServerResponse): void =>
  sendJson(res, 200, { kind: 'Pod', metadata: { name: 'p', namespace: 'ns', resourceVersion: '7' }, echoed: req.body ? JSON.parse(req.body) : null });

describe('KubeClient requests', () => {
  it('sends user agent, accept and bearer token; reuses one keep-alive connection', async () => {
    const { fx, client } = await setup(echo);
    for (let i = 0; i < 10; i++) await client.get(resources.pods, 'p', { namespace: 'ns' });
    const r = fx.requests[0]!;
    expect(r.method).toBe('GET');
    expect(r.path).toBe('/api/v1/namespaces/ns/pods/p');
    expect(r.headers['user-agent']).toMatch(/^berth\/\d+\.\d+\.\d+ \(linux\/(amd64|arm64)\) kubelet$/);
    expect(r.headers.accept).toBe('application/json');
    expect(r.headers.authorization).toBe('Bearer sekret');
    // undici hands a socket back to the pool a tick after the body is read, so a back-to-back second request may
    // open one more; after that every request reuses them (no handshake per request).
    expect(fx.connections()).toBeLessThanOrEqual(2);
  });

  it('keeps the server URL base path and builds list queries', async () => {
    const { fx, client } = await setup((_req, res) => sendJson(res, 200, { metadata: { resourceVersion: '5', continue: 'c2' }, items: [] }), { base: '/k8s/clusters/c-1/' });
    const list = await client.list(resources.pods, { labelSelector: 'app=a,tier!=db', fieldSelector: 'spec.nodeName=node-1', limit: 50, continue: 'c1', resourceVersion: '0' });
    expect(list.metadata.continue).toBe('c2');
    const r = fx.requests[0]!;
    expect(r.path).toBe('/k8s/clusters/c-1/api/v1/pods');
    expect(Object.fromEntries(r.query)).toEqual({ labelSelector: 'app=a,tier!=db', fieldSelector: 'spec.nodeName=node-1', limit: '50', continue: 'c1', resourceVersion: '0' });
  });

  it('create / update / status paths, namespace from the object, fieldManager and dryRun', async () => {
    const { fx, client } = await setup(echo);
    const pod = { metadata: { name: 'p', namespace: 'ns', resourceVersion: '3' } };
    await client.create(resources.pods, pod, { fieldManager: 'berth' });
    await client.update(resources.pods, pod, { dryRun: true });
    await client.updateStatus(resources.pods, pod);
    await client.create(resources.nodes, { metadata: { name: 'n1' } });
    await client.create(resources.leases, { metadata: { name: 'n1', namespace: 'kube-node-lease' } });
    const seen = fx.requests.map((r) => `${r.method} ${r.url}`);
    expect(seen).toEqual([
      'POST /api/v1/namespaces/ns/pods?fieldManager=berth',
      'PUT /api/v1/namespaces/ns/pods/p?dryRun=All',
      'PUT /api/v1/namespaces/ns/pods/p/status',
      'POST /api/v1/nodes',
      'POST /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases',
    ]);
    expect(fx.requests[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(fx.requests[1]!.body)).toEqual(pod);
  });

  it('uses the right content type per patch type', async () => {
    const { fx, client } = await setup(echo);
    await client.patch(resources.nodes, 'n1', { metadata: { labels: { a: 'b' } } }, { type: 'merge' });
    await client.patchStatus(resources.nodes, 'n1', { status: { conditions: [] } }, { type: 'strategic' });
    await client.patch(resources.nodes, 'n1', [{ op: 'add', path: '/metadata/labels/x', value: 'y' }], { type: 'json' });
    await client.patch(resources.nodes, 'n1', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }, { type: 'apply', fieldManager: 'berth', force: true });
    expect(fx.requests.map((r) => [r.url, r.headers['content-type']])).toEqual([
      ['/api/v1/nodes/n1', 'application/merge-patch+json'],
      ['/api/v1/nodes/n1/status', 'application/strategic-merge-patch+json'],
      ['/api/v1/nodes/n1', 'application/json-patch+json'],
      ['/api/v1/nodes/n1?fieldManager=berth&force=true', 'application/apply-patch+yaml'],
    ]);
    expect(fx.requests.every((r) => r.method === 'PATCH')).toBe(true);
    await expect(client.patch(resources.nodes, 'n1', {}, { type: 'apply' })).rejects.toThrow(/fieldManager/);
    await expect(client.patch(resources.nodes, 'n1', {}, { type: 'json' })).rejects.toThrow(/list of operations/);
    await expect(client.create(resources.pods, { metadata: { name: 'x' } })).rejects.toThrow(/no namespace/);
  });

  it('sends DeleteOptions with grace period and preconditions', async () => {
    const { fx, client } = await setup((_q, res) => sendJson(res, 200, { kind: 'Status', status: 'Success' }));
    const out = await client.delete(resources.pods, 'p', { namespace: 'ns', gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, propagationPolicy: 'Background' });
    expect(out).toMatchObject({ kind: 'Status' });
    const r = fx.requests[0]!;
    expect(r.method).toBe('DELETE');
    expect(r.path).toBe('/api/v1/namespaces/ns/pods/p');
    expect(JSON.parse(r.body)).toEqual({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, propagationPolicy: 'Background' });
  });

  it('builds paths for groups and refuses impossible addresses', () => {
    expect(resourcePath(resources.endpointslices, { namespace: 'a' })).toBe('/apis/discovery.k8s.io/v1/namespaces/a/endpointslices');
    expect(resourcePath(resources.pods)).toBe('/api/v1/pods');
    expect(resourcePath(resources.pods, { namespace: 'a b', name: 'x/y' })).toBe('/api/v1/namespaces/a%20b/pods/x%2Fy');
    expect(() => resourcePath(resources.pods, { name: 'x' })).toThrow(/namespace is required/);
    expect(() => resourcePath(resources.nodes, { namespace: 'x' })).toThrow(/cluster-scoped/);
  });

  it('buildUserAgent names the component', () => {
    expect(buildUserAgent({ version: '1.2.3', component: 'proxy' })).toMatch(/^berth\/1\.2\.3 \(linux\/\w+\) proxy$/);
  });
});

describe('KubeClient error mapping', () => {
  const cases: { code: number; reason: string; want: string; headers?: Record<string, string> }[] = [
    { code: 404, reason: 'NotFound', want: 'NotFound' },
    { code: 409, reason: 'Conflict', want: 'Conflict' },
    { code: 409, reason: 'AlreadyExists', want: 'AlreadyExists' },
    { code: 410, reason: 'Expired', want: 'Gone' },
    { code: 403, reason: 'Forbidden', want: 'Forbidden' },
    { code: 401, reason: 'Unauthorized', want: 'Unauthorized' },
    { code: 422, reason: 'Invalid', want: 'Invalid' },
    { code: 400, reason: 'BadRequest', want: 'Invalid' },
    { code: 429, reason: 'TooManyRequests', want: 'ApiUnavailable', headers: { 'retry-after': '3' } },
    { code: 500, reason: 'InternalError', want: 'ApiUnavailable' },
    { code: 503, reason: 'ServiceUnavailable', want: 'ApiUnavailable' },
  ];
  for (const c of cases) {
    it(`${c.code} ${c.reason} → ${c.want}, Status kept`, async () => {
      const msg = `pods "p" is ${c.reason} (server words)`;
      const { client } = await setup((_q, res) => sendJson(res, c.code, status(c.code, c.reason, msg), c.headers));
      const err = await client.get(resources.pods, 'p', { namespace: 'ns' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect(hasCode(err, c.want as never)).toBe(true);
      expect((err as ApiError).message).toBe(msg);
      expect((err as ApiError).statusCode).toBe(c.code);
      expect((err as ApiError).status?.reason).toBe(c.reason);
      expect((err as ApiError).reason).toBe(c.reason);
      if (c.code === 404) {
        expect(err).toBeInstanceOf(NotFoundError);
        expect(err).toBeInstanceOf(ApiNotFoundError);
      }
      if (c.headers) expect((err as ApiError).retryAfterSeconds).toBe(3);
    });
  }

  it('keeps the server message naming the missing permission (403)', async () => {
    const msg = 'secrets is forbidden: User "system:node:node-1" cannot list resource "secrets" in API group "" at the cluster scope';
    const { client } = await setup((_q, res) => sendJson(res, 403, status(403, 'Forbidden', msg)));
    await expect(client.list(resources.secrets)).rejects.toMatchObject({ code: 'Forbidden', message: msg, statusCode: 403 });
  });

  it('maps a non-JSON 502 body to ApiUnavailable with the text', async () => {
    const { client } = await setup((_q, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    await expect(client.get(resources.nodes, 'n')).rejects.toMatchObject({ code: 'ApiUnavailable', statusCode: 502, message: expect.stringMatching(/HTTP 502: <html>bad gateway/) });
  });

  it('maps connection refused to ApiUnavailable', async () => {
    const port = await freePort();
    const client = new KubeClient({ config: config(`http://127.0.0.1:${port}`) });
    cleanups.push(() => client.close());
    const err = await client.get(resources.nodes, 'n').catch((e: unknown) => e);
    expect(hasCode(err, 'ApiUnavailable')).toBe(true);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as ApiError).statusCode).toBe(0);
  });

  it('times out a hung request as ApiUnavailable; a caller abort rejects with its reason', async () => {
    const { client } = await setup(() => undefined /* never answers */, { timeoutMs: 150 });
    const t0 = Date.now();
    await expect(client.get(resources.nodes, 'n')).rejects.toMatchObject({ code: 'ApiUnavailable', message: expect.stringMatching(/timed out after 150 ms/) });
    expect(Date.now() - t0).toBeLessThan(1500);
    const ac = new AbortController();
    const p = client.get(resources.nodes, 'n', { signal: ac.signal, timeoutMs: 5000 });
    ac.abort(new Error('shutting down'));
    await expect(p).rejects.toThrow('shutting down');
  });
});

describe('watch decoding', () => {
  const ev = (type: string, name: string): string => JSON.stringify({ type, object: { metadata: { name, resourceVersion: '1' } } });

  it('handles events split across chunks, several per chunk, and a split multi-byte character', () => {
    const d = new WatchEventDecoder<{ metadata: { name: string } }>();
    const text = `${ev('ADDED', 'a')}\n${ev('MODIFIED', 'ü-b')}\n${ev('DELETED', 'c')}\n`;
    const bytes = Buffer.from(text);
    const umlaut = bytes.indexOf(Buffer.from('ü'));
    // cut inside the first event, inside the 2-byte 'ü', and leave two whole events in the last chunk
    const cuts = [0, 17, umlaut + 1, bytes.length];
    const got: string[] = [];
    for (let i = 0; i < cuts.length - 1; i++) {
      for (const e of d.push(bytes.subarray(cuts[i], cuts[i + 1]))) got.push(`${e.type} ${(e.object as { metadata: { name: string } }).metadata.name}`);
    }
    expect(got).toEqual(['ADDED a', 'MODIFIED ü-b', 'DELETED c']);
    expect(d.end()).toEqual([]);
  });

  it('accepts a final event without newline, rejects malformed lines', () => {
    const d = new WatchEventDecoder();
    expect(d.push(ev('ADDED', 'a'))).toEqual([]);
    expect(d.end()).toHaveLength(1);
    expect(() => new WatchEventDecoder().push('{"type":"ADDED","obj\n')).toThrow(WatchDecodeError);
    expect(() => new WatchEventDecoder().push('{"type":"WHAT","object":{}}\n')).toThrow(/malformed watch event/);
    expect(() => new WatchEventDecoder().push('[1,2]\n')).toThrow(WatchDecodeError);
    // good events before a bad line in the same chunk are delivered; the error comes next
    const d2 = new WatchEventDecoder();
    expect(d2.push(`${ev('ADDED', 'a')}\nnot json\n${ev('ADDED', 'b')}\n`)).toHaveLength(1);
    expect(() => d2.check()).toThrow(WatchDecodeError);
    expect(() => d2.push('')).toThrow(WatchDecodeError);
  });
});

describe('KubeClient.watch', () => {
  function streaming(write: (res: http.ServerResponse) => Promise<void> | void) {
    return (req: RecordedRequest, res: http.ServerResponse): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      void write(res);
    };
  }

  it('sends watch parameters and yields events split across network chunks', async () => {
    const text = [
      { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '11' } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } },
      { type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: '13' } } },
    ]
      .map((e) => JSON.stringify(e) + '\n')
      .join('');
    const { fx, client } = await setup(
      streaming(async (res) => {
        for (let i = 0; i < text.length; i += 23) {
          res.write(text.slice(i, i + 23));
          await sleep(2);
        }
        res.end();
      }),
    );
    const w = await client.watch(resources.pods, { namespace: 'ns', resourceVersion: '10', fieldSelector: 'spec.nodeName=n' });
    const got: WatchEvent<unknown>[] = [];
    for await (const e of w) got.push(e);
    expect(got.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK', 'DELETED']);
    const q = fx.requests[0]!.query;
    expect(fx.requests[0]!.path).toBe('/api/v1/namespaces/ns/pods');
    expect(q.get('watch')).toBe('true');
    expect(q.get('allowWatchBookmarks')).toBe('true');
    expect(q.get('resourceVersion')).toBe('10');
    expect(q.get('fieldSelector')).toBe('spec.nodeName=n');
    const t = Number(q.get('timeoutSeconds'));
    expect(t).toBeGreaterThanOrEqual(300);
    expect(t).toBeLessThan(600);
  });

  it('throws WatchDecodeError on a malformed line', async () => {
    const { client } = await setup(
      streaming((res) => {
        res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } }) + '\n');
        res.write('this is not json\n');
      }),
    );
    const w = await client.watch(resources.pods);
    const got: string[] = [];
    await expect(
      (async () => {
        for await (const e of w) got.push(e.type);
      })(),
    ).rejects.toBeInstanceOf(WatchDecodeError);
    expect(got).toEqual(['ADDED']);
  });

  it('rejects with Gone when the server refuses the resourceVersion', async () => {
    const { client } = await setup((_q, res) => sendJson(res, 410, status(410, 'Expired', 'too old resource version: 1 (500)')));
    await expect(client.watch(resources.pods, { resourceVersion: '1' })).rejects.toMatchObject({ code: 'Gone', message: /too old/ });
  });

  it('close() ends the iteration quietly', async () => {
    const { client } = await setup(streaming(() => undefined));
    const w = await client.watch(resources.pods);
    setTimeout(() => w.close(), 50);
    const got: unknown[] = [];
    for await (const e of w) got.push(e);
    expect(got).toEqual([]);
  });

  it('a broken stream surfaces as ApiUnavailable', async () => {
    const { client } = await setup(
      streaming((res) => {
        res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":');
        setTimeout(() => res.socket?.destroy(), 20);
      }),
    );
    const w = await client.watch(resources.pods);
    const err = await (async () => {
      for await (const _e of w) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    expect(hasCode(err, 'ApiUnavailable')).toBe(true);
  });
});
