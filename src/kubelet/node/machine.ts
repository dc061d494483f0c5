// Machine facts for the Node status: the static ones (cores, memory, machine/boot ids, kernel, OS image, huge page
// sizes) read once at start, the dynamic ones (memory available, filesystem space, pids) at every status update.
// systeminformation supplies CPU, memory, machine id and OS facts; files under /proc, /sys and /etc fill in what it
// does not report as the kubelet (cAdvisor) does: PRETTY_NAME, the DMI product uuid, the boot id, huge pages, pids.
// Every read is tolerant: a missing file gives an empty value, never an exception.
import { readFile, readdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as si from 'systeminformation';
import type { FsStats, MachineInfo, NodeStats } from './node-status.ts';

/** How the node manager reads the machine. The host implementation is `hostMachineReader`; tests pass fakes. */
export interface MachineReader {
  /** Static facts; called once at start. Never rejects. */
  machineInfo(): Promise<MachineInfo>;
  /** Dynamic readings; called at every status update (cheap: a few /proc reads and two statfs). Never rejects. */
  nodeStats(): Promise<NodeStats>;
}

export interface HostMachineReaderOptions {
  /** The kubelet root dir: its filesystem is the node's ephemeral storage (nodefs). */
  rootDir: string;
  /** The runtime's image store (imagefs), default /var/lib/docker. */
  imageFsDir?: string | undefined;
  /** Prefix for /proc, /sys, /etc (tests). Default '/'. */
  hostRoot?: string | undefined;
}

async function readText(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return '';
  }
}

/** PRETTY_NAME from os-release text (cadvisor's getOperatingSystem), '' when absent. */
export function parseOsRelease(text: string): string {
  for (const line of text.split('\n')) {
    const m = /^PRETTY_NAME=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[1]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    return v.replace(/\\(["'$`\\])/g, '$1');
  }
  return '';
}

/** `hugepages-2048kB` → 2 MiB. */
export function parseHugePageDir(name: string): number | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(name);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Total threads from /proc/loadavg ("0.1 0.2 0.3 2/298 7915" → 298), as sysinfo(2)'s procs. */
export function parseLoadavgThreads(text: string): number | undefined {
  const m = /\s\d+\/(\d+)\s/.exec(` ${text} `);
  return m ? Number(m[1]) : undefined;
}

/** The nearest existing ancestor of `dir` (the root dir may not exist before the first pod). */
async function fsStatsOf(dir: string): Promise<FsStats | undefined> {
  let p = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(p);
      return {
        capacityBytes: s.blocks * s.bsize,
        availableBytes: s.bavail * s.bsize,
        inodes: s.files,
        inodesFree: s.ffree,
      };
    } catch {
      const parent = path.dirname(p);
      if (parent === p) return undefined;
      p = parent;
    }
  }
}

export function hostMachineReader(opts: HostMachineReaderOptions): MachineReader {
  const root = opts.hostRoot ?? '/';
  const at = (p: string): string => path.join(root, p);
  const imageFsDir = opts.imageFsDir ?? '/var/lib/docker';
  return {
    async machineInfo(): Promise<MachineInfo> {
      const [cpu, mem, uuid, osInfo, osRelease, productUuid, bootID, machineIdFile] = await Promise.all([
        si.cpu().catch(() => undefined),
        si.mem().catch(() => undefined),
        si.uuid().catch(() => undefined),
        si.osInfo().catch(() => undefined),
        readText(at('etc/os-release')),
        readText(at('sys/class/dmi/id/product_uuid')),
        readText(at('proc/sys/kernel/random/boot_id')),
        readText(at('etc/machine-id')),
      ]);
      const hugePages: MachineInfo['hugePages'] = [];
      try {
        for (const d of await readdir(at('sys/kernel/mm/hugepages'))) {
          const sizeBytes = parseHugePageDir(d);
          if (sizeBytes === undefined) continue;
          const count = Number(await readText(at(`sys/kernel/mm/hugepages/${d}/nr_hugepages`))) || 0;
          hugePages.push({ sizeBytes, count });
        }
      } catch {
        // no huge page support
      }
      hugePages.sort((a, b) => a.sizeBytes - b.sizeBytes);
      return {
        numCores: cpu?.cores || os.cpus().length || 1,
        memoryCapacityBytes: mem?.total || os.totalmem(),
        machineID: machineIdFile || uuid?.os || (await readText(at('var/lib/dbus/machine-id'))),
        systemUUID: productUuid,
        bootID,
        kernelVersion: osInfo?.kernel || os.release(),
        osImage: parseOsRelease(osRelease) || [osInfo?.distro, osInfo?.release].filter(Boolean).join(' '),
        hugePages,
      };
    },

    async nodeStats(): Promise<NodeStats> {
      const [mem, nodeFs, imageFs, loadavg, pidMax, threadsMax] = await Promise.all([
        si.mem().catch(() => undefined),
        fsStatsOf(opts.rootDir),
        fsStatsOf(imageFsDir),
        readText(at('proc/loadavg')),
        readText(at('proc/sys/kernel/pid_max')),
        readText(at('proc/sys/kernel/threads-max')),
      ]);
      const running = parseLoadavgThreads(loadavg);
      const limits = [Number(pidMax), Number(threadsMax)].filter((n) => Number.isFinite(n) && n > 0);
      return {
        memoryAvailableBytes: mem?.available,
        nodeFs,
        imageFs,
        pids: running !== undefined && limits.length > 0 ? { max: Math.min(...limits), running } : undefined,
      };
    },
  };
}
