// Where the cgroup hierarchies are and which layout Docker uses, found once at start from /proc/self/mountinfo
// (v1: one mount per controller or per comounted set such as cpu,cpuacct; v2: one cgroup2 mount, no v1
// controllers) and from the containers' own /proc/<pid>/cgroup (the systemd driver names them
// `docker-<id>.scope` inside `….slice` parents; cgroupfs uses `<parent>/<id>`). Reading /proc/<pid>/cgroup
// once per container, when it is first seen, gives the exact path under either driver.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type ReadFn = (absPath: string) => string | undefined;

/** Reads a small kernel file; undefined when it does not exist (or the cgroup vanished mid-read). */
export const readKernelFile: ReadFn = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'blkio'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

export interface CgroupLayout {
  version: 1 | 2;
  /** v1: mount point per controller we read. */
  v1: Partial<Record<V1Controller, string>>;
  /** v2: the cgroup2 mount point (also set on v1 hosts that have a hybrid `unified` mount; unused there). */
  unified?: string;
}

/** Parses /proc/self/mountinfo into the cgroup layout. A host with any v1 controller we read is v1. */
export function parseMountInfo(text: string): CgroupLayout {
  const layout: CgroupLayout = { version: 2, v1: {} };
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const mountPoint = pre[4];
    const fstype = post[0];
    if (!mountPoint) continue;
    if (fstype === 'cgroup2') layout.unified ??= mountPoint;
    else if (fstype === 'cgroup') {
      const opts = (post[2] ?? '').split(',');
      for (const c of V1_CONTROLLERS) if (opts.includes(c)) layout.v1[c] ??= mountPoint;
    }
  }
  if (Object.keys(layout.v1).length > 0) layout.version = 1;
  return layout;
}

/**
 * Parses /proc/<pid>/cgroup: v1 lines `id:ctrl[,ctrl]:/path`, v2 line `0::/path`. Returns the path per
 * controller ('' is the unified hierarchy).
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const ctrls = m[1]!;
    if (ctrls === '') out.set('', m[2]!);
    else for (const c of ctrls.split(',')) out.set(c, m[2]!);
  }
  return out;
}

/** The path of a container's cgroup as berth names it in samples (the memory controller's, or the unified one). */
export function containerCgroupPath(layout: CgroupLayout, procCgroup: Map<string, string>): string | undefined {
  return layout.version === 1 ? (procCgroup.get('memory') ?? procCgroup.get('cpuacct')) : procCgroup.get('');
}

/** systemd driver when the path ends in a `.scope` (docker-<id>.scope) or sits in a `.slice`. */
export function detectDriver(cgroupPath: string | undefined): 'cgroupfs' | 'systemd' {
  if (!cgroupPath) return 'cgroupfs';
  return /\.scope$/.test(cgroupPath) || /\.slice(\/|$)/.test(cgroupPath) ? 'systemd' : 'cgroupfs';
}

/** Directory of `cgroupPath` under a controller's mount (v1) or the unified mount (v2). */
export function controllerDir(layout: CgroupLayout, controller: V1Controller | '', cgroupPath: string): string | undefined {
  const mount = layout.version === 2 || controller === '' ? layout.unified : layout.v1[controller];
  return mount === undefined ? undefined : path.join(mount, cgroupPath);
}

/** The kubelet's `pods` cgroup: /kubepods (cgroupfs) or /kubepods.slice (systemd). */
export const podsCgroupPath = (driver: 'cgroupfs' | 'systemd'): string => (driver === 'systemd' ? '/kubepods.slice' : '/kubepods');

/**
 * Parses "key value" lines (memory.stat, cpu.stat, cpuacct.stat). Non-numeric values are skipped. With `prefix`,
 * only keys starting with it are kept (v1 memory.stat: the hierarchical total_* half).
 */
export function parseFlatKeyed(text: string | undefined, prefix?: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!text) return out;
  for (const line of text.split('\n')) {
    if (prefix && !line.startsWith(prefix)) continue;
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const n = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(n)) out.set(line.slice(0, sp), n);
  }
  return out;
}

/** A single number file (memory.usage_in_bytes); `max` → Infinity; undefined when missing or garbled. */
export function parseSingle(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max') return Infinity;
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** cAdvisor's working set: usage − inactive_file, floored at 0 (container/libcontainer/handler.go setMemoryStats). */
export function computeWorkingSet(usageBytes: number, inactiveFileBytes: number | undefined): number {
  if (inactiveFileBytes === undefined) return usageBytes;
  return usageBytes < inactiveFileBytes ? 0 : usageBytes - inactiveFileBytes;
}

/** v1 reports "no limit" as PAGE_COUNTER_MAX × page size (≈ 2^63); anything at or above 2^60 is unlimited. */
export function limitOrUndefined(n: number | undefined): number | undefined {
  if (n === undefined || !Number.isFinite(n) || n >= 2 ** 60) return undefined;
  return n;
}
