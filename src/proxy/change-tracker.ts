// Change trackers: the proxy's input. Informer callbacks (add/update/delete of Services, EndpointSlices v1/v1beta1,
// core Endpoints) land here; each tracker keeps the latest normalised view of every object (level: the whole
// desired state is always at hand) and marks the Services whose proxy-relevant view changed in a shared ChangeSet
// (edge: which chains a partial sync must rewrite). Marks are cleared only by `commit`, after the rules reached the
// kernel (upstream lost updates by clearing first). Modelled on pkg/proxy/servicechangetracker.go,
// endpointschangetracker.go and endpointslicecache.go.
import type { Service, Endpoints } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import type { Logger } from '../lib/index.ts';
import { RateLimiter } from '../lib/index.ts';
import type { EndpointInfo, EndpointSliceV1beta1, ServiceEndpoints, ServicePortInfo } from './types.ts';
import {
  type SliceContribution,
  mergeContributions,
  normalizeEndpointSlice,
  normalizeEndpoints,
  normalizeService,
  serviceKey,
} from './normalize.ts';

export interface PendingChanges {
  /** Every mark up to this generation is included. */
  readonly generation: number;
  /** Services ("ns/name") whose rules may differ from what was last applied. */
  readonly services: ReadonlySet<string>;
}

/** Services changed since the last successful sync. Shared by the Service and Endpoints trackers. */
export class ChangeSet {
  private gen = 0;
  private readonly dirty = new Map<string, { gen: number; at: number }>();
  private readonly now: () => number;
  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  mark(service: string): void {
    const prev = this.dirty.get(service);
    this.dirty.set(service, { gen: ++this.gen, at: prev?.at ?? this.now() });
  }

  /** A snapshot of the pending marks; does not clear them. */
  peek(): PendingChanges {
    return { generation: this.gen, services: new Set(this.dirty.keys()) };
  }

  /** Clears marks made up to `generation` (call after those changes reached the kernel). Idempotent. */
  commit(generation: number): void {
    for (const [k, v] of this.dirty) if (v.gen <= generation) this.dirty.delete(k);
  }

  get size(): number {
    return this.dirty.size;
  }

  /** When the oldest still-pending change was first marked (undefined when nothing is pending). */
  oldestPendingAt(): number | undefined {
    let min: number | undefined;
    for (const v of this.dirty.values()) if (min === undefined || v.at < min) min = v.at;
    return min;
  }
}

const PROBLEM_LOG_INTERVAL_MS = 10 * 60_000;

/** Services → their IPv4 service ports. */
export class ServiceChangeTracker {
  private readonly ports = new Map<string, { ports: readonly ServicePortInfo[]; fingerprint: string }>();
  private readonly changes: ChangeSet;
  private readonly log: Logger;
  private readonly problemLog = new RateLimiter(PROBLEM_LOG_INTERVAL_MS);

  constructor(opts: { changes: ChangeSet; log: Logger }) {
    this.changes = opts.changes;
    this.log = opts.log;
  }

  /**
   * Records the current state of one Service (`current` undefined = deleted). Returns true when its proxy-relevant
   * view changed (then it is marked in the ChangeSet). Never throws; invalid parts are logged and skipped.
   */
  update(previous: Service | undefined, current: Service | undefined): boolean {
    const key = serviceKey((current ?? previous)?.metadata);
    let next: readonly ServicePortInfo[] = [];
    if (current) {
      const n = normalizeService(current);
      if (n.problems.length > 0 && this.problemLog.allow(`${key}|${n.problems.join('|')}`)) {
        this.log.warn({ service: key, problems: n.problems }, 'service partly ignored');
      }
      next = n.value;
    }
    const fingerprint = next.length === 0 ? '' : fingerprintPorts(next);
    const prev = this.ports.get(key);
    if ((prev?.fingerprint ?? '') === fingerprint) return false;
    if (next.length === 0) this.ports.delete(key);
    else this.ports.set(key, { ports: next, fingerprint });
    this.changes.mark(key);
    return true;
  }

  onServiceAdd(svc: Service): boolean {
    return this.update(undefined, svc);
  }
  onServiceUpdate(oldSvc: Service | undefined, svc: Service): boolean {
    return this.update(oldSvc, svc);
  }
  onServiceDelete(svc: Service): boolean {
    return this.update(svc, undefined);
  }

  /** The service ports of one Service; empty when unknown or not proxied. */
  get(service: string): readonly ServicePortInfo[] {
    return this.ports.get(service)?.ports ?? [];
  }

  has(service: string): boolean {
    return this.ports.has(service);
  }

  *entries(): IterableIterator<[string, readonly ServicePortInfo[]]> {
    for (const [k, v] of this.ports) yield [k, v.ports];
  }

  get size(): number {
    return this.ports.size;
  }
}

const EMPTY: ServiceEndpoints = new Map();

/**
 * EndpointSlices (v1 and v1beta1, normalised alike) and core Endpoints → endpoints per Service. For a Service
 * with at least one slice only slices count; its Endpoints object is the fallback when it has none.
 */
export class EndpointsChangeTracker {
  private readonly slices = new Map<string, SliceContribution>();
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly core = new Map<string, SliceContribution>();
  private readonly merged = new Map<string, { ports: ServiceEndpoints; fingerprint: string; count: number }>();
  private total = 0;
  private readonly nodeName: string;
  private readonly changes: ChangeSet;
  private readonly log: Logger;
  private readonly problemLog = new RateLimiter(PROBLEM_LOG_INTERVAL_MS);

  constructor(opts: { nodeName: string; changes: ChangeSet; log: Logger }) {
    this.nodeName = opts.nodeName;
    this.changes = opts.changes;
    this.log = opts.log;
  }

