// DockerRuntime: the CRI RuntimeService + ImageService over the Docker Engine API, behaving like cri-dockerd
// (Mirantis/cri-dockerd core/*.go, formerly kubelet's dockershim). Every Docker call has its own deadline;
// errors are translated at this boundary (see errors.ts); the Docker-shape decisions live in convert.ts.
import { lstat, mkdir, readFile, symlink, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import Dockerode from 'dockerode';
import type { Logger } from '../../lib/logger.ts';
import { AlreadyExistsError, ImagePullError, NotFoundError, hasCode, isNotFound } from '../../lib/errors.ts';
import type { ExecResult, ImageService, RuntimeService } from '../runtime.ts';
import type {
  AuthConfig,
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerStatus,
  Image,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatus,
  RuntimeEvent,
  VersionInfo,
} from '../types.ts';
import { DOCKER_TYPE_SANDBOX, L } from '../labels.ts';
import {
  type DockerContainerInspect,
  type DockerContainerSummary,
  type DockerCreateOptions,
  type DockerEvent,
  type DockerImageInspect,
  type DockerImageSummary,
  type DockerListFilters,
  type LogOptions,
  buildContainerCreateOptions,
  buildContainerListFilters,
  buildSandboxCreateOptions,
  buildSandboxListFilters,
  filterContainers,
  filterSandboxes,
  parseConflictContainerId,
  parseUnknownCapability,
  toContainer,
  toContainerStatus,
  toImage,
  toPodSandbox,
  toPodSandboxStatus,
  toRuntimeEvent,
  withoutCaps,
} from './convert.ts';
import { engineMessage, isAbortError, statusCodeOf, translateDockerError } from './errors.ts';
import { readMultiplexed } from './exec.ts';
import { legacyLogSymlink } from './log-links.ts';
import { type HostCaps, buildPrivilegedSettings, readHostCaps } from './host-caps.ts';
import { PAUSE_IMAGE, followJsonStream, importPauseImage, isLocalPauseImage } from './pause-image.ts';

export interface DockerRuntimeOptions {
  /** A dockerode client, or the path of the Docker socket (default /var/run/docker.sock). */
  docker?: Dockerode | string;
  log: Logger;
  /** Sandbox image (default PAUSE_IMAGE). `berth.local/pause:<tag>` is built locally when missing; others are pulled. */
  pauseImage?: string;
  /** Deadline of one Docker call (default 30 s); stops get the stop timeout on top. */
  callTimeoutMs?: number;
  /** Deadline of one image pull (default 2 min). */
  pullTimeoutMs?: number;
  /** What the host allows containers (default: probed from /proc once, at construction). */
  hostCaps?: HostCaps;
  /** json-file log rotation for containers (defaults as the kubelet's containerLogMaxSize/MaxFiles). */
  containerLogMaxSize?: string;
  containerLogMaxFiles?: number;
  /**
   * The node agent's runtime (not a one-shot CLI command's): log links (`--pod-logs-dir/…/<n>.log` → Docker's log
   * file, read by `kubectl logs`) that could not be made when their container started — e.g. ENOSPC on a full root
   * dir — are made later. The first listContainers checks every running container's link (a berth restarted with
   * links missing), and every listContainers (PLEG relists each second) retries the ones still missing.
   */
  repairLogLinks?: boolean;
}

/** Grace given to a pod's containers and to the pause container by stopPodSandbox (cri-dockerd: 10 s). */
const SANDBOX_CONTAINER_STOP_SECONDS = 2;
const SANDBOX_STOP_SECONDS = 10;

interface CallOptions {
  timeoutMs?: number;
  /** HTTP statuses that mean "already done" for this call (e.g. 304 on stop): the call resolves undefined. */
  okStatus?: number[];
}

export class DockerRuntime implements RuntimeService, ImageService {
  private readonly docker: Dockerode;
  private readonly log: Logger;
  private readonly pauseImage: string;
  private readonly callTimeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly hostCaps: HostCaps;
  private readonly logOptions: LogOptions;
  /** Capabilities this Docker rejected as unknown (Docker 20.10 predates CAP_PERFMON, CAP_BPF, ...). */
  private readonly rejectedCaps = new Set<string>();
  private pauseInFlight: Promise<void> | undefined;
  /** Containers whose log link is missing (id → link path), with repairLogLinks; `swept` after the first listing's check. */
  private readonly unlinked = new Map<string, string>();
  private swept = false;
  private readonly repairLogLinks: boolean;

  constructor(opts: DockerRuntimeOptions) {
    this.docker =
      opts.docker instanceof Dockerode
        ? opts.docker
        : new Dockerode({ socketPath: typeof opts.docker === 'string' ? opts.docker : '/var/run/docker.sock' });
    this.log = opts.log;
    this.pauseImage = opts.pauseImage ?? PAUSE_IMAGE;
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 120_000;
    this.logOptions = { maxSize: opts.containerLogMaxSize ?? '10m', maxFiles: opts.containerLogMaxFiles ?? 5 };
    this.hostCaps = opts.hostCaps ?? readHostCaps();
    this.repairLogLinks = opts.repairLogLinks ?? false;
    if (this.hostCaps.missing.length > 0) {
      const p = buildPrivilegedSettings(this.hostCaps);
      this.log.warn(
        {
          missingCapabilities: this.hostCaps.missing,
          oomScoreAdjFloor: this.hostCaps.canLowerOomScoreAdj ? undefined : this.hostCaps.minOomScoreAdj,
          privilegedAs: { capAdd: p.capAdd.length, securityOpt: p.securityOpt, deviceCgroupRules: p.deviceCgroupRules },
        },
        'capability bounding set incomplete: adapting privileged containers and oom_score_adj',
      );
    }
  }

  // ---------------------------------------------------------------- plumbing

  /**
   * Runs one Docker call under its own deadline and translates its errors. `fn` gets the signal to hand to
   * dockerode; the race below also covers a client that ignores it.
   */
  private async call<T>(op: string, fn: (signal: AbortSignal) => Promise<T>, o: CallOptions = {}): Promise<T | undefined> {
    const timeoutMs = o.timeoutMs ?? this.callTimeoutMs;
    const ac = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        const err = new Error(`timeout after ${timeoutMs}ms`);
        ac.abort(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      return await Promise.race([fn(ac.signal), deadline]);
    } catch (err: unknown) {
      const status = statusCodeOf(err);
      if (!timedOut && status !== undefined && o.okStatus?.includes(status)) return undefined;
      throw translateDockerError(err, op, timedOut, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `call` for calls whose result is required (no okStatus). */
  private async must<T>(op: string, fn: (signal: AbortSignal) => Promise<T>, timeoutMs?: number): Promise<T> {
    return (await this.call(op, fn, timeoutMs === undefined ? {} : { timeoutMs })) as T;
  }

  private inspectContainer(id: string): Promise<DockerContainerInspect> {
    return this.must(`inspect container ${id}`, (s) =>
      this.docker.getContainer(id).inspect({ abortSignal: s }) as Promise<unknown> as Promise<DockerContainerInspect>,
    );
  }

  private listRaw(filters: DockerListFilters): Promise<DockerContainerSummary[]> {
    return this.must('list containers', (s) =>
      this.docker.listContainers({ all: true, filters: { ...filters }, abortSignal: s }) as Promise<unknown> as Promise<
        DockerContainerSummary[]
      >,
    );
  }

  private async createRaw(opts: DockerCreateOptions): Promise<string> {
    const c = await this.must(`create container ${opts.name}`, (s) =>
      this.docker.createContainer({ ...withoutCaps(opts, this.rejectedCaps), abortSignal: s } as Dockerode.ContainerCreateOptions),
    );
    return c.id;
  }

  /**
   * Creates a container, recovering like cri-dockerd's recoverFromCreationConflictIfNeeded: a name held by a
   * leftover that is no longer running is removed and the create retried once. Capabilities the daemon does not
   * know are dropped (and remembered) instead of failing the create.
   */
  private async createWithRecovery(opts: DockerCreateOptions): Promise<string> {
    let conflictRetried = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.createRaw(opts);
      } catch (err: unknown) {
        const cause = err instanceof Error ? err.cause : undefined;
        const message = engineMessage(cause ?? err);
        const cap = parseUnknownCapability(message);
        if (cap && !this.rejectedCaps.has(cap) && attempt < 64) {
          this.rejectedCaps.add(cap);
          this.log.info({ capability: cap }, 'docker does not know this capability; leaving it out');
          continue;
        }
        if (hasCode(err, 'Conflict') && !conflictRetried) {
          const holder = parseConflictContainerId(message);
          if (!holder) throw err;
          let holderStatus: ContainerStatus | undefined;
          try {
            holderStatus = toContainerStatus(await this.inspectContainer(holder));
          } catch (inspectErr: unknown) {
            if (!isNotFound(inspectErr)) throw inspectErr; // gone meanwhile: just retry
          }
          if (holderStatus && holderStatus.state !== 'CONTAINER_EXITED') {
            throw new AlreadyExistsError(`container name ${opts.name} is in use by ${holder} (${holderStatus.state})`, { cause: err });
          }
          if (holderStatus) {
            this.log.info({ containerId: holder, name: opts.name }, 'removing exited container holding the name');
            await this.removeRaw(holder);
          }
          conflictRetried = true;
          continue;
        }
        throw err;
      }
    }
  }

  private async removeRaw(id: string): Promise<void> {
    try {
      await this.call(`remove container ${id}`, (s) =>
        this.docker.getContainer(id).remove({ force: true, v: true, abortSignal: s } as Dockerode.ContainerRemoveOptions),
      );
    } catch (err: unknown) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async stopRaw(id: string, timeoutSeconds: number): Promise<void> {
    const t = Math.max(0, Math.ceil(timeoutSeconds));
    try {
      // Docker sends the container's StopSignal, waits t seconds, then SIGKILLs; it answers once it stopped.
      await this.call(`stop container ${id}`, (s) => this.docker.getContainer(id).stop({ t, abortSignal: s }), {
        timeoutMs: this.callTimeoutMs + t * 1000,
        okStatus: [304],
      });
    } catch (err: unknown) {
      if (!isNotFound(err)) throw err;
    }
  }

  // ---------------------------------------------------------------- RuntimeService

  async version(): Promise<VersionInfo> {
    const v = await this.must('version', (s) => (this.docker.version as (o: object) => Promise<Dockerode.DockerVersion>).call(this.docker, { abortSignal: s }));
    return { runtimeName: 'docker', runtimeVersion: v.Version, runtimeApiVersion: v.ApiVersion };
  }

  /** The sandbox image is present afterwards: berth's own is imported from the generated tar, others pulled. */
  async ensurePauseImage(): Promise<void> {
    this.pauseInFlight ??= this.ensurePauseImageOnce().finally(() => {
      this.pauseInFlight = undefined;
    });
    return this.pauseInFlight;
  }

  private async ensurePauseImageOnce(): Promise<void> {
    try {
      await this.imageStatus(this.pauseImage);
      return;
    } catch (err: unknown) {
      if (!isNotFound(err)) throw err;
    }
    if (isLocalPauseImage(this.pauseImage)) {
      this.log.info({ image: this.pauseImage }, 'building pause image');
      await this.must(`import ${this.pauseImage}`, (s) => importPauseImage(this.docker, this.pauseImage, s));
    } else {
      this.log.info({ image: this.pauseImage }, 'pulling pause image');
      await this.pullImage(this.pauseImage);
    }
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    await this.ensurePauseImage();
    const opts = buildSandboxCreateOptions({ config, image: this.pauseImage, hostCaps: this.hostCaps, log: this.logOptions });
    const id = await this.createWithRecovery(opts);
    try {
      await this.call(`start sandbox ${id}`, (s) => this.docker.getContainer(id).start({ abortSignal: s }), { okStatus: [304] });
    } catch (err: unknown) {
      // A sandbox that never started is useless; remove it so the name is free for the next attempt.
      await this.removeRaw(id).catch((rmErr: unknown) => this.log.warn({ err: rmErr, sandboxId: id }, 'remove failed sandbox failed'));
      throw err;
    }
    return id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    const running = filterContainers((await this.listRaw(buildContainerListFilters({ podSandboxId: id }))).map(toContainer), {
      state: 'CONTAINER_RUNNING',
    });
    await Promise.all(running.map((c) => this.stopRaw(c.id, SANDBOX_CONTAINER_STOP_SECONDS)));
    await this.stopRaw(id, SANDBOX_STOP_SECONDS);
  }

  async removePodSandbox(id: string): Promise<void> {
    const containers = await this.listRaw(buildContainerListFilters({ podSandboxId: id }));
    await Promise.all(containers.map((c) => this.removeContainer(c.Id)));
    await this.removeRaw(id);
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const r = await this.inspectContainer(id);
    if (r.Config?.Labels?.[L.dockerType] !== DOCKER_TYPE_SANDBOX) throw new NotFoundError(`${id} is not a pod sandbox`);
    return toPodSandboxStatus(r);
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const raw = await this.listRaw(buildSandboxListFilters(filter));
    return filterSandboxes(raw.map(toPodSandbox), filter);
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const sandbox = await this.inspectContainer(podSandboxId);
    const seccomp = config.linux?.securityContext?.seccomp;
    let seccompProfileJson: string | undefined;
    if (seccomp?.profileType === 'Localhost') {
      // cri-dockerd getSeccompDockerOpts: Docker takes the profile inline, compacted.
      try {
        seccompProfileJson = JSON.stringify(JSON.parse(await readFile(seccomp.localhostRef, 'utf8')));
      } catch (err) {
        throw new Error(`cannot load seccomp profile ${JSON.stringify(seccomp.localhostRef)}: ${(err as Error).message}`);
      }
    }
    const opts = buildContainerCreateOptions({
      podSandboxId: sandbox.Id,
      config,
      sandboxConfig,
      cgroupParent: sandbox.HostConfig?.CgroupParent || undefined,
      hostCaps: this.hostCaps,
      log: this.logOptions,
      seccompProfileJson,
    });
    return this.createWithRecovery(opts);
  }

  async startContainer(id: string): Promise<void> {
    let startErr: unknown;
    try {
      await this.call(`start container ${id}`, (s) => this.docker.getContainer(id).start({ abortSignal: s }), { okStatus: [304] });
    } catch (err: unknown) {
      if (isNotFound(err)) throw err;
      startErr = err;
    }
    // Like cri-dockerd, link the kubelet's log path to Docker's log file, also for a container that failed to start.
    const linked = await this.linkContainerLog(id);
    if (linked !== true && this.repairLogLinks) this.unlinked.set(id, linked);
    if (startErr) throw startErr;
  }

  /** Makes the container's log links; true when done (or there is nothing to link), else the link path that failed. */
  private async linkContainerLog(id: string, quiet = false): Promise<true | string> {
    let link = '';
    try {
      const r = await this.inspectContainer(id);
      const path = r.Config?.Labels?.[L.containerLogPath];
      if (!path || !r.LogPath) return true;
      link = path;
      await mkdir(dirname(path), { recursive: true });
      await unlink(path).catch(() => undefined);
      await symlink(r.LogPath, path);
      const legacy = legacyLogSymlink(path, r.Config?.Labels ?? {}, r.Id);
      if (legacy) {
        await mkdir(dirname(legacy), { recursive: true });
        await unlink(legacy).catch(() => undefined);
        await symlink(path, legacy);
      }
      return true;
    } catch (err: unknown) {
      if (isNotFound(err)) return true;
      if (!quiet) this.log.warn({ err, containerId: id, path: link }, this.repairLogLinks ? 'container log symlink failed; retried on the next relist' : 'container log symlink failed');
      return link;
    }
  }

  /**
   * repairLogLinks: the first call finds every running container whose log link is missing; each call retries those
   * (one inspect each) and forgets the ones linked or gone. Failures of a retry are not logged again.
   */
  private async repairMissingLogLinks(raw: DockerContainerSummary[]): Promise<void> {
    if (!this.swept) {
      this.swept = true;
      for (const r of raw) {
        const link = r.Labels?.[L.containerLogPath];
        if (link && r.Labels?.[L.dockerType] !== DOCKER_TYPE_SANDBOX && !(await lstat(link).catch(() => undefined))) this.unlinked.set(r.Id, link);
      }
    }
    for (const [id, link] of this.unlinked) {
      if (!raw.some((r) => r.Id === id)) {
        // Not in this (possibly filtered) listing: forgotten only once Docker no longer has it.
        if (await this.inspectContainer(id).then(() => false, (err: unknown) => isNotFound(err))) this.unlinked.delete(id);
        continue;
      }
      if ((await this.linkContainerLog(id, true)) === true) {
        this.unlinked.delete(id);
        this.log.info({ containerId: id, path: link }, 'container log symlink made after an earlier failure');
      }
    }
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    await this.stopRaw(id, timeoutSeconds);
  }

  async removeContainer(id: string): Promise<void> {
    let logPath: string | undefined;
    let legacy: string | undefined;
    try {
      const r = await this.inspectContainer(id);
      logPath = r.Config?.Labels?.[L.containerLogPath];
      legacy = logPath ? legacyLogSymlink(logPath, r.Config?.Labels ?? {}, r.Id) : undefined;
    } catch (err: unknown) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (logPath) await unlink(logPath).catch(() => undefined);
    if (legacy) await unlink(legacy).catch(() => undefined);
    await this.removeRaw(id);
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const raw = await this.listRaw(buildContainerListFilters(filter));
    if (this.repairLogLinks) await this.repairMissingLogLinks(raw);
    return filterContainers(raw.map(toContainer), filter);
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    return toContainerStatus(await this.inspectContainer(id));
  }

  async execSync(containerId: string, cmd: string[], timeoutMs: number): Promise<ExecResult> {
    // One deadline for create + run + exit code (cri-dockerd's ExecSync timeout). On timeout the stream is
    // dropped; Docker cannot kill an exec'd process, so it may run on in the container, as with cri-dockerd.
    return this.must(
      `exec in container ${containerId}`,
      async (s) => {
        const exec = await this.docker.getContainer(containerId).exec({
          Cmd: cmd,
          AttachStdin: false,
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
          abortSignal: s,
        } as Dockerode.ExecCreateOptions);
        const stream = (await exec.start({ hijack: true, stdin: false, abortSignal: s } as Dockerode.ExecStartOptions)) as NodeJS.ReadableStream & {
          destroy(err?: Error): void;
        };
        const onAbort = (): void => stream.destroy(new Error('exec deadline'));
        s.addEventListener('abort', onAbort, { once: true });
        try {
          const { stdout, stderr } = await readMultiplexed(stream);
          // The stream ends when the process exits; Docker may record the exit code a moment later.
          for (;;) {
            const info = (await exec.inspect({ abortSignal: s } as {})) as { Running?: boolean; ExitCode?: number | null };
            if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return { exitCode: info.ExitCode, stdout, stderr };
            await new Promise((r) => setTimeout(r, 20));
          }
        } finally {
          s.removeEventListener('abort', onAbort);
          stream.destroy();
        }
      },
      timeoutMs,
    );
  }

  async *events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    if (signal.aborted) return;
    let stream: NodeJS.ReadableStream | undefined;
    try {
      stream = await this.must('events', (s) =>
        this.docker.getEvents({
          filters: { type: ['container'], label: [L.dockerType], event: ['create', 'start', 'die', 'destroy'] },
          abortSignal: AbortSignal.any([s, signal]),
        }),
      );
      let buf = '';
      for await (const chunk of stream as AsyncIterable<Buffer | string>) {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: RuntimeEvent | undefined;
          try {
            ev = toRuntimeEvent(JSON.parse(line) as DockerEvent);
          } catch {
            continue;
          }
          if (ev) yield ev;
        }
      }
    } catch (err: unknown) {
      if (signal.aborted || isAbortError(err)) return;
      // Events are hints: the caller relists and subscribes again.
      this.log.debug({ err }, 'docker event stream ended');
    } finally {
      (stream as { destroy?: () => void } | undefined)?.destroy?.();
    }
  }

  // ---------------------------------------------------------------- ImageService

  async pullImage(image: string, auth?: AuthConfig): Promise<string> {
    const authconfig = auth
      ? {
          username: auth.username,
          password: auth.password,
          auth: auth.auth,
          serveraddress: auth.serverAddress,
          identitytoken: auth.identityToken,
          registrytoken: auth.registryToken,
        }
      : undefined;
    try {
      await this.must(
        `pull ${image}`,
        async (s) => {
          const stream = (await this.docker.pull(image, { abortSignal: s, ...(authconfig ? { authconfig } : {}) })) as NodeJS.ReadableStream;
          await followJsonStream(stream);
        },
        this.pullTimeoutMs,
      );
    } catch (err: unknown) {
      if (hasCode(err, 'RuntimeUnavailable')) throw err;
      const cause = err instanceof Error ? err.cause : undefined;
      let message: string;
      if (hasCode(err, 'Timeout')) message = `pulling image ${image}: not finished within ${this.pullTimeoutMs}ms`;
      else if (statusCodeOf(cause) !== undefined) message = `Error response from daemon: ${engineMessage(cause)}`;
      else message = engineMessage(cause ?? err);
      throw new ImagePullError(message, { cause: err });
    }
    return (await this.imageStatus(image)).id;
  }

  async imageStatus(image: string): Promise<Image> {
    const i = await this.must(`inspect image ${image}`, (s) =>
      this.docker.getImage(image).inspect({ abortSignal: s } as {}) as Promise<unknown> as Promise<DockerImageInspect>,
    );
    return toImage(i);
  }

  async listImages(): Promise<Image[]> {
    const list = await this.must('list images', (s) =>
      this.docker.listImages({ abortSignal: s }) as Promise<unknown> as Promise<DockerImageSummary[]>,
    );
    return list.map(toImage);
  }

  async removeImage(image: string): Promise<void> {
    try {
      await this.call(`remove image ${image}`, (s) => this.docker.getImage(image).remove({ abortSignal: s }));
    } catch (err: unknown) {
      if (!isNotFound(err)) throw err;
    }
  }
}
