// The kubelet's local HTTP endpoints: /healthz (healthz port, 10248) and the read-only API (10255): /pods as
// upstream (a v1 PodList of the pods this node runs), the mounted stats/metrics routes as upstream's read-only port
// serves them, plus /berth/pods for `berth pods` (pods with status, invalid manifests and recent events).
// Unauthenticated: berth binds it to loopback only (--healthz-bind-address); the node's API is the secure server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../lib/index.ts';
import type { Kubelet } from '../kubelet.ts';
import { buildPodList, writeHealthz, writeJson, type HealthCheck } from './handlers.ts';
import { matchRoute, type HttpRoute } from './routes.ts';

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
  /** Mounted routes (stats, metrics) also served on the read-only port, as upstream does. */
  routes?: HttpRoute[];
}

export class KubeletServer {
  private readonly o: ServerOptions;
  private servers: http.Server[] = [];
  constructor(o: ServerOptions) {
    this.o = o;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const k = this.o.kubelet;
    if (url.pathname === '/healthz') return writeHealthz(res, this.o.checks, url.searchParams.has('verbose'));
    if (url.pathname === '/pods' || url.pathname === '/pods/') return writeJson(res, 200, buildPodList(k));
    if (url.pathname === '/berth/pods')
      return writeJson(res, 200, {
        node: this.o.nodeName,
        items: k.pods().map((r) => ({ ...r.pod, status: r.status })),
        errors: k.errors(),
        events: k.recorder.all().slice(-200),
      });
    if (this.o.extra?.(req, res)) return;
    const r = matchRoute(req.method ?? 'GET', url.pathname, this.o.routes ?? []);
    if (r.kind === 'mounted') {
      Promise.resolve()
        .then(() => r.route.handle(req, res, url))
        .catch((err: unknown) => {
          this.o.log.warn({ err, path: url.pathname }, 'route failed');
          if (!res.headersSent) writeJson(res, 500, { message: 'internal error' });
          else res.destroy();
        });
      return;
    }
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
      if (u.pathname === '/healthz') writeHealthz(res, this.o.checks, u.searchParams.has('verbose'));
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
