// httpGet probes and hooks (pkg/probe/http): a pod serving on a port that fetch calls "bad" (6000, 6665-6669, 10080…)
// must be probed like any other (upstream's Go client has no such list); hostile handlers (CR/LF in a header value,
// an unescaped path, a host that is not one) are failures with a message, never a throw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runHandler } from '../../src/kubelet/index.ts';
import { httpGet, HttpGetError } from '../../src/lib/index.ts';

const noExec = { execSync: async () => ({ exitCode: 0, stdout: '', stderr: '' }) };
/** Ports on fetch's blocked list (WHATWG "bad port"), tried in turn until one binds on loopback. */
const FETCH_BAD_PORTS = [6666, 6667, 6668, 6669, 6665, 10080, 6000, 6697];

let server: http.Server;
let port = 0;
beforeAll(async () => {
  for (const p of FETCH_BAD_PORTS) {
    server = http.createServer((req, res) => {
      res.writeHead(req.url === '/fail' ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(`ok ${req.url} ${req.headers['x-probe'] ?? ''}`);
    });
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(p, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      port = (server.address() as AddressInfo).port;
      return;
    }
  }
  throw new Error('no fetch-blocked port free on loopback');
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('httpGet probes', () => {
  it(`succeed against a server on a port fetch refuses (${FETCH_BAD_PORTS.join(', ')})`, async () => {
    const out = await runHandler({ httpGet: { port, path: '/healthz', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, timeoutSeconds: 2 }, { name: 'c' }, '127.0.0.1', 'cid', noExec);
    expect(out).toEqual({ result: 'success', output: 'ok /healthz yes' });
  });

  it('fail with the status code on a 500, and with upstream text on a refused connection', async () => {
    expect(await runHandler({ httpGet: { port, path: '/fail' }, timeoutSeconds: 2 }, { name: 'c' }, '127.0.0.1', 'cid', noExec)).toEqual({ result: 'failure', output: 'HTTP probe failed with statuscode: 500' });
    const closed = await new Promise<number>((r) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => r(p));
      });
    });
    expect(await runHandler({ httpGet: { port: closed, path: '/' }, timeoutSeconds: 2 }, { name: 'c' }, '127.0.0.1', 'cid', noExec)).toEqual({
      result: 'failure',
      output: `Get "http://127.0.0.1:${closed}/": dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
  });

  it.each([
    ['a CR/LF in a header value', { port: 0, path: '/', httpHeaders: [{ name: 'X-A', value: 'a\r\nInjected: 1' }] }],
    ['an unescaped path', { port: 0, path: '/a b\r\nHost: evil' }],
    ['a host that is not one', { port: 0, path: '/', host: 'no such host..' }],
  ])('fail (never throw) on %s', async (_what, h) => {
    const out = await runHandler({ httpGet: { ...h, port }, timeoutSeconds: 2 }, { name: 'c' }, '127.0.0.1', 'cid', noExec);
    expect(out.result).toBe('failure');
    expect(out.output).toMatch(/^Get "/);
  });
});

describe('lib httpGet', () => {
  it('reads at most maxBodyBytes and rejects a CR/LF header as Invalid', async () => {
    expect(await httpGet({ scheme: 'http', host: '127.0.0.1', port, path: '/x', headers: {}, timeoutMs: 2000, maxBodyBytes: 4 })).toEqual({ status: 200, body: 'ok /' });
    const err = await httpGet({ scheme: 'http', host: '127.0.0.1', port, path: '/', headers: { 'x-a': 'a\r\nb: c' }, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpGetError);
    expect((err as HttpGetError).code).toBe('Invalid');
  });

  it('times out on a server that never answers', async () => {
    const mute = http.createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const p = (mute.address() as AddressInfo).port;
    const err = await httpGet({ scheme: 'http', host: '127.0.0.1', port: p, path: '/', headers: {}, timeoutMs: 200 }).catch((e: unknown) => e);
    mute.closeAllConnections();
    await new Promise<void>((r) => mute.close(() => r()));
    expect((err as HttpGetError).code).toBe('Timeout');
  });
});
