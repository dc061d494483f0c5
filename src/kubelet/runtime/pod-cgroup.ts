// The pod-level cgroup (/kubepods[/<qos>]/pod<uid>): its limits are the pod's summed limits, so a pod cannot
// go over them through a second container. computePodResourceConfig follows pkg/kubelet/cm/helpers_linux.go
// ResourceConfigForPod (with resource.PodRequestsAndLimits: app containers summed, each init container as a
// floor, overhead added); applyPodCgroup writes the values into the cgroup files Docker's cgroupfs driver
// created for the sandbox (v1: cpu and memory controllers; v2: the unified hierarchy).
import { readFile, writeFile } from 'node:fs/promises';
import type { Pod } from 'kubernetes-types/core/v1';
import { controllerDir, parseMountInfo, type CgroupLayout } from '../../cadvisor/index.ts';
import { bytes, cpuMillis } from '../pod/quantity.ts';
import { getQOSClass } from '../pod/pod-status.ts';
import { milliCPUToQuota, milliCPUToShares, podCgroupParent } from './container-config.ts';

const CPU_PERIOD_US = 100_000;
const MIN_SHARES = 2;

/** ResourceConfig: undefined fields are left as they are. */
export interface PodResourceConfig {
  cpuShares?: number;
  /** -1 = no quota. */
  cpuQuota?: number;
  cpuPeriod?: number;
  memoryLimitBytes?: number;
}

interface Totals {
  cpuReqMilli: number;
  cpuLimMilli: number;
  memLimBytes: number;
}

/** resource.PodRequestsAndLimits for cpu and memory (limits only where declared; overhead on declared limits). */
function podRequestsAndLimits(pod: Pod): Totals {
  const t: Totals = { cpuReqMilli: 0, cpuLimMilli: 0, memLimBytes: 0 };
  for (const c of pod.spec?.containers ?? []) {
    t.cpuReqMilli += cpuMillis(c.resources?.requests?.cpu ?? c.resources?.limits?.cpu);
    t.cpuLimMilli += cpuMillis(c.resources?.limits?.cpu);
    t.memLimBytes += bytes(c.resources?.limits?.memory);
  }
  for (const c of pod.spec?.initContainers ?? []) {
    t.cpuReqMilli = Math.max(t.cpuReqMilli, cpuMillis(c.resources?.requests?.cpu ?? c.resources?.limits?.cpu));
    t.cpuLimMilli = Math.max(t.cpuLimMilli, cpuMillis(c.resources?.limits?.cpu));
    t.memLimBytes = Math.max(t.memLimBytes, bytes(c.resources?.limits?.memory));
  }
  const o = pod.spec?.overhead ?? {};
  if (o.cpu !== undefined) {
    t.cpuReqMilli += cpuMillis(o.cpu);
    if (t.cpuLimMilli > 0) t.cpuLimMilli += cpuMillis(o.cpu);
  }
  if (o.memory !== undefined && t.memLimBytes > 0) t.memLimBytes += bytes(o.memory);
  return t;
}

/** ResourceConfigForPod (CFS quota enforced, 100 ms period). Pure. */
export function computePodResourceConfig(pod: Pod): PodResourceConfig {
  const t = podRequestsAndLimits(pod);
  const cpuShares = milliCPUToShares(t.cpuReqMilli);
  const cpuQuota = milliCPUToQuota(t.cpuLimMilli, CPU_PERIOD_US);
  // A limit counts only when every app container declares it (init containers are not looked at).
  const cpuLimitsDeclared = (pod.spec?.containers ?? []).every((c) => cpuMillis(c.resources?.limits?.cpu) > 0);
  const memoryLimitsDeclared = (pod.spec?.containers ?? []).every((c) => bytes(c.resources?.limits?.memory) > 0);
  const qos = getQOSClass(pod);
  if (qos === 'Guaranteed') return { cpuShares, cpuQuota, cpuPeriod: CPU_PERIOD_US, memoryLimitBytes: t.memLimBytes };
  if (qos === 'Burstable') {
    const out: PodResourceConfig = { cpuShares };
    if (cpuLimitsDeclared) {
      out.cpuQuota = cpuQuota;
      out.cpuPeriod = CPU_PERIOD_US;
    }
    if (memoryLimitsDeclared) out.memoryLimitBytes = t.memLimBytes;
    return out;
  }
  return { cpuShares: MIN_SHARES };
}

/** One cgroup file write. */
export interface CgroupWrite {
  file: string;
  value: string;
}

/** cgroup v2 cpu.weight from v1 shares (libcontainer ConvertCPUSharesToCgroupV2Value). */
export const sharesToWeight = (shares: number): number => (shares === 0 ? 0 : 1 + Math.floor(((shares - 2) * 9999) / 262142));

/**
 * The files to write for `cfg` on the pod cgroup `cgroupPath` (e.g. /kubepods/burstable/pod<uid>), in an
 * order the kernel accepts (period before quota). Pure.
 */
export function computePodCgroupWrites(layout: CgroupLayout, cgroupPath: string, cfg: PodResourceConfig): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  const at = (ctrl: 'cpu' | 'memory' | '', name: string, value: string): void => {
    const dir = controllerDir(layout, layout.version === 2 ? '' : ctrl, cgroupPath);
    if (dir) out.push({ file: `${dir}/${name}`, value });
  };
  if (layout.version === 1) {
    if (cfg.cpuShares !== undefined) at('cpu', 'cpu.shares', String(cfg.cpuShares));
    if (cfg.cpuPeriod !== undefined) at('cpu', 'cpu.cfs_period_us', String(cfg.cpuPeriod));
    if (cfg.cpuQuota !== undefined) at('cpu', 'cpu.cfs_quota_us', String(cfg.cpuQuota > 0 ? cfg.cpuQuota : -1));
    if (cfg.memoryLimitBytes !== undefined) at('memory', 'memory.limit_in_bytes', cfg.memoryLimitBytes > 0 ? String(cfg.memoryLimitBytes) : '-1');
  } else {
    if (cfg.cpuShares !== undefined) at('', 'cpu.weight', String(sharesToWeight(cfg.cpuShares)));
    if (cfg.cpuQuota !== undefined || cfg.cpuPeriod !== undefined) {
      const period = cfg.cpuPeriod ?? CPU_PERIOD_US;
      at('', 'cpu.max', `${cfg.cpuQuota !== undefined && cfg.cpuQuota > 0 ? cfg.cpuQuota : 'max'} ${period}`);
    }
    if (cfg.memoryLimitBytes !== undefined) at('', 'memory.max', cfg.memoryLimitBytes > 0 ? String(cfg.memoryLimitBytes) : 'max');
  }
  return out;
}

let layoutPromise: Promise<CgroupLayout> | undefined;
const hostLayout = (): Promise<CgroupLayout> => (layoutPromise ??= readFile('/proc/self/mountinfo', 'utf8').then(parseMountInfo));

/**
 * Writes the pod's summed limits into its cgroup (idempotent: the same values each time). Call after the
 * sandbox started (Docker creates the directories then). Throws when a write fails (e.g. the cgroup
 * does not exist, as with the systemd driver's slices): the caller reports it.
 */
export async function applyPodCgroup(pod: Pod, layout?: CgroupLayout): Promise<PodResourceConfig> {
  const cfg = computePodResourceConfig(pod);
  for (const w of computePodCgroupWrites(layout ?? (await hostLayout()), podCgroupParent(pod), cfg)) await writeFile(w.file, w.value);
  return cfg;
}
