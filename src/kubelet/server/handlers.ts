// The kubelet API's plain JSON endpoints, shared by the secure port and the local read-only port:
// /healthz, /pods (v1 PodList of the pods this node runs), /runningpods/ (pods with running containers, as the
// runtime sees them: upstream's Pod.ToAPIPod), /spec/ (cAdvisor's MachineInfo) and /configz.
import type http from 'node:http';
import type { Pod, PodList } from 'kubernetes-types/core/v1';
import type { PodStatus } from 'kubernetes-types/core/v1';
import { L } from '../../cri/index.ts';
import { nameOf, type ObservedPod } from '../pod/observed.ts';

export interface HealthCheck {
  name: string;
  healthy: () => boolean;
}

/** What the HTTP endpoints read of the kubelet (a narrow view, so tests can pass plain objects). */
export interface KubeletView {
  /** The pods this node runs, each with its current status. */
  pods(): { pod: Pod; status: PodStatus }[];
  /** The runtime's view of one pod (PLEG cache); empty when unknown. */
  observed(uid: string): ObservedPod;
  /** UIDs of every pod the runtime holds for this node. */
  observedUids(): string[];
}

export function writeJson(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function writeHealthz(res: http.ServerResponse, checks: HealthCheck[], verbose: boolean): void {
  const failed = checks.filter((c) => !c.healthy());
  res.writeHead(failed.length ? 500 : 200, { 'content-type': 'text/plain; charset=utf-8' });
  if (verbose) {
    const lines = checks.map((c) => `[${c.healthy() ? '+' : '-'}]${c.name} ${c.healthy() ? 'ok' : 'failed'}`);
    res.end(`${lines.join('\n')}\n${failed.length ? 'healthz check failed' : 'healthz check passed'}\n`);
    return;
  }
  res.end(failed.length ? `[-]${failed.map((f) => f.name).join(',')} failed\nhealthz check failed` : 'ok');
}

/** Pure: /pods. */
export function buildPodList(view: Pick<KubeletView, 'pods'>): PodList {
  return { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: view.pods().map((r) => ({ ...r.pod, status: r.status })) };
}

/** Pure: /runningpods/ from the runtime's view (pods with a ready sandbox or a running container). */
export function buildRunningPodList(seen: ObservedPod[]): PodList {
  const items: Pod[] = [];
  for (const p of seen) {
    const running = p.containers.filter((c) => c.state === 'CONTAINER_RUNNING');
    const sandbox = p.sandboxes.find((s) => s.state === 'SANDBOX_READY');
    if (!running.length && !sandbox) continue;
    const labels = running[0]?.labels ?? {};
    items.push({
      metadata: {
        name: sandbox?.metadata.name ?? labels[L.podName] ?? '',
        namespace: sandbox?.metadata.namespace ?? labels[L.podNamespace] ?? '',
        uid: p.uid,
        creationTimestamp: null as unknown as string,
      },
      spec: { containers: running.map((c) => ({ name: nameOf(c), image: c.image, resources: {} })) },
      status: {},
    });
  }
  return { kind: 'PodList', apiVersion: 'v1', metadata: {}, items };
}

export interface MachineFacts {
  numCores: number;
  memoryCapacityBytes: number;
  machineID: string;
  systemUUID: string;
  bootID: string;
  hugePages: { sizeBytes: number; count: number }[];
}

/** Pure: /spec/ in cAdvisor's MachineInfo JSON names. */
export function buildMachineSpec(m: MachineFacts): Record<string, unknown> {
  return {
    num_cores: m.numCores,
    memory_capacity: m.memoryCapacityBytes,
    hugepages: m.hugePages.map((h) => ({ page_size: h.sizeBytes / 1024, num_pages: h.count })),
    machine_id: m.machineID,
    system_uuid: m.systemUUID,
    boot_id: m.bootID,
  };
}
