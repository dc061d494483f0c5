// Container logs as the kubelet serves them: PodLogOptions decoding and validation, choosing the instance
// (current or previous) from the pod's status, and reading Docker's json-file logs (tail, since, timestamps, byte
// limit, follow across rotation). Used by the kubelet API (/containerLogs) and `berth logs`.
export { computePodLogOptions, sinceMs, parseRfc3339, DECODE_ERROR, INVALID_ERROR, type PodLogOptions, type LogOptionsResult } from './log-options.ts';
export { selectLogContainer, hasContainerSpec, type LogSelection } from './select.ts';
export { decodeJsonLogLine, findTailStart, listLogFiles, readContainerLog, type LogEntry, type ReadLogOptions, type ReadLogInput } from './json-file.ts';
export { openContainerLog, podFromRuntime, type ContainerLogRequest, type OpenedLog, type PodLookup, type LogRuntime } from './container-logs.ts';