  /** Records one slice (`current` undefined = deleted). Returns true when a Service's endpoints changed. */
  updateSlice(
    previous: EndpointSlice | EndpointSliceV1beta1 | undefined,
    current: EndpointSlice | EndpointSliceV1beta1 | undefined,
  ): boolean {
    const obj = current ?? previous;
    const sliceKey = serviceKey(obj?.metadata);
    const old = this.slices.get(sliceKey);
    let next: SliceContribution | undefined;
    if (current) {
      const n = normalizeEndpointSlice(current, this.nodeName);
      if (n.problems.length > 0 && this.problemLog.allow(`${sliceKey}|${n.problems.join('|')}`)) {
        this.log.warn({ endpointSlice: sliceKey, problems: n.problems }, 'endpoint slice partly ignored');
      }
      next = n.value.service ? n.value : undefined;
    }
    if (old) {
      this.slicesByService.get(old.service)?.delete(sliceKey);
      if (this.slicesByService.get(old.service)?.size === 0) this.slicesByService.delete(old.service);
      this.slices.delete(sliceKey);
    }
    if (next) {
      this.slices.set(sliceKey, next);
      let set = this.slicesByService.get(next.service);
      if (!set) this.slicesByService.set(next.service, (set = new Set()));
      set.add(sliceKey);
    }
    let changed = false;
    if (old) changed = this.recompute(old.service) || changed;
    if (next && next.service !== old?.service) changed = this.recompute(next.service) || changed;
    return changed;
  }

  onEndpointSliceAdd(slice: EndpointSlice | EndpointSliceV1beta1): boolean {
    return this.updateSlice(undefined, slice);
  }
  onEndpointSliceUpdate(oldSlice: EndpointSlice | EndpointSliceV1beta1 | undefined, slice: EndpointSlice | EndpointSliceV1beta1): boolean {
    return this.updateSlice(oldSlice, slice);
  }
  onEndpointSliceDelete(slice: EndpointSlice | EndpointSliceV1beta1): boolean {
    return this.updateSlice(slice, undefined);
  }

  /** Records one core Endpoints object (`current` undefined = deleted). */
  updateEndpoints(previous: Endpoints | undefined, current: Endpoints | undefined): boolean {
    const key = serviceKey((current ?? previous)?.metadata);
    if (current) {
      const n = normalizeEndpoints(current, this.nodeName);
      if (n.problems.length > 0 && this.problemLog.allow(`${key}|${n.problems.join('|')}`)) {
        this.log.warn({ endpoints: key, problems: n.problems }, 'endpoints partly ignored');
      }
      this.core.set(key, n.value);
    } else {
      this.core.delete(key);
    }
    return this.recompute(key);
  }

  onEndpointsAdd(ep: Endpoints): boolean {
    return this.updateEndpoints(undefined, ep);
  }
  onEndpointsUpdate(oldEp: Endpoints | undefined, ep: Endpoints): boolean {
    return this.updateEndpoints(oldEp, ep);
  }
  onEndpointsDelete(ep: Endpoints): boolean {
    return this.updateEndpoints(ep, undefined);
  }

  /** Endpoints of one Service, per endpointsPortKey; empty when none. */
  get(service: string): ServiceEndpoints {
    return this.merged.get(service)?.ports ?? EMPTY;
  }

  /** Endpoints across all Services (large-cluster mode switches on this, as upstream). */
  get totalEndpoints(): number {
    return this.total;
  }

  private recompute(service: string): boolean {
    const sliceKeys = this.slicesByService.get(service);
    let parts: SliceContribution[];
    if (sliceKeys && sliceKeys.size > 0) parts = [...sliceKeys].map((k) => this.slices.get(k)!).filter(Boolean);
    else {
      const c = this.core.get(service);
      parts = c ? [c] : [];
    }
    const ports = mergeContributions(parts);
    const fingerprint = fingerprintEndpoints(ports);
    const prev = this.merged.get(service);
    if ((prev?.fingerprint ?? '') === fingerprint) return false;
    this.total -= prev?.count ?? 0;
    if (ports.size === 0) this.merged.delete(service);
    else {
      let count = 0;
      for (const l of ports.values()) count += l.length;
      this.merged.set(service, { ports, fingerprint, count });
      this.total += count;
    }
    this.changes.mark(service);
    return true;
  }
}

function fingerprintPorts(ports: readonly ServicePortInfo[]): string {
  let s = '';
  for (const p of ports) {
    s += `${p.portName}|${p.protocol}|${p.clusterIP}|${p.port}|${p.nodePort}|${p.externalIPs.join(',')}|${p.loadBalancerVIPs.join(',')}|${p.loadBalancerSourceRanges.join(',')}|${p.loadBalancerSourceRangesDenyAll ? 1 : 0}|${p.affinityTimeoutSeconds}|${p.externalPolicyLocal ? 1 : 0}${p.internalPolicyLocal ? 1 : 0}${p.topologyAware ? 1 : 0}|${p.healthCheckNodePort};`;
  }
  return s;
}

function fingerprintEndpoints(ports: Map<string, EndpointInfo[]>): string {
  if (ports.size === 0) return '';
  const parts: string[] = [];
  for (const key of [...ports.keys()].sort()) {
    parts.push(key);
    for (const e of ports.get(key)!) {
      parts.push(
        `${e.endpoint},${e.isLocal ? 1 : 0}${e.ready ? 1 : 0}${e.serving ? 1 : 0}${e.terminating ? 1 : 0},${e.zoneHints?.join('+') ?? ''}`,
      );
    }
  }
  return parts.join(';');
}
