// The stats provider (Housekeeping) against real containers made through berth's own DockerRuntime (so labels,
// cgroup parents /kubepods/besteffort/pod<uid>, log symlinks and network namespaces are exactly berth's):
// a container burning one CPU, one holding 64 MiB, one receiving bytes over the pod network, one writing logs.
// Everything is labelled with a random node name and removed afterwards; traffic goes only to the pod created here.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Housekeeping } from '../../src/cadvisor/index.ts';
import { DockerRuntime } from '../../src/cri/docker/index.ts';
import { L, type ContainerConfig, type PodSandboxConfig } from '../../src/cri/index.ts';
import { silentLogger } from '../../src/lib/index.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';
import { waitFor } from '../helpers/wait.ts';

const RUN = randomBytes(4).toString('hex');
const NODE = `cadv-${RUN}`;
const UID = `cadv-uid-${RUN}`;
const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
const rt = new DockerRuntime({ docker, log: silentLogger });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-cadv-'));
const MiB = 2 ** 20;

const sandboxConfig: PodSandboxConfig = {
  metadata: { name: 'stats', namespace: 'cadv', uid: UID, attempt: 0 },
  hostname: 'stats',
  logDirectory: path.join(tmp, 'logs'),
  portMappings: [],
  labels: { [L.node]: NODE },
  annotations: {},
  linux: { cgroupParent: `/kubepods/besteffort/pod${UID}` },
};

function ctr(name: string, script: string): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: BUSYBOX_IMAGE,
    command: ['sh', '-c', script],
    args: [],
    envs: [],
    mounts: [],
    labels: { [L.node]: NODE },
    annotations: {},
    logPath: `${name}/0.log`,
  };
}

const ids: Record<string, string> = {};
let sandboxId = '';
let podIP = '';
const hk = new Housekeeping({ runtime: rt, images: rt, nodeName: NODE, rootDir: tmp, log: silentLogger, intervalMs: 1_000_000, slowPeriodMs: 0 });

const read = (p: string): string => readFileSync(p, 'utf8');
const memDir = (id: string): string => {
  const cg = read(`/proc/${pidOf[id]}/cgroup`).split('\n').find((l) => /:memory:/.test(l))!.split(':')[2]!;
  return `/sys/fs/cgroup/memory${cg}`;
};
const pidOf: Record<string, number> = {};

function container(name: string) {
  const snap = hk.latest()!;
  const pod = snap.pods.find((p) => p.pod.uid === UID);
  return pod?.containers.find((c) => c.name === name);
}

beforeAll(async () => {
  await ensureTestImages(docker);
  sandboxId = await rt.runPodSandbox(sandboxConfig);
  podIP = (await rt.podSandboxStatus(sandboxId)).network.ip ?? '';
  const specs: [string, string][] = [
    ['burn', 'while :; do :; done'],
    // dd reads 64 MiB from /dev/zero into its buffer, then blocks writing it to a pipe nobody reads.
    ['mem', 'dd if=/dev/zero bs=64M count=1 2>/dev/null | sleep 3600'],
    // stdin is a pipe that never ends: busybox nc closes the connection when its stdin hits EOF.
    ['net', 'sleep 3600 | nc -l -p 8080 > /dev/null'],
    ['logger', 'while :; do head -c 2000 /dev/zero | tr "\\0" x; echo; sleep 0.1; done'],
    // 2 MiB into its writable layer (the overlay2 upper dir).
    ['writer', 'head -c 2097152 /dev/zero > /blob; sleep 3600'],
  ];
  // An emptyDir-like volume as the kubelet lays it out, holding 1 MiB.
  const vol = path.join(tmp, 'pods', UID, 'volumes', 'kubernetes.io~empty-dir', 'data');
  mkdirSync(vol, { recursive: true });
  writeFileSync(path.join(vol, 'f'), Buffer.alloc(MiB, 1));
  for (const [name, script] of specs) {
    ids[name] = await rt.createContainer(sandboxId, ctr(name, script), sandboxConfig);
    await rt.startContainer(ids[name]!);
    pidOf[ids[name]!] = (await rt.containerStatus(ids[name]!)).pid;
  }
  await new Promise((r) => setTimeout(r, 1500)); // dd fills its buffer, nc listens
  await hk.refresh();
}, 120_000);

