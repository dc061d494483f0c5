// `berth proxy` survives its own endpoints failing and exits on an unhandled rejection (issue #9 defect 4).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { exitOnUnhandledRejection, serveProxyEndpoints, type ProxyEndpoints } from '../../src/cli/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

function capturingLogger(): { log: pino.Logger; lines: { level: number; msg: string; port?: number }[] } {
  const lines: { level: number; msg: string; port?: number }[] = [];
  const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}
const ok: http.RequestListener = (_req, res) => res.end('ok');
const get = (port: number): Promise<string> =>
  new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });

let endpoints: ProxyEndpoints | undefined;
const others: http.Server[] = [];
afterEach(async () => {
  await endpoints?.close();
  endpoints = undefined;
  for (const s of others.splice(0)) await new Promise((r) => s.close(r));
});

describe('proxy endpoints', () => {
  it('a port in use is logged and retried, the other port serves, and the busy one binds once freed', async () => {
    const squatter = http.createServer(ok);
    others.push(squatter);
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const busy = (squatter.address() as AddressInfo).port;
    const { log, lines } = capturingLogger();
    endpoints = serveProxyEndpoints({ handler: ok, ports: [busy, 0], address: '127.0.0.1', log, retryMs: 50 });
    await waitFor(() => endpoints!.addresses().has(0), 5000, { intervalMs: 20 });
    expect(await get(endpoints.addresses().get(0)!.port)).toBe('ok');
    await waitFor(() => lines.some((l) => l.msg === 'proxy endpoint could not listen; retrying'), 5000, { intervalMs: 20 });
    expect(endpoints.addresses().has(busy)).toBe(false);
    await new Promise((r) => squatter.close(r));
    others.length = 0;
    await waitFor(() => endpoints!.addresses().has(busy), 5000, { intervalMs: 20 });
    expect(await get(busy)).toBe('ok');
    // logged once, not once per retry
    expect(lines.filter((l) => l.msg === 'proxy endpoint could not listen; retrying')).toHaveLength(1);
  });

  it('an error emitted by a listening server is logged, not thrown', async () => {
    const { log, lines } = capturingLogger();
    const made: http.Server[] = [];
    const real = http.createServer.bind(http);
    const spy = vi.spyOn(http, 'createServer').mockImplementation(((h: http.RequestListener) => {
      const s = real(h);
      made.push(s);
      return s;
    }) as typeof http.createServer);
    try {
      endpoints = serveProxyEndpoints({ handler: ok, ports: [0], address: '127.0.0.1', log });
    } finally {
      spy.mockRestore();
    }
    await waitFor(() => endpoints!.addresses().has(0), 5000, { intervalMs: 20 });
    expect(made).toHaveLength(1);
    // without an 'error' listener, emit('error') throws (and from a socket callback, kills the process)
    expect(() => made[0]!.emit('error', new Error('boom'))).not.toThrow();
    expect(lines.some((l) => l.msg === 'proxy endpoint server failed' && l.level === 50)).toBe(true);
    expect(await get(endpoints.addresses().get(0)!.port)).toBe('ok');
  });
});

describe('fatal rejection handler', () => {
  it('logs at fatal and exits 1', () => {
    const { log, lines } = capturingLogger();
    const codes: number[] = [];
    const h = exitOnUnhandledRejection(log, (c) => codes.push(c));
    try {
      h(new Error('lost'));
      expect(codes).toEqual([1]);
      expect(lines.some((l) => l.level === 60 && l.msg.includes('unhandled rejection'))).toBe(true);
      expect(process.listeners('unhandledRejection')).toContain(h);
    } finally {
      process.off('unhandledRejection', h);
    }
  });
});
