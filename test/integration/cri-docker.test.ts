// DockerRuntime against the real dockerd. Everything is labelled io.berth.test-run=<run> and removed afterwards.
// Network traffic stays on loopback and inside the containers created here (the failing pull targets 127.0.0.1).
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime, PAUSE_IMAGE, readHostCaps } from '../../src/cri/docker/index.ts';
import type { ContainerConfig, ContainerStatus, PodSandboxConfig, RuntimeEvent } from '../../src/cri/index.ts';
import { silentLogger } from '../../src/lib/index.ts';
import { BUSYBOX_IMAGE, ENTRYPOINT_IMAGE, STOPSIGNAL_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

const RUN = randomBytes(4).toString('hex');
const TEST_LABEL = 'io.berth.test-run';
const NS = 'berth-test';
/** A berth-built pause image private to this run, so building it is exercised without touching PAUSE_IMAGE. */
const PAUSE = `berth.local/pause:test-${RUN}`;

const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
const rt = new DockerRuntime({ docker, log: silentLogger, pauseImage: PAUSE });
const hostCaps = readHostCaps();

let podSeq = 0;
function podConfig(over: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  const name = `p${++podSeq}`;
  return {
    metadata: { name, namespace: NS, uid: `${RUN}-${name}`, attempt: 0 },
    hostname: name,
    portMappings: [],
    labels: { [TEST_LABEL]: RUN, app: name },
    annotations: { 'berth.test/annotation': 'yes' },
    ...over,
  };
}

function ctrConfig(name: string, over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: BUSYBOX_IMAGE,
    command: [],
    args: [],
    envs: [],
    mounts: [],
    labels: { [TEST_LABEL]: RUN },
    annotations: { 'io.kubernetes.container.hash': 'h1' },
    ...over,
  };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function waitExited(id: string, timeoutMs = 10_000): Promise<ContainerStatus> {
  return waitFor(`container ${id} to exit`, async () => {
    const s = await rt.containerStatus(id);
    return s.state === 'CONTAINER_EXITED' ? s : undefined;
  }, timeoutMs);
}

/** stdout+stderr of a (non-tty) container, demultiplexed. */
async function logsOf(id: string): Promise<string> {
  const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  let out = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4);
    out += raw.subarray(i + 8, i + 8 + len).toString();
    i += 8 + len;
  }
  return out;
}

