// Events, aggregated like upstream's recorder (same object + reason + message → count++), kept in a
// bounded in-memory ring for `berth events`/`berth pods` and forwarded to sinks (the API server's Events
// when berth is a cluster node). Reasons are the ones upstream uses (pkg/kubelet/events/event.go).
import type { Pod } from 'kubernetes-types/core/v1';
import type { Logger } from '../../lib/index.ts';

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  apiVersion?: string;
  fieldPath?: string;
}

/** The event object of a pod, or of one of its containers with `fieldPath` (spec.containers{name}). */
export const podObjectRef = (pod: Pod, fieldPath?: string): ObjectRef => ({
  kind: 'Pod',
  apiVersion: 'v1',
  namespace: pod.metadata?.namespace,
  name: pod.metadata?.name ?? '',
  uid: pod.metadata?.uid,
  fieldPath,
});

export type EventType = 'Normal' | 'Warning';

export interface RecordedEvent {
  object: ObjectRef;
  type: EventType;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: number;
  lastTimestamp: number;
}

export interface EventRecorder {
  /** Records an event; never throws, never blocks. */
  event(object: ObjectRef, type: EventType, reason: string, message: string): void;
}

export interface EventSink {
  /** Called with the aggregated event after every record (count may be > 1). Must not throw. */
  publish(e: RecordedEvent): void;
}

export class MemoryRecorder implements EventRecorder {
  private readonly byKey = new Map<string, RecordedEvent>();
  private readonly max: number;
  private readonly log: Logger;
  private readonly now: () => number;
  readonly sinks: EventSink[] = [];
  constructor(opts: { log: Logger; max?: number; now?: () => number }) {
    this.log = opts.log;
    this.max = opts.max ?? 2000;
    this.now = opts.now ?? Date.now;
  }
  event(object: ObjectRef, type: EventType, reason: string, message: string): void {
    const key = [object.kind, object.namespace, object.name, object.uid, object.fieldPath, type, reason, message].join('\x00');
    const t = this.now();
    let e = this.byKey.get(key);
    if (e) {
      e.count++;
      e.lastTimestamp = t;
      this.byKey.delete(key);
    } else e = { object, type, reason, message, count: 1, firstTimestamp: t, lastTimestamp: t };
    this.byKey.set(key, e);
    if (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
    const level = type === 'Warning' ? 'warn' : 'info';
    this.log[level]({ object: `${object.kind}/${object.namespace ? object.namespace + '/' : ''}${object.name}`, reason, eventMessage: message, count: e.count }, 'event');
    for (const s of this.sinks) s.publish(e);
  }
  /** Events for one object (by uid, else namespace/name), oldest first. */
  forObject(ref: { uid?: string; namespace?: string; name?: string }): RecordedEvent[] {
    return [...this.byKey.values()].filter((e) =>
      ref.uid ? e.object.uid === ref.uid : e.object.namespace === ref.namespace && e.object.name === ref.name,
    );
  }
  all(): RecordedEvent[] {
    return [...this.byKey.values()];
  }
}
