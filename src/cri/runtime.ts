// The runtime and image services berth needs, shaped like the CRI's RuntimeService / ImageService.
// Implementations translate their own errors at the boundary: a missing object is a NotFoundError,
// an unreachable runtime a RuntimeUnavailableError, a failed pull an ImagePullError (message = runtime's own).
import type {
  AuthConfig,
  ContainerConfig,
  ContainerFilter,
  Container,
  ContainerStatus,
  Image,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatus,
  RuntimeEvent,
  VersionInfo,
} from './types.ts';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RuntimeService {
  /** Runtime name and version (e.g. docker 20.10.24). */
  version(): Promise<VersionInfo>;

  /**
   * Creates and starts a sandbox (the pod's pause container holding its network/IPC namespaces).
   * Not idempotent: each call makes a new sandbox; callers look for a ready one first.
   */
  runPodSandbox(config: PodSandboxConfig): Promise<string>;
  /** Stops the sandbox and every container in it still running (graceful stops are the caller's job). Idempotent. */
  stopPodSandbox(id: string): Promise<void>;
  /** Removes the sandbox and its containers. Idempotent: a missing sandbox is not an error. */
  removePodSandbox(id: string): Promise<void>;
  /** Throws NotFoundError for an unknown id. */
  podSandboxStatus(id: string): Promise<PodSandboxStatus>;
  listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]>;

  /** Creates (does not start) a container in the sandbox. */
  createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  /** Starts a created container. A failure to start leaves it exited with reason ContainerCannotRun. */
  startContainer(id: string): Promise<void>;
  /**
   * Sends the stop signal (config.stopSignal, else the image's STOPSIGNAL, else SIGTERM), waits up to
   * `timeoutSeconds`, then SIGKILL. Resolves once the container is not running. Idempotent.
   */
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  /** Removes a container (force). Idempotent. */
  removeContainer(id: string): Promise<void>;
  listContainers(filter?: ContainerFilter): Promise<Container[]>;
  /** Throws NotFoundError for an unknown id. */
  containerStatus(id: string): Promise<ContainerStatus>;

  /**
   * Runs `cmd` in a running container and waits for it (CRI ExecSync): probes and lifecycle hooks.
   * Resolves with the exit code and output (each capped at 16 KiB); rejects with TimeoutError after `timeoutMs`.
   */
  execSync(containerId: string, cmd: string[], timeoutMs: number): Promise<ExecResult>;

  /**
   * Container life-cycle events as they happen; the iterator ends when `signal` aborts or the
   * stream breaks (callers relist and subscribe again; events are hints, relists are truth).
   */
  events(signal: AbortSignal): AsyncIterable<RuntimeEvent>;
}

export interface ImageService {
  /** Pulls the image; resolves to its image ID. Throws ImagePullError with the runtime's message. */
  pullImage(image: string, auth?: AuthConfig): Promise<string>;
  /** Throws NotFoundError when the image is not present locally. */
  imageStatus(image: string): Promise<Image>;
  listImages(): Promise<Image[]>;
  /** Idempotent. */
  removeImage(image: string): Promise<void>;
}

/** A terminal size as the client's resize channel sends it (remotecommand.TerminalSize). */
export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The I/O of one exec or attach session (CRI Exec/Attach, streamed by berth itself rather than through a CRI
 * streaming URL). A missing stream means "not requested". With `tty`, output arrives on stdout only.
 */
export interface StreamIO {
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  tty: boolean;
  /** Terminal sizes from the client, applied as they arrive (TTY only); ends with the session. */
  resize?: AsyncIterable<TerminalSize>;
  /** Aborted when the client goes away: the runtime drops its streams at once (nothing may stay attached). */
  signal: AbortSignal;
}

/**
 * The streaming calls behind kubectl exec/attach/port-forward (upstream: CRI Exec/Attach/PortForward as dockershim's
 * streamingRuntime served them). Implementations never close `io.stdout`/`io.stderr` themselves: the caller does
 * once the call has resolved.
 */
export interface StreamingRuntime {
  /**
   * Throws NotFoundError for an unknown container and a 'Conflict' BerthError (`container not running (<id>)`) when
   * it is not running (dockershim's checkContainerStatus before a session is set up). Callers use it before upgrading.
   */
  assertRunning(containerId: string): Promise<void>;
  /**
   * Runs `cmd` in the running container with the given I/O; resolves with its exit code once the process has exited
   * and its output has been written. Client stdin EOF closes the process's stdin. When `io.signal` aborts, the
   * process is killed and the call rejects. Not idempotent.
   */
  exec(containerId: string, cmd: string[], io: StreamIO): Promise<number>;
  /** Attaches to the container's main process until it exits or `io.signal` aborts; never stops the container. */
  attach(containerId: string, io: StreamIO): Promise<void>;
  /**
   * Connects `stream` to TCP `port` on localhost inside the sandbox's network namespace (127.0.0.1-only listeners
   * included), both ways, until either side ends. Rejects with the connector's message when the port cannot be
   * reached. Leaves no process behind once it settles or `signal` aborts.
   */
  portForward(sandboxId: string, port: number, stream: NodeJS.ReadWriteStream, signal: AbortSignal): Promise<void>;
}
