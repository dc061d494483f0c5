// The status room owns what the kubelet reports about its pods: events (aggregated, kept in a ring, forwarded
// to sinks such as the API server's Events) and the versioned pod status sent to the API server, never stale.
export { MemoryRecorder, podObjectRef, type EventRecorder, type EventSink, type RecordedEvent, type ObjectRef } from './events.ts';
export { ApiEventSink } from './event-sink.ts';
export { StatusManager } from './status-manager.ts';
