// Post-sync bookkeeping both proxy modes share: per Service its healthCheckNodePort and local ready endpoints (what
// the health check server answers with) and the counts of service ports without local endpoints (a metric), kept
// in step with the rules as applied.
import type { BuiltServicePort, PortChange } from './types.ts';

export class ServiceSummaries {
  /** healthCheckNodePort per Service that has one, as applied. */
  readonly hcPorts = new Map<string, number>();
  /** Local ready endpoints per Service with a healthCheckNodePort (the most over its ports). */
  readonly localReady = new Map<string, number>();
  /** Service ports whose traffic policy is Local and that have no local endpoint, per traffic kind. */
  noLocal = { internal: 0, external: 0 };

  /** Recomputes everything over every Service (after a full sync). */
  recomputeAll(applied: ReadonlyMap<string, readonly BuiltServicePort[]>): void {
    let internal = 0;
    let external = 0;
    this.hcPorts.clear();
    this.localReady.clear();
    for (const [name, ports] of applied) {
      for (const p of ports) {
        if (p.noLocalInternal) internal++;
        if (p.noLocalExternal) external++;
      }
      this.summarize(name, ports);
    }
    this.noLocal = { internal, external };
  }

  /**
   * Adjusts for the changed Services only (after a partial sync, which stays independent of the number of
   * Services): `changes` holds their ports before and after, `applied` the ports now in the kernel.
   */
  update(changes: readonly PortChange[], changed: ReadonlySet<string>, applied: ReadonlyMap<string, readonly BuiltServicePort[]>): void {
    let dInternal = 0;
    let dExternal = 0;
    for (const c of changes) {
      for (const p of c.prev) {
        if (p.noLocalInternal) dInternal--;
        if (p.noLocalExternal) dExternal--;
      }
      for (const p of c.next) {
        if (p.noLocalInternal) dInternal++;
        if (p.noLocalExternal) dExternal++;
      }
    }
    this.noLocal = { internal: this.noLocal.internal + dInternal, external: this.noLocal.external + dExternal };
    for (const name of changed) {
      this.hcPorts.delete(name);
      this.localReady.delete(name);
      this.summarize(name, applied.get(name) ?? []);
    }
  }

  private summarize(name: string, ports: readonly BuiltServicePort[]): void {
    for (const p of ports) {
      if (p.svc.healthCheckNodePort) {
        this.hcPorts.set(name, p.svc.healthCheckNodePort);
        this.localReady.set(name, Math.max(this.localReady.get(name) ?? 0, p.localReady));
      }
    }
  }
}
