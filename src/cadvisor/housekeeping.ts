// Housekeeping: the StatsProvider implementation. On a jittered tick (--housekeeping-interval, default 10 s, as
// cAdvisor's housekeeping) it reads every tracked container's cgroup, every pod cgroup, the sandbox's
// /proc/<pid>/net/dev, the node's root cgroup, statfs of nodefs/imagefs and /proc/loadavg — synchronously, from
// small kernel files, with no child process and no Docker call per sample — and publishes one immutable snapshot.
// The container set comes from tracker.ts (relisted on Docker events, vanished cgroups and every
// `relistPeriodMs`); disk usage of writable layers and volumes from disk-usage.ts, every `slowPeriodMs` (1 min).
import { statSync } from 'node:fs';
import path from 'node:path';
import type { ImageService } from '../cri/index.ts';
import { Backoff, jitter, type BackoffPolicy, type Logger } from '../lib/index.ts';
import { CgroupReader, newRef, type CgroupRef } from './cgroup-reader.ts';
import { containerCgroupPath, parseMountInfo, parseProcCgroup, podsCgroupPath, readKernelFile, type CgroupLayout, type ReadFn } from './cgroups.ts';
import { DiskUsageCache } from './disk-usage.ts';
import { statFs } from './fs.ts';
import { parseLoadavg, readBootTimeMs, readMachineInfo } from './machine.ts';
import { parseDefaultRoute, parseNetDev } from './netdev.ts';
import type { StatsProvider } from './provider.ts';
import { ContainerTracker, type StatsRuntime, type Tracked } from './tracker.ts';
import type { ContainerSample, FsSample, MachineInfo, NodeSample, PodSample, StatsSnapshot, SystemContainerSample, VolumeSample } from './types.ts';

/** ±10 %: ticks stay regular but several berths (or a restart) do not read in lockstep. */
const TICK_JITTER = 0.1;
/** A broken runtime events stream is reopened after 1 s doubling to 30 s, ±10 %; an event resets it. */
const EVENTS_RETRY_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, jitter: TICK_JITTER };

export type { StatsRuntime } from './tracker.ts';

export interface HousekeepingOptions {
  runtime: StatsRuntime;
  images?: Pick<ImageService, 'listImages'>;
  /** Only containers labelled io.berth.node=<nodeName> are tracked. */
  nodeName: string;
  /** berth's root dir: nodefs, and <rootDir>/pods/<uid>/volumes for volume stats. */
  rootDir: string;
  /** Docker's data root: imagefs and the overlay2 writable layers (default /var/lib/docker). */
  dockerDataRoot?: string;
  intervalMs?: number;
  slowPeriodMs?: number;
  relistPeriodMs?: number;
  log: Logger;
  /** Test seams. */
  read?: ReadFn;
  now?: () => number;
}

type Resolved = Required<Omit<HousekeepingOptions, 'images'>> & Pick<HousekeepingOptions, 'images'>;

export class Housekeeping implements StatsProvider {
  private readonly o: Resolved;
  private readonly layout: CgroupLayout;
  private readonly reader: CgroupReader;
  private readonly tracker: ContainerTracker;
  private readonly disk: DiskUsageCache;
  private machineInfo: MachineInfo;
  private readonly bootTimeMs: number;
  private readonly defaultIface?: string;
  private readonly nodeRef: CgroupRef = newRef('/');
  private readonly podCgroups = new Map<string, CgroupRef>();
  private readonly systemCgroups: { name: SystemContainerSample['name']; ref: CgroupRef; startTimeMs: number }[] = [];
  private readonly subscribers = new Set<(s: StatsSnapshot) => void>();
  private snap?: StatsSnapshot;
  private lastRelistMs = 0;
  private lastSlowMs = 0;
  private slowRunning = false;
  private running?: Promise<StatsSnapshot>;
  private timer?: NodeJS.Timeout;
  private abort?: AbortController;

