// API discovery: which group versions the server serves (/api, /apis) and its version (/version). A node agent
// supports several server releases, so versions that moved (discovery.k8s.io v1beta1 → v1 in 1.21, policy v1beta1 →
// v1 in 1.21) are picked here at start-up, not hard-coded.
import type { APIGroupList, APIVersions } from 'kubernetes-types/meta/v1';
import type { Info } from 'kubernetes-types/version';
import { NotFoundError, type Clock, systemClock } from '../lib/index.ts';
import type { KubeApi } from './client.ts';
import { type ResourceRef, withVersion } from './resources.ts';

export type ServerVersion = Info;

export interface DiscoveryOptions {
  api: Pick<KubeApi, 'request'>;
  /** How long the group list is reused. Default 10 min. */
  cacheTtlMs?: number | undefined;
  clock?: Clock | undefined;
}

export class Discovery {
  private readonly api: Pick<KubeApi, 'request'>;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private cached: { at: number; served: Promise<Map<string, string[]>> } | undefined;

  constructor(opts: DiscoveryOptions) {
    this.api = opts.api;
    this.ttlMs = opts.cacheTtlMs ?? 600_000;
    this.clock = opts.clock ?? systemClock;
  }

  /** GET /version. */
  serverVersion(signal?: AbortSignal): Promise<ServerVersion> {
    return this.api.request<ServerVersion>({ method: 'GET', path: '/version', signal });
  }

  /** Group name ('' = core) → served versions, in the server's preference order. Cached for the TTL. */
  servedGroups(): Promise<Map<string, string[]>> {
    const now = this.clock.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.served;
    const served = this.fetchGroups();
    this.cached = { at: now, served };
    served.catch(() => {
      if (this.cached?.served === served) this.cached = undefined; // do not cache failures
    });
    return served;
  }

  /** Forgets the cached group list (e.g. after a 404 on a version that discovery claimed). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Versions the server serves for `group` ('' = core); empty when the group is not served. */
  async servedVersions(group: string): Promise<string[]> {
    return (await this.servedGroups()).get(group) ?? [];
  }

  /**
   * The first of `candidates` (most preferred first) the server serves for `group`, e.g.
   * `preferredVersion('discovery.k8s.io', ['v1', 'v1beta1'])`. Throws NotFoundError when none is served.
   */
  async preferredVersion(group: string, candidates: readonly string[]): Promise<string> {
    const served = await this.servedVersions(group);
    const pick = candidates.find((c) => served.includes(c));
    if (pick === undefined) {
      throw new NotFoundError(
        `API group ${group || 'core'}: none of ${candidates.join(', ')} is served (server has ${served.join(', ') || 'no versions'})`,
      );
    }
    return pick;
  }

  /** `ref` at the first served of `candidates` (default: ref.version only). */
  async resolve(ref: ResourceRef, candidates: readonly string[] = [ref.version]): Promise<ResourceRef> {
    return withVersion(ref, await this.preferredVersion(ref.group, candidates));
  }

  private async fetchGroups(): Promise<Map<string, string[]>> {
    const [core, groups] = await Promise.all([
      this.api.request<APIVersions>({ method: 'GET', path: '/api' }),
      this.api.request<APIGroupList>({ method: 'GET', path: '/apis' }),
    ]);
    const out = new Map<string, string[]>();
    out.set('', [...(core.versions ?? [])]);
    for (const g of groups.groups ?? []) {
      const versions = (g.versions ?? []).map((v) => v.version);
      const pref = g.preferredVersion?.version;
      // The server's preferred version first, the rest in the order given.
      out.set(g.name, pref ? [pref, ...versions.filter((v) => v !== pref)] : versions);
    }
    return out;
  }
}