async function runIn(sandboxId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<string> {
  const id = await rt.createContainer(sandboxId, cfg, pod);
  await rt.startContainer(id);
  return id;
}

/** Runs a container to completion and returns its status and output. */
async function runToEnd(sandboxId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<{ status: ContainerStatus; logs: string }> {
  const id = await runIn(sandboxId, pod, cfg);
  const status = await waitExited(id);
  return { status, logs: (await logsOf(id)).trim() };
}

let shared: { pod: PodSandboxConfig; id: string };

beforeAll(async () => {
  await ensureTestImages(docker);
  const pod = podConfig();
  shared = { pod, id: await rt.runPodSandbox(pod) };
});

afterAll(async () => {
  const left = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${RUN}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  await docker.getImage(PAUSE).remove({ force: true }).catch(() => undefined);
});

describe('pause image', () => {
  it('is built locally with /pause as entrypoint', async () => {
    const img = await docker.getImage(PAUSE).inspect();
    expect(img.Config.Entrypoint).toEqual(['/pause']);
    expect(PAUSE_IMAGE).toBe('berth.local/pause:3.9');
  });

  it('exits 0 at once on docker stop (SIGTERM handler)', async () => {
    const pod = podConfig();
    const id = await rt.runPodSandbox(pod);
    const t0 = Date.now();
    await docker.getContainer(id).stop({ t: 10 });
    const elapsed = Date.now() - t0;
    const st = (await docker.getContainer(id).inspect()).State;
    expect(st.ExitCode).toBe(0);
    expect(st.OOMKilled).toBe(false);
    expect(elapsed).toBeLessThan(3000);
  });

  it('reaps orphans re-parented to it (shared PID namespace)', async () => {
    const pod = podConfig();
    const sb = await rt.runPodSandbox(pod);
    const pausePid = (await docker.getContainer(sb).inspect()).State.Pid;
    // The subshell exits at once, orphaning `sleep 1`, which the kernel re-parents to PID 1 = pause.
    await runIn(sb, pod, ctrConfig('orphaner', { command: ['sh', '-c', '(sleep 1 &); sleep 30'], linux: { securityContext: { namespaceOptions: { pid: 'POD' } } } }));
    const childrenOfPause = (): { pid: number; state: string }[] => {
      const out: { pid: number; state: string }[] = [];
      for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        try {
          const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
          const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          if (Number(rest[1]) === pausePid) out.push({ pid: Number(name), state: rest[0] ?? '' });
        } catch {
          // gone meanwhile
        }
      }
      return out;
    };
    const orphan = await waitFor('an orphan under pause', async () => childrenOfPause().find((c) => c.state !== 'Z'), 5000);
    await waitFor('the orphan to be reaped', async () => (childrenOfPause().some((c) => c.pid === orphan.pid) ? undefined : true), 5000);
    expect(childrenOfPause().filter((c) => c.state === 'Z')).toEqual([]);
  });
});

describe('pod sandbox', () => {
  it('runs with the bridge IP, labels, annotations and metadata; stops and removes idempotently', async () => {
    const pod = podConfig({ dnsConfig: { servers: ['10.96.0.10'], searches: [`${NS}.svc.cluster.local`], options: ['ndots:5'] } });
    const id = await rt.runPodSandbox(pod);
    const st = await rt.podSandboxStatus(id);
    expect(st.state).toBe('SANDBOX_READY');
    expect(st.network.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(st.metadata).toEqual(pod.metadata);
    expect(st.labels).toMatchObject({ [TEST_LABEL]: RUN, app: pod.metadata.name });
    expect(st.labels['io.kubernetes.docker.type']).toBeUndefined();
    expect(st.annotations).toEqual({ 'berth.test/annotation': 'yes' });
    expect(st.linux?.namespaces).toEqual({ network: 'POD', pid: 'CONTAINER', ipc: 'POD' });
    const raw = await docker.getContainer(id).inspect();
    expect(raw.Name).toBe(`/k8s_POD_${pod.metadata.name}_${NS}_${pod.metadata.uid}_0`);
    expect(raw.Config.Hostname).toBe(pod.hostname);
    expect(raw.HostConfig.IpcMode).toBe('shareable');
    expect(raw.HostConfig.OomScoreAdj).toBe(hostCaps.canLowerOomScoreAdj ? -998 : hostCaps.minOomScoreAdj);

    const { logs } = await runToEnd(id, pod, ctrConfig('resolv', { command: ['cat', '/etc/resolv.conf'] }));
    expect(logs).toContain('nameserver 10.96.0.10');
    expect(logs).toContain(`search ${NS}.svc.cluster.local`);
    expect(logs).toContain('options ndots:5');

    await rt.stopPodSandbox(id);
    expect((await rt.podSandboxStatus(id)).state).toBe('SANDBOX_NOTREADY');
    await rt.stopPodSandbox(id);
    await rt.removePodSandbox(id);
    await expect(rt.podSandboxStatus(id)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(rt.listContainers({ podSandboxId: id })).resolves.toEqual([]);
    await rt.removePodSandbox(id);
    await rt.stopPodSandbox(id);
  });

  it('uses the host network namespace for NODE (no sandbox IP)', async () => {
    const pod = podConfig({ linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } });
    const id = await rt.runPodSandbox(pod);
    const st = await rt.podSandboxStatus(id);
    expect(st.state).toBe('SANDBOX_READY');
    expect(st.network.ip).toBeUndefined();
    expect(st.linux?.namespaces?.network).toBe('NODE');
  });

  it('stopPodSandbox stops running containers; removePodSandbox removes them', async () => {
    const pod = podConfig();
    const id = await rt.runPodSandbox(pod);
    const c = await runIn(id, pod, ctrConfig('sleeper', { command: ['sleep', '60'] }));
    await rt.stopPodSandbox(id);
    expect((await rt.containerStatus(c)).state).toBe('CONTAINER_EXITED');
    await rt.removePodSandbox(id);
    await expect(rt.containerStatus(c)).rejects.toMatchObject({ code: 'NotFound' });
  });
});

describe('containers', () => {
  it('share the sandbox network namespace: B reaches A on 127.0.0.1', async () => {
    const { pod, id } = shared;
    await runIn(id, pod, ctrConfig('server', {
      command: ['sh', '-c', 'mkdir -p /www && echo hello-from-a > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www'],
    }));
    const { status, logs } = await runToEnd(id, pod, ctrConfig('client', {
      command: ['sh', '-c', 'for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1'],
    }));
    expect(status.exitCode).toBe(0);
    expect(logs).toBe('hello-from-a');
  });

  it.each([
    ['image defaults', [], [], 'ep cmd-default'],
    ['args only keep the image ENTRYPOINT', [], ['a1', 'a2'], 'ep a1 a2'],
    ['command drops the image CMD', ['echo', 'cmd'], [], 'cmd'],
    ['command and args', ['echo', 'cmd'], ['x'], 'cmd x'],
  ])('command/args: %s', async (_name, command, args, want) => {
    const { pod, id } = shared;
    const { logs } = await runToEnd(id, pod, ctrConfig(`ca${randomBytes(2).toString('hex')}`, { image: ENTRYPOINT_IMAGE, command, args }));
    expect(logs).toBe(want);
  });

  it('passes env and working directory', async () => {
    const { pod, id } = shared;
    const { logs } = await runToEnd(id, pod, ctrConfig('env', {
      command: ['sh', '-c', 'echo "$FOO $BAR $(pwd)"'],
      envs: [{ key: 'FOO', value: 'foo value' }, { key: 'BAR', value: 'b=ar' }],
      workingDir: '/tmp',
    }));
    expect(logs).toBe('foo value b=ar /tmp');
  });

  it('reports Completed, Error with the exit code, and times', async () => {
    const { pod, id } = shared;
    const ok = await runToEnd(id, pod, ctrConfig('ok', { command: ['true'] }));
    expect(ok.status).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 0, reason: 'Completed', message: '' });
    expect(ok.status.startedAt).toBeGreaterThan(0);
    // Docker stamps StartedAt after the process began; a short-lived one can "finish" a few ms before it.
    expect(Math.abs(ok.status.finishedAt - ok.status.startedAt)).toBeLessThan(5000);
    expect(ok.status.imageRef).toMatch(/^sha256:/);
    expect(ok.status.podSandboxId).toBe(id);
    expect(ok.status.metadata).toEqual({ name: 'ok', attempt: 0 });
    expect(ok.status.annotations).toEqual({ 'io.kubernetes.container.hash': 'h1' });
    const bad = await runToEnd(id, pod, ctrConfig('bad', { command: ['sh', '-c', 'exit 3'] }));
    expect(bad.status).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 3, reason: 'Error' });
  });

  it('reports OOMKilled for a container over its memory limit', async () => {
    const { pod, id } = shared;
    const { status } = await runToEnd(id, pod, ctrConfig('oom', {
      command: ['sh', '-c', 'x=0123456789abcdef; while true; do x=$x$x; done'],
      linux: { resources: { memoryLimitInBytes: 16 * 1024 * 1024 } },
    }));
    expect(status).toMatchObject({ state: 'CONTAINER_EXITED', reason: 'OOMKilled', exitCode: 137 });
  });

  it('reports ContainerCannotRun when the binary is missing', async () => {
    const { pod, id } = shared;
    const cid = await rt.createContainer(id, ctrConfig('missing', { command: ['/no/such/binary'] }), pod);
    expect((await rt.containerStatus(cid)).state).toBe('CONTAINER_CREATED');
    await expect(rt.startContainer(cid)).rejects.toThrow(/no such file or directory/);
    const st = await rt.containerStatus(cid);
    expect(st).toMatchObject({ state: 'CONTAINER_EXITED', reason: 'ContainerCannotRun' });
    expect(st.exitCode).not.toBe(0);
    expect(st.message).toMatch(/\/no\/such\/binary/);
  });

  it('stop honours the grace period: a SIGTERM handler exits with its own code before the deadline', async () => {
    const { pod, id } = shared;
    const cid = await runIn(id, pod, ctrConfig('graceful', { command: ['sh', '-c', 'trap "exit 7" TERM; echo ready; while true; do sleep 0.1; done'] }));
    await waitFor('ready', async () => ((await logsOf(cid)).includes('ready') ? true : undefined));
    const t0 = Date.now();
    await rt.stopContainer(cid, 10);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await rt.containerStatus(cid)).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 7, reason: 'Error' });
    await rt.stopContainer(cid, 10); // idempotent
  });

  it('stop kills a container ignoring SIGTERM at the deadline', async () => {
    const { pod, id } = shared;
    const cid = await runIn(id, pod, ctrConfig('stubborn', { command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.1; done'] }));
    await waitFor('ready', async () => ((await logsOf(cid)).includes('ready') ? true : undefined));
    const t0 = Date.now();
    await rt.stopContainer(cid, 2);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(8000);
    expect(await rt.containerStatus(cid)).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 137 });
  });

  it('stop sends the image STOPSIGNAL, or config.stopSignal when set', async () => {
    const { pod, id } = shared;
    expect((await rt.imageStatus(STOPSIGNAL_IMAGE)).stopSignal).toBe('SIGUSR1');
    const script = 'trap "exit 10" USR1; trap "exit 15" TERM; echo ready; while true; do sleep 0.1; done';
    const fromImage = await runIn(id, pod, ctrConfig('sig-image', { image: STOPSIGNAL_IMAGE, command: ['sh', '-c', script] }));
    const fromConfig = await runIn(id, pod, ctrConfig('sig-config', { image: STOPSIGNAL_IMAGE, command: ['sh', '-c', script], stopSignal: 'SIGTERM' }));
    for (const c of [fromImage, fromConfig]) await waitFor('ready', async () => ((await logsOf(c)).includes('ready') ? true : undefined));
    await Promise.all([rt.stopContainer(fromImage, 10), rt.stopContainer(fromConfig, 10)]);
    expect((await rt.containerStatus(fromImage)).exitCode).toBe(10);
    expect((await rt.containerStatus(fromConfig)).exitCode).toBe(15);
  });

  it('replaces an exited leftover holding the name, refuses a running one', async () => {
    const { pod, id } = shared;
    const cfg = ctrConfig('dup', { command: ['true'] });
    const first = await runIn(id, pod, cfg);
    await waitExited(first);
    const second = await rt.createContainer(id, cfg, pod);
    expect(second).not.toBe(first);
    await expect(rt.containerStatus(first)).rejects.toMatchObject({ code: 'NotFound' });
    const running = ctrConfig('dup-running', { command: ['sleep', '60'] });
    await runIn(id, pod, running);
    await expect(rt.createContainer(id, running, pod)).rejects.toMatchObject({ code: 'AlreadyExists' });
  });

  it('lists with filters (sandbox, state, labels, id prefix) in one call', async () => {
    const pod = podConfig();
    const sb = await rt.runPodSandbox(pod);
    const running = await runIn(sb, pod, ctrConfig('l-run', { command: ['sleep', '60'], labels: { [TEST_LABEL]: RUN, role: 'runner' } }));
    const done = await runIn(sb, pod, ctrConfig('l-done', { command: ['true'] }));
    const created = await rt.createContainer(sb, ctrConfig('l-created', { command: ['true'] }), pod);
    await waitExited(done);
    const all = await rt.listContainers({ podSandboxId: sb });
    expect(all.map((c) => c.id).sort()).toEqual([running, done, created].sort());
    const byId = new Map(all.map((c) => [c.id, c]));
    expect(byId.get(running)?.state).toBe('CONTAINER_RUNNING');
    expect(byId.get(done)?.state).toBe('CONTAINER_EXITED');
    expect(byId.get(created)?.state).toBe('CONTAINER_CREATED');
    expect(byId.get(running)?.metadata).toEqual({ name: 'l-run', attempt: 0 });
    expect(byId.get(running)?.podSandboxId).toBe(sb);
    expect(byId.get(running)?.createdAt).toBeGreaterThan(Date.now() - 120_000);
    expect((await rt.listContainers({ podSandboxId: sb, state: 'CONTAINER_RUNNING' })).map((c) => c.id)).toEqual([running]);
    expect((await rt.listContainers({ labelSelector: { [TEST_LABEL]: RUN, role: 'runner' } })).map((c) => c.id)).toEqual([running]);
    expect((await rt.listContainers({ id: done.slice(0, 12) })).map((c) => c.id)).toEqual([done]);
    const sandboxes = await rt.listPodSandbox({ labelSelector: { [TEST_LABEL]: RUN, app: pod.metadata.name } });
    expect(sandboxes.map((s) => s.id)).toEqual([sb]);
    expect(sandboxes[0]).toMatchObject({ state: 'SANDBOX_READY', metadata: pod.metadata });
    expect(await rt.listPodSandbox({ id: sb, state: 'SANDBOX_NOTREADY' })).toEqual([]);
    const mine = await rt.listPodSandbox({ labelSelector: { [TEST_LABEL]: RUN } });
    expect(mine.map((s) => s.id)).toContain(shared.id);
  });

  it('streams created/started/stopped/deleted events until aborted', async () => {
    const { pod, id } = shared;
    const ac = new AbortController();
    const seen: RuntimeEvent[] = [];
    const reader = (async () => {
      for await (const ev of rt.events(ac.signal)) seen.push(ev);
    })();
    await sleep(300); // let the subscription reach the daemon
    const cid = await runIn(id, pod, ctrConfig('evented', { command: ['true'] }));
    await waitExited(cid);
    await rt.removeContainer(cid);
    await waitFor('events', async () => {
      const types = seen.filter((e) => e.containerId === cid).map((e) => e.type);
      return ['created', 'started', 'stopped', 'deleted'].every((t) => types.includes(t as RuntimeEvent['type'])) ? types : undefined;
    }, 5000);
    expect(seen.find((e) => e.containerId === cid)?.podUid).toBe(pod.metadata.uid);
    ac.abort();
    await reader; // ends
  });

  it('runs a privileged container (adapted when the bounding set is not full) and clamps oomScoreAdj', async () => {
    const { pod, id } = shared;
    const { status, logs } = await runToEnd(id, pod, ctrConfig('priv', {
      command: ['sh', '-c', 'grep CapEff /proc/self/status; grep -E " /proc/(sys|kcore|acpi) " /proc/mounts; true'],
      linux: { securityContext: { privileged: true }, resources: { oomScoreAdj: -997 } },
    }));
    expect(status).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(logs).toMatch(/CapEff:\s*0*[1-9a-f]/);
    // Privileged, or adapted with MaskedPaths/ReadonlyPaths cleared: /proc/sys is not re-mounted read-only.
    expect(logs).not.toMatch(/\/proc\/(sys|kcore|acpi) /);
    const raw = await docker.getContainer(status.id).inspect();
    if (hostCaps.missing.length > 0) {
      expect(raw.HostConfig.Privileged).toBe(false);
      expect(raw.HostConfig.CapAdd?.length).toBeGreaterThan(30);
      expect(raw.HostConfig.OomScoreAdj).toBe(hostCaps.minOomScoreAdj);
    } else {
      expect(raw.HostConfig.Privileged).toBe(true);
      expect(raw.HostConfig.OomScoreAdj).toBe(-997);
    }
  });
});

