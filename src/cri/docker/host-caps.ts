// What this host lets containers have. A host (or a container running berth) whose capability bounding set
// lacks CAP_SYS_RESOURCE cannot start a container with a negative OomScoreAdj (runc: "can't get final child's
// PID from pipe: EOF") and cannot start any `Privileged` container ("unable to apply caps"). berth probes the
// bounding set once and adapts: it clamps OomScoreAdj and turns `privileged` into "every capability the host
// has, unconfined seccomp/AppArmor, unmasked /proc, all devices allowed by the device cgroup".
import { readFileSync } from 'node:fs';

/** Linux capability numbers (include/uapi/linux/capability.h), index = bit. */
export const CAP_NAMES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

export interface HostCaps {
  /** Capability names in the bounding set (unknown bits as `CAP_<n>`). */
  bounding: string[];
  /** Capabilities the kernel knows (0..cap_last_cap) that the bounding set lacks. Empty = full set. */
  missing: string[];
  /** false when CAP_SYS_RESOURCE is missing: OomScoreAdj cannot go below `minOomScoreAdj`. */
  canLowerOomScoreAdj: boolean;
  /** The process's own oom_score_adj: the floor for containers when canLowerOomScoreAdj is false. */
  minOomScoreAdj: number;
}

export function capName(bit: number): string {
  return CAP_NAMES[bit] ?? `CAP_${bit}`;
}

/** Bits set in a /proc/<pid>/status capability mask ("000001fffeffffff"). Throws on a malformed mask. */
export function parseCapMask(hex: string): number[] {
  const clean = hex.trim();
  if (!/^[0-9a-fA-F]{1,16}$/.test(clean)) throw new Error(`malformed capability mask ${JSON.stringify(hex)}`);
  const mask = BigInt('0x' + clean);
  const bits: number[] = [];
  for (let bit = 0; bit < 64; bit++) if ((mask >> BigInt(bit)) & 1n) bits.push(bit);
  return bits;
}

/** The CapBnd field of a /proc/<pid>/status text. */
export function parseCapBnd(statusText: string): number[] {
  const m = /^CapBnd:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (!m?.[1]) throw new Error('no CapBnd line in process status');
  return parseCapMask(m[1]);
}

export function computeHostCaps(input: { capBnd: number[]; capLastCap: number; oomScoreAdj: number }): HostCaps {
  const have = new Set(input.capBnd);
  const missing: string[] = [];
  for (let bit = 0; bit <= input.capLastCap; bit++) if (!have.has(bit)) missing.push(capName(bit));
  const sysResource = CAP_NAMES.indexOf('CAP_SYS_RESOURCE');
  return {
    bounding: [...have].sort((a, b) => a - b).map(capName),
    missing,
    canLowerOomScoreAdj: have.has(sysResource),
    minOomScoreAdj: input.oomScoreAdj,
  };
}

/** Reads the probe inputs from /proc (berth's own process). */
export function readHostCaps(procRoot = '/proc'): HostCaps {
  const status = readFileSync(`${procRoot}/self/status`, 'utf8');
  const capBnd = parseCapBnd(status);
  let capLastCap = Math.max(...capBnd, CAP_NAMES.length - 1);
  try {
    capLastCap = Number(readFileSync(`${procRoot}/sys/kernel/cap_last_cap`, 'utf8').trim());
  } catch {
    // Older or restricted /proc: assume the kernel knows every capability berth knows.
  }
  let oomScoreAdj = 0;
  try {
    oomScoreAdj = Number(readFileSync(`${procRoot}/self/oom_score_adj`, 'utf8').trim()) || 0;
  } catch {
    // Not readable: 0 is the kernel default.
  }
  return computeHostCaps({ capBnd, capLastCap, oomScoreAdj });
}

/** A host where containers can get everything (Privileged works, OomScoreAdj may be negative). */
export const FULL_HOST_CAPS: HostCaps = {
  bounding: [...CAP_NAMES],
  missing: [],
  canLowerOomScoreAdj: true,
  minOomScoreAdj: -1000,
};

export function clampOomScoreAdj(value: number, caps: HostCaps): number {
  const v = Math.max(-1000, Math.min(1000, Math.trunc(value)));
  return caps.canLowerOomScoreAdj ? v : Math.max(v, caps.minOomScoreAdj);
}

/** How a privileged container is expressed to Docker on this host. */
export interface PrivilegedSettings {
  privileged: boolean;
  capAdd: string[];
  securityOpt: string[];
  deviceCgroupRules: string[];
  /** Clear Docker's masked and read-only /proc paths (the API form of `--security-opt systempaths=unconfined`). */
  unmaskPaths: boolean;
}

/**
 * `Privileged: true` when the bounding set is full; otherwise the closest Docker allows: every capability the
 * host has (not `ALL`, which includes the missing ones), no seccomp/AppArmor confinement, /proc unmasked
 * (empty MaskedPaths/ReadonlyPaths: what the CLI sends for `--security-opt systempaths=unconfined`, API >= 1.40;
 * the daemon itself rejects that option) and all devices allowed in the device cgroup. /sys stays read-only and
 * host device nodes are not bind-mounted (Docker ties both to Privileged).
 */
export function buildPrivilegedSettings(caps: HostCaps): PrivilegedSettings {
  if (caps.missing.length === 0) {
    return { privileged: true, capAdd: [], securityOpt: [], deviceCgroupRules: [], unmaskPaths: false };
  }
  return {
    privileged: false,
    capAdd: caps.bounding.filter((c) => CAP_NAMES.includes(c)),
    securityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
    deviceCgroupRules: ['a *:* rwm'],
    unmaskPaths: true,
  };
}
