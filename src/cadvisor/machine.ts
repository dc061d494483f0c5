// Machine facts read once at start: /proc and /sys are cheaper than systeminformation's shell-outs for these
// (it runs `dmidecode`/`lscpu`-like probes), and every value here is a single small file.
import os from 'node:os';
import { readKernelFile, type CgroupLayout } from './cgroups.ts';
import type { MachineInfo } from './types.ts';
import { parseMeminfo } from './cgroup-v2.ts';

export function parseOsRelease(text: string | undefined): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text ?? '');
  return m?.[1] ?? 'Linux';
}

export function readMachineInfo(layout: CgroupLayout, driver: 'cgroupfs' | 'systemd'): MachineInfo {
  const cpuinfo = readKernelFile('/proc/cpuinfo') ?? '';
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const mhz = Number(/^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]);
  const mem = parseMeminfo(readKernelFile('/proc/meminfo')).get('MemTotal') ?? os.totalmem();
  return {
    numCores: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: model,
    ...(Number.isFinite(mhz) ? { cpuMHz: mhz } : {}),
    memoryCapacityBytes: mem,
    machineId: (readKernelFile('/etc/machine-id') ?? readKernelFile('/var/lib/dbus/machine-id') ?? '').trim(),
    systemUuid: (readKernelFile('/sys/class/dmi/id/product_uuid') ?? '').trim(),
    bootId: (readKernelFile('/proc/sys/kernel/random/boot_id') ?? '').trim(),
    kernelVersion: os.release(),
    osImage: parseOsRelease(readKernelFile('/etc/os-release')),
    cgroupVersion: layout.version,
    cgroupDriver: driver,
  };
}

/** Boot time in ms from /proc/stat's btime (the node's startTime in the Summary). */
export function readBootTimeMs(): number {
  const m = /^btime (\d+)/m.exec(readKernelFile('/proc/stat') ?? '');
  return m ? Number(m[1]) * 1000 : Date.now() - os.uptime() * 1000;
}

/** /proc/loadavg: "0.10 0.20 0.30 2/345 6789" → loads and the number of tasks (threads), like sysinfo(2).procs. */
export function parseLoadavg(text: string | undefined): { load1: number; load5: number; load15: number; tasks: number } | undefined {
  const f = (text ?? '').trim().split(/\s+/);
  if (f.length < 4) return undefined;
  const tasks = Number(f[3]!.split('/')[1]);
  return { load1: Number(f[0]), load5: Number(f[1]), load15: Number(f[2]), tasks: Number.isFinite(tasks) ? tasks : 0 };
}
