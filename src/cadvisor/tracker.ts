// The set of containers housekeeping samples, level-triggered: `relist()` lists the running sandboxes and
// containers labelled io.berth.node=<node> and inspects only the newly seen ones (pid, start time, log path, and
// the cgroup from /proc/<pid>/cgroup, which is exact under either Docker cgroup driver). A Docker event, a
// vanished cgroup or the periodic relist marks the set dirty; missing an event only delays a change.
import type { Container, PodSandbox, RuntimeService } from '../cri/index.ts';
import { L, containerName as dockerContainerName, sandboxName } from '../cri/index.ts';
import { errorMessage, type Logger } from '../lib/index.ts';
import { newRef, type CgroupRef } from './cgroup-reader.ts';
import { containerCgroupPath, detectDriver, parseProcCgroup, type CgroupLayout, type ReadFn } from './cgroups.ts';
import type { PodRef } from './types.ts';

export type StatsRuntime = Pick<RuntimeService, 'listContainers' | 'listPodSandbox' | 'containerStatus' | 'events'>;

export interface Tracked {
  id: string;
  pod: PodRef;
  /** Kubernetes container name; `POD` for the sandbox. */
  name: string;
  dockerName: string;
  image: string;
  isSandbox: boolean;
  startTimeMs: number;
  pid: number;
  logPath: string;
  cgroupPath: string;
  ref: CgroupRef;
}

export interface TrackerOptions {
  runtime: StatsRuntime;
  nodeName: string;
  layout: CgroupLayout;
  read: ReadFn;
  log: Logger;
}

export class ContainerTracker {
  readonly tracked = new Map<string, Tracked>();
  /** The Docker cgroup driver, as the containers' cgroup paths show it. */
  driver: 'cgroupfs' | 'systemd' = 'cgroupfs';
  /** Set by events, vanished cgroups and failed inspects; cleared by relist(). */
  dirty = true;
  private readonly o: TrackerOptions;

  constructor(o: TrackerOptions) {
    this.o = o;
  }

  /** Lists and inspects the new; returns the pod UIDs still present. Rejects when Docker cannot list. */
  async relist(): Promise<Set<string>> {
    this.dirty = false;
    const selector = { labelSelector: { [L.node]: this.o.nodeName } };
    const [sandboxes, containers] = await Promise.all([
      this.o.runtime.listPodSandbox({ ...selector, state: 'SANDBOX_READY' }),
      this.o.runtime.listContainers({ ...selector, state: 'CONTAINER_RUNNING' }),
    ]);
    const seen = new Set<string>([...sandboxes.map((s) => s.id), ...containers.map((c) => c.id)]);
    for (const id of this.tracked.keys()) if (!seen.has(id)) this.tracked.delete(id);
    const fresh: (PodSandbox | Container)[] = [...sandboxes, ...containers].filter((x) => !this.tracked.has(x.id));
    for (let i = 0; i < fresh.length; i += 8) await Promise.all(fresh.slice(i, i + 8).map((x) => this.track(x)));
    return new Set([...sandboxes.map((s) => s.metadata.uid), ...containers.map((c) => c.labels[L.podUid] ?? '')]);
  }

  /** Tracked containers grouped by pod UID. */
  byPod(): Map<string, Tracked[]> {
    const out = new Map<string, Tracked[]>();
    for (const c of this.tracked.values()) {
      const list = out.get(c.pod.uid);
      if (list) list.push(c);
      else out.set(c.pod.uid, [c]);
    }
    return out;
  }

  private async track(x: PodSandbox | Container): Promise<void> {
    try {
      const st = await this.o.runtime.containerStatus(x.id);
      if (st.pid <= 0) return;
      const cgroupPath = containerCgroupPath(this.o.layout, parseProcCgroup(this.o.read(`/proc/${st.pid}/cgroup`) ?? ''));
      if (!cgroupPath) return;
      this.driver = detectDriver(cgroupPath);
      const isSandbox = 'state' in x && (x.state === 'SANDBOX_READY' || x.state === 'SANDBOX_NOTREADY');
      const pod: PodRef = isSandbox
        ? { name: (x as PodSandbox).metadata.name, namespace: (x as PodSandbox).metadata.namespace, uid: (x as PodSandbox).metadata.uid }
        : { name: x.labels[L.podName] ?? '', namespace: x.labels[L.podNamespace] ?? '', uid: x.labels[L.podUid] ?? '' };
      const name = isSandbox ? 'POD' : ((x as Container).metadata.name ?? x.labels[L.containerName] ?? '');
      const attempt = x.metadata.attempt ?? 0;
      this.tracked.set(x.id, {
        id: x.id,
        pod,
        name,
        dockerName: isSandbox ? sandboxName({ ...pod, attempt }) : dockerContainerName({ name, attempt }, pod),
        image: isSandbox ? st.image : (x as Container).image,
        isSandbox,
        startTimeMs: st.startedAt || st.createdAt,
        pid: st.pid,
        logPath: st.logPath,
        cgroupPath,
        ref: newRef(cgroupPath, { blkio: !isSandbox }),
      });
    } catch (err: unknown) {
      // Gone between list and inspect, or Docker slow: the next relist retries.
      this.o.log.debug({ containerId: x.id, err: errorMessage(err) }, 'stats: inspect failed');
      this.dirty = true;
    }
  }
}
