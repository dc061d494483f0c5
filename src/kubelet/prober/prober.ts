// Liveness, readiness and startup probes (pkg/kubelet/prober): one worker per container and probe type,
// thresholds counted as upstream, readiness starting at failure, liveness at success, startup gating the
// other two, liveness/startup failures held until the container is restarted. Result changes ask the
// pod's worker for a sync; every failed probe is an `Unhealthy` event with upstream's message. One probe run is
// handlers.ts's runHandler, which the pod sync's lifecycle hooks use too.
import type { Pod, Probe } from 'kubernetes-types/core/v1';
import type { ContainerStatus, RuntimeService } from '../../cri/index.ts';
import { type Clock, type Logger, systemClock } from '../../lib/index.ts';
import { podObjectRef, type EventRecorder } from '../status/events.ts';
import { nameOf, type ObservedPod } from '../pod/observed.ts';
import { runHandler } from './handlers.ts';

export type ProbeType = 'liveness' | 'readiness' | 'startup';
type Result = 'success' | 'failure' | 'unknown';

interface Worker {
  key: string;
  uid: string;
  containerId: string;
  containerName: string;
  type: ProbeType;
  probe: Probe;
  result: Result;
  lastResult: Result;
  resultRun: number;
  onHold: boolean;
  timer?: NodeJS.Timeout;
  stopped: boolean;
  startedAt: number;
}

const capitalized: Record<ProbeType, string> = { liveness: 'Liveness', readiness: 'Readiness', startup: 'Startup' };

export interface ProbeManagerOptions {
  runtime: Pick<RuntimeService, 'execSync'>;
  recorder: EventRecorder;
  log: Logger;
  clock?: Clock;
  onChange: (uid: string) => void;
}

/** One probe run, for prober_probe_total (pkg/kubelet/prober/prober_manager.go ProberResults). */
export interface ProbeRun {
  probeType: ProbeType;
  result: 'successful' | 'failed' | 'unknown';
  container: string;
  pod: string;
  namespace: string;
  podUid: string;
}

export class ProbeManager {
  /** Called after every probe run (set by the composition root for /metrics/probes); must not throw. */
  onProbeRun?: (run: ProbeRun) => void;
  private readonly o: ProbeManagerOptions;
  private readonly clock: Clock;
  private readonly workers = new Map<string, Worker>();
  private readonly pods = new Map<string, { pod: Pod; podIP: string }>();

  constructor(o: ProbeManagerOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
  }

  private get(id: string, type: ProbeType): Result | undefined {
    return this.workers.get(`${id}/${type}`)?.result;
  }

  /** undefined: no readiness probe for this container (ready when running). */
  readiness = (id: string): boolean | undefined => {
    const r = this.get(id, 'readiness');
    return r === undefined ? undefined : r === 'success';
  };
  startup = (id: string): boolean | undefined => {
    const r = this.get(id, 'startup');
    return r === undefined ? undefined : r === 'success';
  };
  livenessFailed = (id: string): 'failure' | undefined => (this.get(id, 'liveness') === 'failure' ? 'failure' : undefined);
  startupFailed = (id: string): 'failure' | undefined => (this.get(id, 'startup') === 'failure' ? 'failure' : undefined);

  /** Starts workers for running containers with probes, stops the others. Called after every pod sync. */
  sync(pod: Pod, seen: ObservedPod, podIP: string): void {
    const uid = pod.metadata!.uid!;
    this.pods.set(uid, { pod, podIP });
    const wanted = new Set<string>();
    const specs = new Map((pod.spec?.containers ?? []).map((c) => [c.name, c]));
    for (const cs of seen.containers) {
      if (cs.state !== 'CONTAINER_RUNNING') continue;
      const spec = specs.get(nameOf(cs));
      if (!spec) continue;
      for (const [type, probe] of [
        ['liveness', spec.livenessProbe],
        ['readiness', spec.readinessProbe],
        ['startup', spec.startupProbe],
      ] as [ProbeType, Probe | undefined][]) {
        if (!probe) continue;
        const key = `${cs.id}/${type}`;
        wanted.add(key);
        if (!this.workers.has(key)) this.startWorker(uid, cs, type, probe);
      }
    }
    for (const [key, w] of this.workers) if (w.uid === uid && !wanted.has(key)) this.stopWorker(key);
  }

  removePod(uid: string): void {
    this.pods.delete(uid);
    for (const [key, w] of this.workers) if (w.uid === uid) this.stopWorker(key);
  }

  stopAll(): void {
    for (const key of [...this.workers.keys()]) this.stopWorker(key);
  }

  private stopWorker(key: string): void {
    const w = this.workers.get(key);
    if (!w) return;
    w.stopped = true;
    if (w.timer) clearTimeout(w.timer);
    this.workers.delete(key);
  }

  private startWorker(uid: string, cs: ContainerStatus, type: ProbeType, probe: Probe): void {
    const initial: Result = type === 'readiness' ? 'failure' : type === 'liveness' ? 'success' : 'unknown';
    const w: Worker = {
      key: `${cs.id}/${type}`,
      uid,
      containerId: cs.id,
      containerName: nameOf(cs),
      type,
      probe,
      result: initial,
      lastResult: 'unknown',
      resultRun: 0,
      onHold: false,
      stopped: false,
      startedAt: cs.startedAt,
    };
    this.workers.set(w.key, w);
    const tick = async (): Promise<void> => {
      if (w.stopped) return;
      try {
        await this.doProbe(w);
      } catch (err) {
        this.o.log.warn({ err, containerId: w.containerId, probe: type }, 'probe failed to run');
      }
      if (!w.stopped) w.timer = setTimeout(() => void tick(), (probe.periodSeconds ?? 10) * 1000);
    };
    const delay = Math.max(0, w.startedAt + (probe.initialDelaySeconds ?? 0) * 1000 - this.clock.now());
    w.timer = setTimeout(() => void tick(), delay);
  }

  private async doProbe(w: Worker): Promise<void> {
    if (w.onHold) return;
    const p = this.pods.get(w.uid);
    if (!p) return;
    const spec = p.pod.spec?.containers.find((c) => c.name === w.containerName);
    if (!spec) return;
    // Liveness and readiness wait for the startup probe to succeed.
    if (w.type !== 'startup' && this.workers.has(`${w.containerId}/startup`) && this.startup(w.containerId) !== true) return;
    const out = await runHandler(w.probe, spec, p.podIP, w.containerId, this.o.runtime);
    if (w.stopped) return;
    const result: Result = out.result;
    this.onProbeRun?.({
      probeType: w.type,
      result: result === 'success' ? 'successful' : 'failed',
      container: w.containerName,
      pod: p.pod.metadata?.name ?? '',
      namespace: p.pod.metadata?.namespace ?? '',
      podUid: w.uid,
    });
    if (result === 'failure') {
      this.o.recorder.event(podObjectRef(p.pod, `spec.containers{${w.containerName}}`), 'Warning', 'Unhealthy', `${capitalized[w.type]} probe failed: ${out.output}`);
    }
    if (w.lastResult === result) w.resultRun++;
    else {
      w.lastResult = result;
      w.resultRun = 1;
    }
    const threshold = result === 'failure' ? w.probe.failureThreshold ?? 3 : w.probe.successThreshold ?? 1;
    if (w.resultRun < threshold) return;
    const changed = w.result !== result;
    w.result = result;
    if ((w.type === 'liveness' || w.type === 'startup') && result === 'failure') {
      w.onHold = true;
      w.resultRun = 0;
    }
    if (changed) this.o.onChange(w.uid);
  }
}
