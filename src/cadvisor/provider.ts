// The contract consumers (Summary API, Prometheus collectors, `berth stats`, the eviction manager, image GC)
// code against. Owned here because every consumer wants the same small thing: the latest snapshot and a hook.
import type { MachineInfo, StatsSnapshot } from './types.ts';

export interface StatsProvider {
  /**
   * The latest published snapshot, or undefined before the first housekeeping pass finished. Never blocks,
   * never throws; the object is immutable (do not mutate it). Rates (usageNanoCores) need two passes.
   */
  latest(): StatsSnapshot | undefined;
  /**
   * Runs one housekeeping pass now (coalesced with a pass already running) and resolves with its snapshot.
   * For consumers that must act on fresh figures (eviction's synchronize, tests). Rejects only if the pass
   * itself failed as a whole (e.g. the cgroup hierarchy vanished); a missing container is just left out.
   */
  refresh(): Promise<StatsSnapshot>;
  /**
   * Calls `cb` after every published snapshot (on the housekeeping tick, jittered around
   * --housekeeping-interval, default 10 s). Synchronous callers should return quickly; a throwing callback is
   * logged and does not stop housekeeping. Returns an unsubscribe function.
   */
  onHousekeeping(cb: (snap: StatsSnapshot) => void): () => void;
  /** Facts read once at start (cores, memory capacity, boot ID, cgroup version and driver). */
  machine(): MachineInfo;
}