  constructor(opts: HousekeepingOptions) {
    this.o = { dockerDataRoot: '/var/lib/docker', intervalMs: 10_000, slowPeriodMs: 60_000, relistPeriodMs: 60_000, read: readKernelFile, now: Date.now, ...opts };
    this.layout = parseMountInfo(this.o.read('/proc/self/mountinfo') ?? '');
    this.reader = new CgroupReader(this.layout, this.o.read);
    this.tracker = new ContainerTracker({ runtime: this.o.runtime, nodeName: this.o.nodeName, layout: this.layout, read: this.o.read, log: this.o.log });
    this.disk = new DiskUsageCache({ rootDir: this.o.rootDir, dockerDataRoot: this.o.dockerDataRoot, images: this.o.images, log: this.o.log, now: this.o.now });
    this.machineInfo = readMachineInfo(this.layout, this.tracker.driver);
    this.bootTimeMs = readBootTimeMs();
    this.defaultIface = parseDefaultRoute(this.o.read('/proc/net/route'));
    this.initSystemContainers();
  }

  machine(): MachineInfo {
    return this.machineInfo;
  }
  latest(): StatsSnapshot | undefined {
    return this.snap;
  }
  onHousekeeping(cb: (snap: StatsSnapshot) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  /** Starts the tick and the Docker event watch. Idempotent. */
  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    void this.watchEvents(this.abort.signal);
    const tick = (): void => {
      this.refresh()
        .catch((err: unknown) => this.o.log.warn({ err }, 'housekeeping failed'))
        .finally(() => {
          if (!this.abort?.signal.aborted) this.timer = setTimeout(tick, jitter(this.o.intervalMs, TICK_JITTER));
        });
    };
    tick();
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Marks the container set stale (e.g. after a PLEG relist saw a change); the next pass relists. */
  invalidate(): void {
    this.tracker.dirty = true;
  }

  refresh(): Promise<StatsSnapshot> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async watchEvents(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(EVENTS_RETRY_BACKOFF);
    while (!signal.aborted) {
      try {
        for await (const _ of this.o.runtime.events(signal)) {
          this.tracker.dirty = true;
          backoff.reset();
        }
      } catch (err: unknown) {
        this.o.log.debug({ err }, 'runtime events stream broke');
      }
      if (signal.aborted) return;
      this.tracker.dirty = true;
      await new Promise((r) => setTimeout(r, backoff.next()).unref());
    }
  }

  private async pass(): Promise<StatsSnapshot> {
    if (this.tracker.dirty || this.o.now() - this.lastRelistMs >= this.o.relistPeriodMs) await this.relist();
    const cpu0 = process.cpuUsage();
    this.reader.nextPass();
    const t = this.o.now();
    const node = this.sampleNode(t);
    const pods: PodSample[] = [];
    for (const [uid, members] of this.tracker.byPod()) pods.push(this.samplePod(uid, members, t, node.fs));
    const d = process.cpuUsage(cpu0);
    const snap: StatsSnapshot = Object.freeze({ timeMs: t, passCpuMicros: d.user + d.system, node, pods });
    this.snap = snap;
    for (const cb of this.subscribers) {
      try {
        cb(snap);
      } catch (err: unknown) {
        this.o.log.warn({ err }, 'housekeeping subscriber failed');
      }
    }
    if (t - this.lastSlowMs >= this.o.slowPeriodMs && !this.slowRunning) {
      this.lastSlowMs = t;
      this.slowRunning = true;
      const containers = [...this.tracker.tracked.values()].map((c) => ({ id: c.id, isSandbox: c.isSandbox, podUid: c.pod.uid }));
      void this.disk.refresh(containers, this.abort?.signal).finally(() => {
        this.slowRunning = false;
      });
    }
    return snap;
  }

  private async relist(): Promise<void> {
    this.lastRelistMs = this.o.now();
    const uids = await this.tracker.relist();
    for (const uid of this.podCgroups.keys()) if (!uids.has(uid)) this.podCgroups.delete(uid);
    if (this.tracker.driver !== this.machineInfo.cgroupDriver) {
      this.machineInfo = { ...this.machineInfo, cgroupDriver: this.tracker.driver };
      const pods = this.systemCgroups.find((s) => s.name === 'pods');
      if (pods) pods.ref = newRef(podsCgroupPath(this.tracker.driver));
    }
  }

  private sampleNode(t: number): NodeSample {
    const root = this.reader.sample(this.nodeRef, t, true);
    if (root.memory) {
      // The node's available memory is capacity − working set (upstream eviction's memory.available).
      root.memory.limitBytes = this.machineInfo.memoryCapacityBytes;
      root.memory.availableBytes = Math.max(0, this.machineInfo.memoryCapacityBytes - root.memory.workingSetBytes);
    }
    const load = parseLoadavg(this.o.read('/proc/loadavg'));
    const pidMax = Number((this.o.read('/proc/sys/kernel/pid_max') ?? '').trim());
    const imageFs = statFs(this.o.dockerDataRoot, t);
    if (imageFs && this.disk.imagesBytes !== undefined) imageFs.usedBytes = this.disk.imagesBytes;
    const ifaces = parseNetDev(this.o.read('/proc/1/net/dev') ?? this.o.read('/proc/net/dev'));
    return {
      startTimeMs: this.bootTimeMs,
      cpu: root.cpu,
      memory: root.memory,
      network: { timeMs: t, defaultInterface: this.defaultIface, interfaces: ifaces },
      fs: statFs(existingAncestor(this.o.rootDir), t),
      imageFs,
      ...(load ? { load: { load1: load.load1, load5: load.load5, load15: load.load15 } } : {}),
      ...(load && Number.isFinite(pidMax) ? { rlimit: { timeMs: t, maxPid: pidMax, curProc: load.tasks } } : {}),
      systemContainers: this.systemCgroups.map((s) => ({ name: s.name, startTimeMs: s.startTimeMs, cgroupPath: s.ref.path, ...this.reader.sample(s.ref, t) })),
    };
  }

  private samplePod(uid: string, members: Tracked[], t: number, nodeFs: FsSample | undefined): PodSample {
    const sandbox = members.find((m) => m.isSandbox);
    const first = sandbox ?? members[0]!;
    const containers: ContainerSample[] = [];
    let sandboxSample: ContainerSample | undefined;
    for (const m of members) {
      const s = this.reader.sample(m.ref, t);
      if (!s.cpu && !s.memory) {
        this.tracker.dirty = true; // the cgroup is gone: the container stopped; relist next pass
        continue;
      }
      const rootfs = this.disk.rootfs(m.id);
      const cs: ContainerSample = {
        id: m.id,
        name: m.name,
        dockerName: m.dockerName,
        pod: m.pod,
        image: m.image,
        startTimeMs: m.startTimeMs,
        cgroupPath: m.cgroupPath,
        ...s,
        logs: m.isSandbox ? undefined : logStats(m.logPath, t, nodeFs),
        rootfs: rootfs ? { ...rootfs, ...fsTotals(nodeFs) } : undefined,
      };
      if (m.isSandbox) sandboxSample = cs;
      else containers.push(cs);
    }
    // The pod cgroup is the sandbox's parent (/kubepods/<qos>/pod<uid>, or the systemd driver's slice).
    const podPath = sandbox ? path.posix.dirname(sandbox.cgroupPath) : undefined;
    let ref = this.podCgroups.get(uid);
    if (podPath && ref?.path !== podPath) this.podCgroups.set(uid, (ref = newRef(podPath)));
    const network = sandbox && sandbox.pid > 0 ? this.o.read(`/proc/${sandbox.pid}/net/dev`) : undefined;
    return {
      pod: first.pod,
      startTimeMs: sandbox?.startTimeMs ?? first.startTimeMs,
      cgroupPath: ref?.path,
      ...(ref ? this.reader.sample(ref, t) : {}),
      network: network === undefined ? undefined : { timeMs: t, defaultInterface: 'eth0', interfaces: parseNetDev(network) },
      containers,
      sandbox: sandboxSample,
      volumes: this.disk.volumes(uid),
      ephemeralStorage: ephemeralStorage(containers, this.disk.nodeFsVolumes(uid), nodeFs, t),
    };
  }

  /**
   * The Summary's system containers: `kubelet` (berth's own cgroup), `runtime` (dockerd's, from
   * /var/run/docker.pid) and `pods` (/kubepods). A process's cgroup may differ per v1 controller; a controller in
   * which the process sits at the root is left out, so the whole machine is never reported as berth or dockerd.
   */
  private initSystemContainers(): void {
    const processRef = (pid: number | 'self'): CgroupRef | undefined => {
      const proc = parseProcCgroup(this.o.read(`/proc/${pid}/cgroup`) ?? '');
      const main = containerCgroupPath(this.layout, proc);
      if (main === undefined) return undefined;
      if (this.layout.version === 2) return main === '/' ? undefined : newRef(main);
      const v1Paths = new Map([...proc].filter(([c, p]) => c !== '' && p !== '/'));
      return v1Paths.size === 0 ? undefined : newRef(main, { v1Paths });
    };
    const dockerPid = Number((this.o.read('/var/run/docker.pid') ?? '').trim());
    const add = (name: SystemContainerSample['name'], ref: CgroupRef | undefined, pid?: number): void => {
      if (ref) this.systemCgroups.push({ name, ref, startTimeMs: pid ? processStartMs(pid, this.bootTimeMs, this.o.read) : this.bootTimeMs });
    };
    add('kubelet', processRef('self'), process.pid);
    if (dockerPid > 0) add('runtime', processRef(dockerPid), dockerPid);
    add('pods', newRef(podsCgroupPath(this.tracker.driver)));
  }
}

/** The container's log file (the /var/log/pods symlink resolves to Docker's json log): one stat per pass. */
function logStats(logPath: string, t: number, nodeFs: FsSample | undefined): FsSample | undefined {
  if (!logPath) return undefined;
  try {
    const st = statSync(logPath);
    return { timeMs: t, usedBytes: st.blocks * 512, inodesUsed: 1, ...fsTotals(nodeFs) };
  } catch {
    return undefined;
  }
}

/** berth's root dir may not exist yet (standalone before the first pod): its filesystem is its nearest ancestor's. */
function existingAncestor(dir: string): string {
  let d = path.resolve(dir);
  while (d !== '/') {
    try {
      statSync(d);
      return d;
    } catch {
      d = path.dirname(d);
    }
  }
  return d;
}

function fsTotals(nodeFs: FsSample | undefined): Partial<FsSample> {
  if (!nodeFs) return {};
  return { capacityBytes: nodeFs.capacityBytes, availableBytes: nodeFs.availableBytes, inodes: nodeFs.inodes, inodesFree: nodeFs.inodesFree };
}

/** Upstream's ephemeral storage (pkg/kubelet/stats/helper.go): containers' rootfs + logs + the pod's volumes on nodefs. */
function ephemeralStorage(containers: ContainerSample[], volumes: VolumeSample[], nodeFs: FsSample | undefined, t: number): FsSample | undefined {
  let used = 0;
  let inodes = 0;
  let any = false;
  for (const f of [...containers.flatMap((c) => [c.rootfs, c.logs]), ...volumes]) {
    if (f?.usedBytes === undefined) continue;
    any = true;
    used += f.usedBytes;
    inodes += f.inodesUsed ?? 0;
  }
  return any ? { timeMs: t, ...fsTotals(nodeFs), usedBytes: used, inodesUsed: inodes } : undefined;
}

/** Start time of a process from /proc/<pid>/stat field 22 (clock ticks after boot, USER_HZ 100). */
function processStartMs(pid: number, bootMs: number, read: ReadFn): number {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return bootMs;
  const ticks = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isFinite(ticks) ? bootMs + ticks * 10 : bootMs;
}
