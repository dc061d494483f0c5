// Events to the API server as upstream's recorder writes them (client-go tools/record): a new event is
// created as `<object>.<hex nanoseconds>`, a repeat of the same one is a PATCH of its count and
// lastTimestamp. Sent from a bounded queue; when the API server is down events are dropped (with one log
// line), never blocking pod work.
import type { Event } from 'kubernetes-types/core/v1';
import { resources, type KubeApi } from '../../kube/index.ts';
import { errorMessage, hasCode, RateLimiter, type Logger } from '../../lib/index.ts';
import type { EventSink, RecordedEvent } from './events.ts';

const secs = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class ApiEventSink implements EventSink {
  private readonly api: Pick<KubeApi, 'create' | 'patch'>;
  private readonly log: Logger;
  private readonly host: string;
  private readonly names = new WeakMap<RecordedEvent, string>();
  private readonly queue: RecordedEvent[] = [];
  private readonly pending = new Set<RecordedEvent>();
  private running = false;
  private readonly warn = new RateLimiter(60_000);
  private readonly max: number;
  dropped = 0;
  constructor(o: { api: Pick<KubeApi, 'create' | 'patch'>; log: Logger; host: string; maxQueue?: number }) {
    this.api = o.api;
    this.log = o.log;
    this.host = o.host;
    this.max = o.maxQueue ?? 1000;
  }

  publish(e: RecordedEvent): void {
    if (this.pending.has(e)) return; // queued already: it is sent with its latest count
    if (this.queue.length >= this.max) {
      this.dropped++;
      return;
    }
    this.pending.add(e);
    this.queue.push(e);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const e = this.queue.shift()!;
        this.pending.delete(e);
        await this.send(e);
      }
    } finally {
      this.running = false;
    }
  }

  private async send(e: RecordedEvent): Promise<void> {
    const ns = e.object.namespace || 'default';
    let name = this.names.get(e);
    try {
      if (name) {
        await this.api.patch(resources.events, name, { count: e.count, lastTimestamp: secs(e.lastTimestamp), message: e.message }, { namespace: ns, type: 'strategic' });
        return;
      }
      name = `${e.object.name}.${(BigInt(e.firstTimestamp) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)}`;
      const ev: Event = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        involvedObject: {
          kind: e.object.kind,
          namespace: e.object.namespace,
          name: e.object.name,
          uid: e.object.uid,
          apiVersion: e.object.apiVersion,
          fieldPath: e.object.fieldPath,
        },
        reason: e.reason,
        message: e.message,
        source: { component: 'kubelet', host: this.host },
        firstTimestamp: secs(e.firstTimestamp),
        lastTimestamp: secs(e.lastTimestamp),
        count: e.count,
        type: e.type,
        eventTime: undefined,
        reportingComponent: '',
        reportingInstance: '',
      };
      await this.api.create(resources.events, ev, { namespace: ns });
      this.names.set(e, name);
    } catch (err) {
      if (name && hasCode(err, 'NotFound')) this.names.delete(e);
      if (this.warn.allow('events')) this.log.warn({ err: errorMessage(err) }, 'sending event failed; dropping it');
    }
  }
}
