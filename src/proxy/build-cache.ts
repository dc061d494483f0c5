// The memo behind both modes' rule builders: a Service's objects are rebuilt only when its inputs changed.
import type { EndpointsChangeTracker, ServiceChangeTracker } from './change-tracker.ts';
import { type EndpointInfo, type ServicePortInfo, endpointsPortKey } from './types.ts';

/**
 * Per Service, its objects as last built and the inputs they were built from. The trackers keep a Service's port
 * and endpoint objects while its proxy-relevant view is unchanged, so identical inputs (by identity) and the same
 * context key mean identical objects: a full sync rebuilds only what changed since the last build.
 */
export class ServiceBuildCache<C, T> {
  private built = new Map<string, { ports: readonly unknown[]; eps: unknown; ctxKey: string; objs: T[] }>();
  private readonly services: ServiceChangeTracker;
  private readonly endpoints: EndpointsChangeTracker;
  private readonly buildPort: (svc: ServicePortInfo, endpoints: readonly EndpointInfo[], ctx: C) => T;

  constructor(opts: {
    services: ServiceChangeTracker;
    endpoints: EndpointsChangeTracker;
    buildPort: (svc: ServicePortInfo, endpoints: readonly EndpointInfo[], ctx: C) => T;
  }) {
    this.services = opts.services;
    this.endpoints = opts.endpoints;
    this.buildPort = opts.buildPort;
  }

  /** One Service's objects, one per port; [] when the Service is gone (and forgotten). */
  service(name: string, ctx: C, ctxKey: string): T[] {
    const ports = this.services.get(name);
    if (ports.length === 0) {
      this.built.delete(name);
      return [];
    }
    const eps = this.endpoints.get(name);
    const b = this.built.get(name);
    if (b !== undefined && b.ports === ports && b.eps === eps && b.ctxKey === ctxKey) return b.objs;
    const objs = ports.map((p) => this.buildPort(p, eps.get(endpointsPortKey(p.portName, p.protocol)) ?? [], ctx));
    this.built.set(name, { ports, eps, ctxKey, objs });
    return objs;
  }

  /** Every Service's objects (a full sync), Services without ports left out; forgets Services that are gone. */
  all(ctx: C, ctxKey: string): Map<string, readonly T[]> {
    const out = new Map<string, readonly T[]>();
    const prev = this.built;
    this.built = new Map();
    for (const [name] of this.services.entries()) {
      const b = prev.get(name);
      if (b) this.built.set(name, b);
      const n = this.service(name, ctx, ctxKey);
      if (n.length > 0) out.set(name, n);
    }
    return out;
  }
}
