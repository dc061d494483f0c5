// The node's presence in the cluster: registers the Node (or adopts an existing one), posts its status, and keeps the
// node Lease renewed. Effects only: what to send is computed in node-status.ts and lease.ts. Follows
// pkg/kubelet/kubelet_node_status.go (registerWithAPIServer, syncNodeStatus, updateNodeStatus, tryUpdateNodeStatus)
// with KEP-589: status is computed every nodeStatusUpdateFrequency (10 s) and posted only when it changed or
// nodeStatusReportFrequency (5 min) passed; the Lease is the heartbeat.
import type { Node, NodeStatus, Taint } from 'kubernetes-types/core/v1';
import type { Image, ImageService, RuntimeService } from '../../cri/index.ts';
import { resources, apiErrorDetails, type KubeApi } from '../../kube/index.ts';
import { Backoff, errorMessage, hasCode, isNotFound, RateLimiter, systemClock, type BackoffPolicy, type Clock, type Logger } from '../../lib/index.ts';
import { NodeLeaseController, pause, DEFAULT_LEASE_DURATION_SECONDS } from './lease.ts';
import { hostMachineReader, type MachineReader } from './machine.ts';
import {
  buildInitialNode,
  buildNodeStatusPatch,
  computeAdoptionPatch,
  computeNodeStatus,
  computePressure,
  computeReadinessErrors,
  computeRuntimeNotReady,
  computeThresholdsCrossed,
  isNodeStatusChanged,
  DEFAULT_EVICTION_HARD,
  type EvictionThresholds,
  type MachineInfo,
  type NodePressure,
  type PressureObservations,
  type Reservations,
} from './node-status.ts';

/** The API slice the node manager uses (nodes and node leases). */
export type NodeApi = Pick<KubeApi, 'get' | 'create' | 'update' | 'patch' | 'patchStatus'>;

/** What the node manager needs of the container runtime. */
export type NodeRuntime = Pick<RuntimeService, 'version'> & Pick<ImageService, 'listImages'>;

export interface PlegHealth {
  ok: boolean;
  /** Why not (`pleg was last seen active 3m5s ago; threshold is 3m0s`), see computePlegHealth. */
  message?: string | undefined;
}

export interface NodeManagerOptions {
  api: NodeApi;
  nodeName: string;
  /** kubernetes.io/hostname label and the Hostname address. Default: nodeName. */
  hostname?: string | undefined;
  /** The InternalIP (--node-ip or the detected host IP). Read at every status update. */
  hostIP: () => string;
  /**
   * Runtime version (also the runtime health check: a failed call makes the node NotReady with the runtime's
   * not-ready error until one succeeds, and "container runtime is down" is added when none succeeded for 30 s) and
   * the image list. Both called once per status update with their own timeout.
   */
  runtime: NodeRuntime;
  /** PLEG health; absent = not checked. Called once per status update; must not block. */
  plegHealth?: (() => PlegHealth) | undefined;
  /** Further reasons the node is not ready (e.g. network); each string becomes part of the Ready message. */
  readinessErrors?: (() => string[]) | undefined;
  /** The kubelet root dir (its filesystem is ephemeral-storage). Used by the default machine reader. */
  rootDir: string;
  /** Docker's root dir (imagefs), default /var/lib/docker. Used by the default machine reader. */
  imageFsDir?: string | undefined;
  /** Machine facts; default hostMachineReader({ rootDir, imageFsDir }). */
  machine?: MachineReader | undefined;
  /** --port, reported as daemonEndpoints.kubeletEndpoint.Port. Default 10250. */
  kubeletPort?: number | undefined;
  /** Default 110. */
  maxPods?: number | undefined;
  /** --node-labels (registration only). */
  nodeLabels?: Readonly<Record<string, string>> | undefined;
  /** --register-with-taints (registration only). */
  registerWithTaints?: readonly Taint[] | undefined;
  /** --register-node (default true). When false the Node must exist; its status is still posted. */
  registerNode?: boolean | undefined;
  nodeStatusUpdateFrequencyMs?: number | undefined;
  nodeStatusReportFrequencyMs?: number | undefined;
  nodeLeaseDurationSeconds?: number | undefined;
  evictionHard?: EvictionThresholds | undefined;
  /**
   * The pressure conditions to report (the eviction manager's, transition period applied). Called once per status
   * update; must not block. Absent: computed here from the machine readings against `evictionHard`.
   */
  pressure?: (() => NodePressure) | undefined;
  /** --eviction-pressure-transition-period, default 5 min (only without `pressure`). */
  evictionPressureTransitionPeriodMs?: number | undefined;
  /** --kube-reserved + --system-reserved; none by default. */
  reserved?: Reservations | undefined;
  /** Timeout of each runtime and API call made here (default 10 s). */
  callTimeoutMs?: number | undefined;
  log: Logger;
  clock?: Clock | undefined;
}

