// The kubelet's local HTTP endpoints: /healthz (healthz port, 10248) and the read-only API
// (10255): /pods as upstream (a v1 PodList of the pods this node runs) plus /berth/pods for `berth pods`
// (pods with status, invalid manifests and recent events).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/index.ts';
import type { Kubelet } from './kubelet.ts';

export interface HealthCheck {
  name: string;
  healthy: () => boolean;
}

export interface ServerOptions {
  kubelet: Kubelet;
  address: string;
  healthzPort: number;
  readOnlyPort: number;
  nodeName: string;
  checks: HealthCheck[];
  log: Logger;
  /** Extra routes (e.g. proxy metrics) served on the read-only port. */
  extra?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export class KubeletServer {
  private readonly o: ServerOptions;
  private servers: http.Server[] = [];
  constructor(o: ServerOptions) {
    this.o = o;
  }

  private healthz(res: http.ServerResponse, verbose: boolean): void {
    const failed = this.o.checks.filter((c) => !c.healthy());
    if (verbose) {
      const lines = this.o.checks.map((c) => `[${c.healthy() ? '+' : '-'}]${c.name} ${c.healthy() ? 'ok' : 'failed'}`);
      res.writeHead(failed.length ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(`${lines.join('\n')}\n${failed.length ? 'healthz check failed' : 'healthz check passed'}\n`);
      return;
    }
    res.writeHead(failed.length ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(failed.length ? `[-]${failed.map((f) => f.name).join(',')} failed\nhealthz check failed` : 'ok');
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const k = this.o.kubelet;
    if (url.pathname === '/healthz') return this.healthz(res, url.searchParams.has('verbose'));
    if (url.pathname === '/pods' || url.pathname === '/pods/')
      return json(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: k.pods().map((r) => ({ ...r.pod, status: r.status })) });
    if (url.pathname === '/berth/pods')
      return json(res, 200, {
        node: this.o.nodeName,
        items: k.pods().map((r) => ({ ...r.pod, status: r.status })),
        errors: k.errors(),
        events: k.recorder.all().slice(-200),
      });
    if (this.o.extra?.(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404 page not found\n');
  }

  async start(): Promise<{ healthzPort: number; readOnlyPort: number }> {
    const listen = async (port: number, handler: http.RequestListener): Promise<number> => {
      if (port <= 0 && port !== -1) return 0;
      const s = http.createServer(handler);
      this.servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port === -1 ? 0 : port, this.o.address, () => resolve());
      });
      return (s.address() as AddressInfo).port;
    };
    const healthzPort = await listen(this.o.healthzPort, (req, res) => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      if (u.pathname === '/healthz') this.healthz(res, u.searchParams.has('verbose'));
      else {
        res.writeHead(404);
        res.end();
      }
    });
    const readOnlyPort = await listen(this.o.readOnlyPort, (req, res) => this.handle(req, res));
    this.o.log.info({ address: this.o.address, healthzPort, readOnlyPort }, 'kubelet server listening');
    return { healthzPort, readOnlyPort };
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers = [];
  }
}
