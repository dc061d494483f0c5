// HTTP routes of the stats room, served by the kubelet API server (:10250, subresources `stats` and `metrics`
// for authorization) and, for local use, on the read-only port. Paths follow pkg/kubelet/server/server.go and
// pkg/kubelet/server/stats/handler.go: GET /stats/summary[?only_cpu_and_memory=true], /metrics/cadvisor,
// /metrics/resource, /metrics/probes and /metrics; plus berth's /berth/stats (the raw snapshot, for `berth stats`).
import type http from 'node:http';
import type { Registry } from 'prom-client';
import type { StatsProvider } from './provider.ts';
import { buildSummary } from './summary.ts';

export interface HttpRoute {
  /** The exact path this route serves. */
  prefix: string;
  /** The kubelet API subresource that authorizes it (`nodes/stats`, `nodes/metrics`). */
  subresource: 'stats' | 'metrics';
  /** Writes the whole response; never throws (errors become 500s). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void | Promise<void>;
}

export interface StatsRoutesOptions {
  provider: StatsProvider;
  nodeName: string;
  cadvisor: Registry;
  resource: Registry;
  probes: Registry;
  /** berth's own /metrics; left out when undefined. */
  berth?: Registry;
}

function fail(res: http.ServerResponse, code: number, msg: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${msg}\n`);
}

function metricsRoute(path: string, reg: Registry): HttpRoute {
  return {
    prefix: path,
    subresource: 'metrics',
    async handle(req, res, url) {
      // Mounted by prefix on the kubelet API: /metrics must not answer for /metrics/anything-else.
      if (url.pathname.replace(/\/$/, '') !== path) return fail(res, 404, '404 page not found');
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'Method Not Allowed');
      try {
        const body = await reg.metrics();
        res.writeHead(200, { 'content-type': reg.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch (err: unknown) {
        fail(res, 500, `Internal Error: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

export function createStatsRoutes(o: StatsRoutesOptions): HttpRoute[] {
  const routes: HttpRoute[] = [
    {
      prefix: '/stats/summary',
      subresource: 'stats',
      async handle(req, res, url) {
        if (req.method !== 'GET' && req.method !== 'POST') return fail(res, 405, 'Method Not Allowed');
        try {
          const snap = o.provider.latest() ?? (await o.provider.refresh());
          const body = buildSummary(snap, { nodeName: o.nodeName, cpuAndMemoryOnly: url.searchParams.get('only_cpu_and_memory') === 'true' });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        } catch (err: unknown) {
          fail(res, 500, `Internal Error: failed to get stats summary: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    },
    {
      // berth's own: the raw snapshot for `berth stats` (limits, block I/O and pids are not in the Summary).
      // `?fresh=true` runs a pass first when the latest is older than a second (coalesced with the tick).
      prefix: '/berth/stats',
      subresource: 'stats',
      async handle(req, res, url) {
        try {
          let snap = o.provider.latest();
          if (!snap || (url.searchParams.get('fresh') === 'true' && Date.now() - snap.timeMs > 1000)) snap = await o.provider.refresh();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ nodeName: o.nodeName, machine: o.provider.machine(), snapshot: snap }));
        } catch (err: unknown) {
          fail(res, 500, `Internal Error: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    },
    metricsRoute('/metrics/cadvisor', o.cadvisor),
    metricsRoute('/metrics/resource', o.resource),
    metricsRoute('/metrics/probes', o.probes),
  ];
  if (o.berth) routes.push(metricsRoute('/metrics', o.berth));
  return routes;
}

/** The route serving `pathname` (exact match; a trailing slash is tolerated), if any. */
export function findRoute(routes: HttpRoute[], pathname: string): HttpRoute | undefined {
  const p = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
  return routes.find((r) => r.prefix === p);
}

/** Adapter for KubeletServer's `extra` hook on the read-only port: true when a route took the request. */
export function routesHandler(routes: HttpRoute[]): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = findRoute(routes, url.pathname);
    if (!route) return false;
    void Promise.resolve(route.handle(req, res, url)).catch((err: unknown) => fail(res, 500, `Internal Error: ${String(err)}`));
    return true;
  };
}