/** registerWithAPIServer's step: 100 ms doubled before each sleep, so 200 ms, 400 ms … capped at 7 s. */
const REGISTER_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 7000 };
/** Upstream nodeStatusUpdateRetry: attempts per update when the write conflicts. */
const STATUS_UPDATE_RETRIES = 5;
/** Upstream maxWaitForContainerRuntime. */
const RUNTIME_THRESHOLD_MS = 30_000;
const LOG_REPEAT_MS = 5 * 60_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class NodeManager {
  private readonly o: NodeManagerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly lease: NodeLeaseController;
  private readonly machineReader: MachineReader;
  private readonly limiter: RateLimiter;
  private readonly abort = new AbortController();
  private readonly listeners = new Set<(node: Node) => void>();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private wakeRequested = false;

  private machine: MachineInfo | undefined;
  private initial: Node | undefined;
  private current: Node | undefined;
  private isRegistered = false;
  private lastReportAt = 0;
  private lastStatusSyncAt = 0;
  private runtimeLastOkAt: number | undefined;
  private runtimeChecked = false;
  /** Set while the last runtime check failed (upstream runtimeState.runtimeError). */
  private runtimeError: string | undefined;
  private runtimeVersion = 'docker://Unknown';
  private images: Image[] = [];
  private pressureSeen: PressureObservations = {};
  private startedAt = 0;
  /** Registration attempts so far (diagnostics, tests). */
  registrationAttempts = 0;

  constructor(opts: NodeManagerOptions) {
    this.o = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.limiter = new RateLimiter(LOG_REPEAT_MS, () => this.clock.now());
    this.machineReader = opts.machine ?? hostMachineReader({ rootDir: opts.rootDir, imageFsDir: opts.imageFsDir });
    this.lease = new NodeLeaseController({
      api: opts.api,
      nodeName: opts.nodeName,
      leaseDurationSeconds: opts.nodeLeaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS,
      nodeUid: () => this.current?.metadata?.uid,
      log: opts.log.child({ component: 'node-lease' }),
      clock: this.clock,
    });
  }

  /**
   * Reads the machine facts, computes the initial Node (so `node()` answers at once), then starts registration, status
   * updates and the Lease in the background. Resolves once the facts are read; does not wait for the API server.
   * Call once.
   */
  async start(): Promise<void> {
    if (this.loop) return;
    this.startedAt = this.clock.now();
    this.machine = await this.machineReader.machineInfo();
    const signal = this.abort.signal;
    this.initial = await this.buildNode(signal);
    this.lease.start();
    this.loop = this.run(signal);
  }

  /** Stops all loops (the Node stays; its Lease expires). Resolves when they have ended. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('node manager stopped'));
    this.wake?.();
    await Promise.all([this.loop, this.lease.stop()]);
  }

  /**
   * The Node as last seen on the API server, or, before that, the Node berth would register (upstream's initialNode):
   * labels and allocatable for pod admission. Throws before start() resolved.
   */
  node(): Node {
    const n = this.current ?? this.initial;
    if (!n) throw new Error('node manager not started');
    return n;
  }

  /** Whether the Node exists on the API server as far as berth knows. */
  get registered(): boolean {
    return this.isRegistered;
  }

  /** Calls `cb` whenever a newer Node is seen on the API server (registration, each status post or read). */
  onNode(cb: (node: Node) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Asks for a status update now (e.g. the PLEG turned healthy, the runtime came back). Coalesced. */
  requestStatusUpdate(): void {
    this.wakeRequested = true;
    this.wake?.();
  }

  /**
   * For /healthz: the Lease was renewed within its duration and the status was synced (read, and posted when due)
   * within that time too. True during the first lease duration after start.
   */
  healthy(): boolean {
    const windowMs = (this.o.nodeLeaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS) * 1000;
    const since = this.lastStatusSyncAt || this.startedAt;
    return this.lease.healthy() && this.clock.now() - since < Math.max(windowMs, 2 * this.updateFrequencyMs());
  }

  /** When the Lease was last renewed (epoch ms, 0 = never). */
  get lastLeaseRenewAt(): number {
    return this.lease.lastRenewAt;
  }

  // ------------------------------------------------------------------ loop

  private updateFrequencyMs(): number {
    return this.o.nodeStatusUpdateFrequencyMs ?? 10_000;
  }

  private callTimeoutMs(): number {
    return this.o.callTimeoutMs ?? 10_000;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(REGISTER_BACKOFF);
    while (!signal.aborted) {
      let justRegistered = false;
      if ((this.o.registerNode ?? true) && !this.isRegistered) {
        if (!(await this.tryRegister(signal))) {
          await pause(this.clock, backoff.next(), signal);
          continue;
        }
        backoff.reset();
        justRegistered = true;
      }
      try {
        await this.updateNodeStatus(signal);
      } catch (err: unknown) {
        if (signal.aborted) break;
        if (isNotFound(err) && (this.o.registerNode ?? true)) {
          this.log.warn({ node: this.o.nodeName }, 'node not found on the API server; registering it again');
          this.isRegistered = false;
          if (!justRegistered) continue;
        } else {
          this.logFailure('status', err, 'error updating node status, will retry');
        }
      }
      await this.idle(signal);
    }
  }

  /** Waits one update period, or less when requestStatusUpdate() is called. */
  private async idle(signal: AbortSignal): Promise<void> {
    if (this.wakeRequested) {
      this.wakeRequested = false;
      return;
    }
    const ac = new AbortController();
    const both = AbortSignal.any([signal, ac.signal]);
    this.wake = () => ac.abort();
    try {
      await pause(this.clock, this.updateFrequencyMs(), both);
    } finally {
      this.wake = undefined;
      this.wakeRequested = false;
    }
  }

  /** One registration attempt (tryRegisterWithAPIServer). Never rejects. */
  private async tryRegister(signal: AbortSignal): Promise<boolean> {
    this.registrationAttempts++;
    const name = this.o.nodeName;
    const opts = { signal, timeoutMs: this.callTimeoutMs() };
    let desired: Node | undefined;
    try {
      desired = await this.buildNode(signal);
      this.initial = desired;
      const created = await this.o.api.create<Node>(resources.nodes, desired, opts);
      this.isRegistered = true;
      this.lastReportAt = this.clock.now();
      this.lastStatusSyncAt = this.lastReportAt;
      this.setNode(created);
      this.log.info({ node: name, uid: created.metadata?.uid }, 'node registered');
      return true;
    } catch (err: unknown) {
      if (signal.aborted) return false;
      if (!desired || !hasCode(err, 'AlreadyExists')) {
        this.logFailure('register', err, 'unable to register node with the API server');
        return false;
      }
    }
    try {
      const existing = await this.o.api.get<Node>(resources.nodes, name, opts);
      const patch = computeAdoptionPatch(desired, existing);
      const adopted = patch ? await this.o.api.patch<Node>(resources.nodes, name, patch, { ...opts, type: 'merge' }) : existing;
      this.isRegistered = true;
      this.setNode(adopted);
      this.log.info({ node: name, uid: adopted.metadata?.uid, reconciled: patch ? Object.keys({ ...patch.metadata.labels, ...patch.metadata.annotations }) : [] }, 'node already registered; adopted it');
      return true;
    } catch (err: unknown) {
      if (signal.aborted) return false;
      this.logFailure('adopt', err, 'unable to adopt the existing node');
      return false;
    }
  }

  /** updateNodeStatus: retries conflicts; a NotFound propagates (the caller registers again). */
  private async updateNodeStatus(signal: AbortSignal): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await this.tryUpdateNodeStatus(signal);
        return;
      } catch (err: unknown) {
        if (!hasCode(err, 'Conflict') || i + 1 >= STATUS_UPDATE_RETRIES || signal.aborted) throw err;
      }
    }
  }

  private async tryUpdateNodeStatus(signal: AbortSignal): Promise<void> {
    const opts = { signal, timeoutMs: this.callTimeoutMs() };
    const existing = await this.o.api.get<Node>(resources.nodes, this.o.nodeName, opts);
    this.setNode(existing);
    const status = await this.computeStatus(existing.status, signal);
    const now = this.clock.now();
    if (now - this.lastReportAt < (this.o.nodeStatusReportFrequencyMs ?? 300_000) && !isNodeStatusChanged(existing.status, status)) {
      this.lastStatusSyncAt = now;
      return;
    }
    const patch = buildNodeStatusPatch(existing.status, status);
    const updated = await this.o.api.patchStatus<Node>(resources.nodes, this.o.nodeName, patch, { ...opts, type: 'strategic' });
    this.lastReportAt = now;
    this.lastStatusSyncAt = now;
    this.logReadyTransition(existing.status, updated.status);
    this.setNode(updated);
  }

  // ------------------------------------------------------------------ inputs

  private async buildNode(signal: AbortSignal): Promise<Node> {
    const status = await this.computeStatus(undefined, signal);
    return buildInitialNode({
      nodeName: this.o.nodeName,
      hostname: this.hostname(),
      nodeLabels: this.o.nodeLabels,
      taints: this.o.registerWithTaints,
      status,
    });
  }

  private hostname(): string {
    return this.o.hostname ?? this.o.nodeName;
  }

  /** Gathers the dynamic inputs (runtime, images, readings) and computes the status against `previous`. */
  private async computeStatus(previous: NodeStatus | undefined, signal: AbortSignal): Promise<NodeStatus> {
    const machine = this.machine;
    if (!machine) throw new Error('node manager not started');
    const timeout = this.callTimeoutMs();
    const [version, images, stats] = await Promise.allSettled([
      withTimeout(this.o.runtime.version(), timeout, 'runtime version'),
      withTimeout(this.o.runtime.listImages(), timeout, 'list images'),
      this.machineReader.nodeStats(),
    ]);
    if (signal.aborted) throw signal.reason;
    const now = this.clock.now();
    this.runtimeChecked = true;
    if (version.status === 'fulfilled') {
      this.runtimeLastOkAt = now;
      this.runtimeError = undefined;
      this.runtimeVersion = `${version.value.runtimeName}://${version.value.runtimeVersion}`;
    } else {
      this.runtimeError = computeRuntimeNotReady(errorMessage(version.reason));
      this.logFailure('runtime', version.reason, 'container runtime version check failed');
    }
    if (images.status === 'fulfilled') this.images = images.value;
    else if (version.status === 'fulfilled') this.logFailure('images', images.reason, 'listing images failed; keeping the previous list');
    const readings = stats.status === 'fulfilled' ? stats.value : {};
    const eviction = this.o.evictionHard ?? DEFAULT_EVICTION_HARD;
    let pressure: NodePressure;
    if (this.o.pressure) {
      pressure = this.o.pressure();
    } else {
      const computed = computePressure(
        computeThresholdsCrossed(readings, eviction),
        this.pressureSeen,
        now,
        this.o.evictionPressureTransitionPeriodMs ?? 5 * 60_000,
      );
      pressure = computed.pressure;
      this.pressureSeen = computed.observations;
    }
    let extra: string[] = [];
    try {
      extra = this.o.readinessErrors?.() ?? [];
    } catch (err: unknown) {
      extra = [errorMessage(err)];
    }
    const readinessErrors = computeReadinessErrors({
      now,
      runtimeLastOkAt: this.runtimeLastOkAt,
      runtimeChecked: this.runtimeChecked,
      runtimeThresholdMs: RUNTIME_THRESHOLD_MS,
      pleg: this.o.plegHealth?.(),
      runtimeError: this.runtimeError,
      extra,
    });
    return computeNodeStatus(
      {
        machine,
        nodeFsCapacityBytes: readings.nodeFs?.capacityBytes,
        hostIP: this.o.hostIP(),
        hostname: this.hostname(),
        maxPods: this.o.maxPods ?? 110,
        kubeletPort: this.o.kubeletPort ?? 10250,
        containerRuntimeVersion: this.runtimeVersion,
        images: this.images,
        pressure,
        readinessErrors,
        reserved: this.o.reserved,
        evictionHard: eviction,
      },
      previous,
      now,
    );
  }

  // ------------------------------------------------------------------ bookkeeping

  private setNode(node: Node): void {
    const prev = this.current;
    this.current = node;
    if (prev && prev.metadata?.resourceVersion === node.metadata?.resourceVersion && prev.metadata?.uid === node.metadata?.uid) return;
    for (const cb of this.listeners) {
      try {
        cb(node);
      } catch (err: unknown) {
        this.log.error({ err }, 'node listener failed');
      }
    }
  }

  private logReadyTransition(prev: NodeStatus | undefined, next: NodeStatus | undefined): void {
    const before = prev?.conditions?.find((c) => c.type === 'Ready');
    const after = next?.conditions?.find((c) => c.type === 'Ready');
    if (!after || before?.status === after.status) return;
    if (after.status === 'True') this.log.info({ node: this.o.nodeName }, 'node is ready');
    else this.log.warn({ node: this.o.nodeName, reason: after.reason, message: after.message }, 'node is not ready');
  }

  /** Logs a repeated failure once per 5 min (with the server's message), later repeats at debug. */
  private logFailure(what: string, err: unknown, msg: string): void {
    const d = apiErrorDetails(err);
    const key = `${what}:${d?.statusCode ?? 0}:${errorMessage(err)}`;
    const fields = { err, node: this.o.nodeName, statusCode: d?.statusCode, reason: d?.reason };
    if (this.limiter.allow(key)) this.log.warn(fields, msg);
    else this.log.debug(fields, msg);
  }
}