afterAll(async () => {
  hk.stop();
  if (sandboxId) await rt.stopPodSandbox(sandboxId).catch(() => undefined);
  if (sandboxId) await rt.removePodSandbox(sandboxId).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('stats from the cgroups of real containers', () => {
  it('tracks the pod by its labels: sandbox, containers, pod cgroup and Docker names', () => {
    const pod = hk.latest()!.pods.find((p) => p.pod.uid === UID)!;
    expect(pod.pod).toEqual({ name: 'stats', namespace: 'cadv', uid: UID });
    expect(pod.containers.map((c) => c.name).sort()).toEqual(['burn', 'logger', 'mem', 'net', 'writer']);
    expect(pod.sandbox?.name).toBe('POD');
    expect(pod.cgroupPath).toBe(`/kubepods/besteffort/pod${UID}`);
    expect(container('burn')!.cgroupPath).toBe(`/kubepods/besteffort/pod${UID}/${ids.burn}`);
    expect(container('burn')!.dockerName).toBe(`k8s_burn_stats_cadv_${UID}_0`);
    expect(pod.network?.interfaces.map((i) => i.name)).toContain('eth0');
  });

  it('shows a working set within 5% of the cgroup own figure for a container holding 64 MiB, above Docker usage - cache', async () => {
    const id = ids.mem!;
    const stats = (await docker.getContainer(id).stats({ stream: false })) as unknown as { memory_stats: { usage: number; stats: Record<string, number> } };
    await hk.refresh();
    const dir = memDir(id);
    const usage = Number(read(`${dir}/memory.usage_in_bytes`));
    const inactive = Number(/^total_inactive_file (\d+)$/m.exec(read(`${dir}/memory.stat`))![1]);
    const own = usage - inactive;
    const ws = container('mem')!.memory!.workingSetBytes;
    expect(Math.abs(ws - own) / own).toBeLessThan(0.05);
    expect(ws).toBeGreaterThanOrEqual(64 * MiB * 0.98);
    expect(ws).toBeLessThan(64 * MiB + 16 * MiB);
    const dockerNoCache = stats.memory_stats.usage - (stats.memory_stats.stats.total_cache ?? stats.memory_stats.stats.cache ?? 0);
    expect(ws).toBeGreaterThanOrEqual(dockerNoCache * 0.98);
  }, 60_000);

  it('moves the pod network counters by the bytes sent to the pod', async () => {
    expect(podIP).not.toBe('');
    const before = hk.latest()!.pods.find((p) => p.pod.uid === UID)!.network!.interfaces.find((i) => i.name === 'eth0')!.rxBytes;
    const payload = Buffer.alloc(1 * MiB, 'z');
    await new Promise<void>((resolve, reject) => {
      // Half-close after the payload; the receiver keeps reading until our FIN, so every byte has arrived
      // once the kernel confirms the write side drained ('finish') and a moment passed.
      const s = net.connect({ host: podIP, port: 8080 }, () => s.end(payload));
      s.on('finish', () => setTimeout(() => (s.destroy(), resolve()), 500));
      s.on('error', reject);
      s.setTimeout(15_000, () => s.destroy(new Error('send timed out')));
    });
    await hk.refresh();
    const after = hk.latest()!.pods.find((p) => p.pod.uid === UID)!.network!.interfaces.find((i) => i.name === 'eth0')!.rxBytes;
    // Payload plus TCP/IP/Ethernet headers (~66 bytes per ~1448-byte segment ≈ 5 %).
    expect(after - before).toBeGreaterThanOrEqual(MiB);
    expect(after - before).toBeLessThan(MiB * 1.1);
  }, 60_000);

  it('sees the log size grow with output', async () => {
    const first = container('logger')!.logs!.usedBytes!;
    await new Promise((r) => setTimeout(r, 3000)); // ~60 KB of output
    await hk.refresh();
    const second = container('logger')!.logs!.usedBytes!;
    expect(second).toBeGreaterThan(first);
    expect(second - first).toBeGreaterThan(16 * 1024);
  }, 30_000);

  it('shows a container burning one CPU at about one core over 20 s', async () => {
    const pid = pidOf[ids.burn!]!;
    const ticks = (): number => {
      const f = read(`/proc/${pid}/stat`).split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime, in USER_HZ (100/s)
    };
    await hk.refresh();
    const t0 = Date.now();
    const k0 = ticks();
    await new Promise((r) => setTimeout(r, 20_000));
    await hk.refresh();
    const cores = container('burn')!.cpu!.usageNanoCores! / 1e9;
    const procCores = (ticks() - k0) / 100 / ((Date.now() - t0) / 1000);
    // Independent check: the kernel's per-process accounting over the same window.
    expect(Math.abs(cores - procCores) / procCores).toBeLessThan(0.1);
    // On this shared 2-core machine the burner gets its core unless other work saturates it; then the
    // agreement with the kernel's per-process figure above is the check, and the burner must still show.
    if (procCores >= 0.9) expect(Math.abs(cores - 1)).toBeLessThan(0.1);
    else {
      process.stderr.write(`cadvisor-stats: the burner got only ${procCores.toFixed(2)} core (machine busy); checked against /proc only\n`);
      expect(cores).toBeGreaterThan(0.05);
    }
  }, 60_000);

  it('measures the writable layer and the volumes off the tick, and sums them into ephemeral storage', async () => {
    // The disk walks run after a pass (slowPeriodMs 0 here); their results show in a later snapshot.
    const pod = await waitFor(
      async () => {
        await hk.refresh();
        const p = hk.latest()!.pods.find((x) => x.pod.uid === UID)!;
        const w = p.containers.find((c) => c.name === 'writer')!;
        return (w.rootfs?.usedBytes ?? 0) >= 2 * MiB && p.volumes.length > 0 && p;
      },
      30_000,
      'rootfs and volume stats',
    );
    const writer = pod.containers.find((c) => c.name === 'writer')!;
    expect(writer.rootfs!.usedBytes).toBeLessThan(2 * MiB + 256 * 1024);
    const data = pod.volumes.find((v) => v.name === 'data')!;
    expect(data.usedBytes).toBeGreaterThanOrEqual(MiB);
    expect(data.usedBytes).toBeLessThan(MiB + 64 * 1024);
    expect(data.capacityBytes).toBeGreaterThan(0);
    const sum = pod.containers.reduce((a, c) => a + (c.rootfs?.usedBytes ?? 0) + (c.logs?.usedBytes ?? 0), 0) + data.usedBytes!;
    expect(pod.ephemeralStorage!.usedBytes).toBe(sum);
  }, 60_000);

  it('drops the containers of a removed pod on the next relist', async () => {
    await rt.stopPodSandbox(sandboxId);
    hk.invalidate();
    const snap = await hk.refresh();
    expect(snap.pods.find((p) => p.pod.uid === UID)).toBeUndefined();
  }, 60_000);
});