describe('execSync', () => {
  let cid: string;
  beforeAll(async () => {
    cid = await runIn(shared.id, shared.pod, ctrConfig('exec-target', { command: ['sleep', '300'] }));
  });

  it('returns exit code, stdout and stderr', async () => {
    const r = await rt.execSync(cid, ['sh', '-c', 'echo out; echo err >&2; exit 4'], 5000);
    expect(r).toEqual({ exitCode: 4, stdout: 'out\n', stderr: 'err\n' });
    expect((await rt.execSync(cid, ['true'], 5000)).exitCode).toBe(0);
  });

  it('caps the output at 16 KiB', async () => {
    const r = await rt.execSync(cid, ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x'], 5000);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBe(16 * 1024);
  });

  it('rejects with TimeoutError past the deadline', async () => {
    const t0 = Date.now();
    await expect(rt.execSync(cid, ['sleep', '5'], 500)).rejects.toMatchObject({ code: 'Timeout' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('fails for a missing command, a stopped or an unknown container', async () => {
    const r = await rt.execSync(cid, ['/no/such/binary'], 5000).catch((e: unknown) => e);
    // Docker reports a missing binary as exit code 126/127 from the exec.
    expect(r).toMatchObject({ exitCode: expect.any(Number) });
    expect((r as { exitCode: number }).exitCode).toBeGreaterThan(0);
    await expect(rt.execSync(`nope${RUN}`, ['true'], 5000)).rejects.toMatchObject({ code: 'NotFound' });
    const done = await runIn(shared.id, shared.pod, ctrConfig('exec-done', { command: ['true'] }));
    await waitExited(done);
    await expect(rt.execSync(done, ['true'], 5000)).rejects.toMatchObject({ code: 'Conflict' });
  });
});

describe('errors and images', () => {
  it('NotFoundError for unknown ids; stop/remove of unknown ids succeed', async () => {
    const nope = `nope${RUN}`;
    await expect(rt.containerStatus(nope)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(rt.podSandboxStatus(nope)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(rt.imageStatus(`berth-test/none-${RUN}:x`)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(rt.createContainer(nope, ctrConfig('x'), podConfig())).rejects.toMatchObject({ code: 'NotFound' });
    await expect(rt.startContainer(nope)).rejects.toMatchObject({ code: 'NotFound' });
    await rt.stopContainer(nope, 1);
    await rt.removeContainer(nope);
    await rt.removeImage(`berth-test/none-${RUN}:x`);
  });

  it('NotFoundError when the container image is absent', async () => {
    const { pod, id } = shared;
    await expect(rt.createContainer(id, ctrConfig('noimg', { image: `berth-test/none-${RUN}:x` }), pod)).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('a failing pull is an ImagePullError carrying the engine message', async () => {
    // A registry on loopback that refuses connections: no traffic leaves the machine.
    const err = await rt.pullImage(`127.0.0.1:1/berth-test/none-${RUN}:latest`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ImagePull' });
    expect((err as Error).message).toMatch(/^Error response from daemon: /);
    expect((err as Error).message).toMatch(/127\.0\.0\.1:1.*connection refused/);
  });

  it('imageStatus, listImages and version', async () => {
    const img = await rt.imageStatus(BUSYBOX_IMAGE);
    expect(img.id).toMatch(/^sha256:/);
    expect(img.repoTags).toContain(BUSYBOX_IMAGE);
    expect(img.sizeBytes).toBeGreaterThan(1_000_000);
    expect((await rt.listImages()).map((i) => i.id)).toContain(img.id);
    const v = await rt.version();
    expect(v.runtimeName).toBe('docker');
    expect(v.runtimeVersion).not.toBe('');
  });

  it('RuntimeUnavailableError when the socket is missing', async () => {
    const dead = new DockerRuntime({ docker: `/tmp/berth-no-docker-${RUN}.sock`, log: silentLogger, hostCaps });
    await expect(dead.listContainers()).rejects.toMatchObject({ code: 'RuntimeUnavailable' });
  });
});
