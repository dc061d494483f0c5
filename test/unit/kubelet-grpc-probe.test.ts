// gRPC probes against a real @grpc/grpc-js health server on 127.0.0.1, with pkg/probe/grpc's messages.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, runGrpcProbe } from '../../src/kubelet/prober/grpc-probe.ts';
import { runHandler } from '../../src/kubelet/prober/handlers.ts';
import { HealthServer } from '../helpers/grpc-health.ts';

describe('health messages encoded by hand', () => {
  it('encodes the service as field 1 and leaves an empty one out', () => {
    expect(encodeHealthCheckRequest('')).toEqual(Buffer.alloc(0));
    expect(encodeHealthCheckRequest('db')).toEqual(Buffer.from([0x0a, 2, 0x64, 0x62]));
    expect(encodeHealthCheckRequest('x'.repeat(200)).subarray(0, 3)).toEqual(Buffer.from([0x0a, 0xc8, 0x01]));
  });
  it('decodes the status, skipping unknown fields, absent = UNKNOWN', () => {
    expect(decodeHealthCheckResponse(Buffer.alloc(0))).toBe(0);
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 0x02]))).toBe(2);
    expect(decodeHealthCheckResponse(Buffer.from([0x12, 0x01, 0x41, 0x08, 0x01]))).toBe(1);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08]))).toThrow();
  });
});

describe('runGrpcProbe against a real health server', () => {
  const server = new HealthServer();
  let port = 0;
  beforeAll(async () => {
    port = await server.start();
    server.statuses.set('sick', 'NOT_SERVING');
  });
  afterAll(() => server.stop());

  it('SERVING is success', async () => {
    expect(await runGrpcProbe({ host: '127.0.0.1', port, timeoutMs: 2000 })).toEqual({ result: 'success', output: 'service is serving' });
  });

  it('NOT_SERVING is a failure naming the status', async () => {
    expect(await runGrpcProbe({ host: '127.0.0.1', port, service: 'sick', timeoutMs: 2000 })).toEqual({
      result: 'failure',
      output: 'service unhealthy (responded with "NOT_SERVING")',
    });
  });

  it('an unknown service is the NotFound rpc error', async () => {
    expect(await runGrpcProbe({ host: '127.0.0.1', port, service: 'nope', timeoutMs: 2000 })).toEqual({
      result: 'failure',
      output: 'error: health rpc probe failed: rpc error: code = NotFound desc = unknown service',
    });
  });

  it('an answer slower than timeoutSeconds is a timeout', async () => {
    server.delayMs = 1500;
    try {
      const out = await runGrpcProbe({ host: '127.0.0.1', port, timeoutMs: 1000 });
      expect(out).toEqual({ result: 'failure', output: 'timeout: health rpc did not complete within 1s' });
    } finally {
      server.delayMs = 0;
    }
  });

  it('runHandler dispatches grpc probes to the pod IP and port', async () => {
    const out = await runHandler({ grpc: { port, service: 'sick' }, timeoutSeconds: 2 }, { name: 'c' }, '127.0.0.1', 'cid', { execSync: async () => ({ exitCode: 0, stdout: '', stderr: '' }) });
    expect(out.output).toBe('service unhealthy (responded with "NOT_SERVING")');
  });
});

describe('runGrpcProbe without a server', () => {
  it('a refused connection fails after the timeout with the connect message', async () => {
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const out = await runGrpcProbe({ host: '127.0.0.1', port: free, timeoutMs: 1000 });
    expect(out).toEqual({ result: 'failure', output: `timeout: failed to connect service "127.0.0.1:${free}" within 1s: context deadline exceeded` });
  });
});
