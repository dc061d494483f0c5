// healthCheckNodePort servers for Services with externalTrafficPolicy: Local (pkg/proxy/healthcheck
// service_health.go): one HTTP listener per Service; 200 while this node has local endpoints, 503 otherwise, so
// the cloud load balancer sends traffic only to nodes that can serve it. Same JSON as upstream.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/index.ts';

/** Consumer-side contract used by the proxy after each sync. */
export interface ServiceHealthServer {
  /**
   * Makes the set of listeners equal `services` ("ns/name" → healthCheckNodePort): opens new ones, closes those
   * gone. Idempotent; a port that cannot be bound is logged and retried on the next call. Never rejects.
   */
  syncServices(services: ReadonlyMap<string, number>): Promise<void>;
  /** Sets the local endpoint counts ("ns/name" → count); Services missing from the map count 0. */
  syncEndpoints(counts: ReadonlyMap<string, number>): void;
  /** The bound address of a Service's listener (tests with ephemeral ports). */
  addressOf(service: string): { host: string; port: number } | undefined;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  /** Address to listen on (upstream: the nodePortAddresses; default all). */
  bindAddress?: string;
  /** Maps a healthCheckNodePort to the port actually bound (tests: `() => 0` for an ephemeral port). */
  portFor?: (healthCheckNodePort: number) => number;
  /** Whether the proxy itself is healthy (reported as serviceProxyHealthy; unhealthy answers 503). */
  proxyHealthy?: () => boolean;
  log: Logger;
}

interface Listener {
  port: number;
  server: Server;
  bound: boolean;
}

export function createServiceHealthServer(opts: HealthServerOptions): ServiceHealthServer {
  const host = opts.bindAddress ?? '0.0.0.0';
  const portFor = opts.portFor ?? ((p: number) => p);
  const listeners = new Map<string, Listener>();
  let counts: ReadonlyMap<string, number> = new Map();

  const handler = (service: string) => (req: unknown, res: import('node:http').ServerResponse): void => {
    const slash = service.indexOf('/');
    const count = counts.get(service) ?? 0;
    const proxyHealthy = opts.proxyHealthy?.() ?? true;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Load-Balancing-Endpoint-Weight', String(count));
    res.statusCode = count > 0 && proxyHealthy ? 200 : 503;
    res.end(
      JSON.stringify(
        {
          service: { namespace: service.slice(0, slash), name: service.slice(slash + 1) },
          localEndpoints: count,
          serviceProxyHealthy: proxyHealthy,
        },
        null,
        2,
      ),
    );
  };

  const closeOne = (l: Listener): Promise<void> =>
    new Promise((resolve) => {
      if (!l.bound) return resolve();
      l.server.close(() => resolve());
      l.server.closeAllConnections();
    });

  return {
    async syncServices(services) {
      for (const [svc, l] of [...listeners]) {
        if (services.get(svc) !== l.port) {
          listeners.delete(svc);
          await closeOne(l);
        }
      }
      const usedPorts = new Set([...listeners.values()].map((l) => l.port));
      for (const [svc, port] of services) {
        if (listeners.has(svc)) continue;
        if (usedPorts.has(port)) {
          opts.log.warn({ service: svc, healthCheckNodePort: port }, 'health check port already used by another service');
          continue;
        }
        const server = createServer(handler(svc));
        const l: Listener = { port, server, bound: false };
        try {
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(portFor(port), host, () => {
              server.off('error', reject);
              resolve();
            });
          });
          l.bound = true;
          listeners.set(svc, l);
          usedPorts.add(port);
          opts.log.info({ service: svc, healthCheckNodePort: port, address: server.address() }, 'health check server started');
        } catch (err: unknown) {
          opts.log.warn({ err, service: svc, healthCheckNodePort: port }, 'health check server failed to listen');
        }
      }
    },
    syncEndpoints(c) {
      counts = c;
    },
    addressOf(service) {
      const l = listeners.get(service);
      const a = l?.server.address() as AddressInfo | null | undefined;
      return a ? { host: a.address, port: a.port } : undefined;
    },
    async close() {
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(all.map(closeOne));
    },
  };
}
