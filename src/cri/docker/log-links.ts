// The legacy container log link the kubelet keeps for log shippers (kuberuntime_container.go legacyLogSymlink):
// /var/log/containers/<pod>_<namespace>_<container>-<containerID>.log → the container's /var/log/pods path. berth
// derives the folder from the pod log root (<root>/pods → <root>/containers), so a relocated --pod-logs-dir (tests)
// keeps its links beside it.
import path from 'node:path';
import { L } from '../labels.ts';

const EXT4_MAX_FILE_NAME = 255;

/**
 * Pure: the link path for a container whose kubelet log path is `<podLogsDir>/<ns>_<pod>_<uid>/<container>/<n>.log`;
 * undefined when the labels do not name a pod container.
 */
export function legacyLogSymlink(logPath: string, labels: Record<string, string>, containerId: string): string | undefined {
  const pod = labels[L.podName];
  const ns = labels[L.podNamespace];
  const container = labels[L.containerName];
  if (!pod || !ns || !container || !logPath) return undefined;
  const podLogsDir = path.dirname(path.dirname(path.dirname(logPath)));
  let name = `${pod}_${ns}_${container}-${containerId}`;
  if (name.length > EXT4_MAX_FILE_NAME - '.log'.length) name = name.slice(0, EXT4_MAX_FILE_NAME - '.log'.length);
  return path.join(path.dirname(podLogsDir), 'containers', `${name}.log`);
}
