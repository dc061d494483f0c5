// A transient Docker inspect failure never leads to a second container (issue #9 defect 5). The kubelet runs in
// process against the real dockerd through a wrapper that makes `containerStatus` of each newly created container
// fail its first few times (what a daemon under load or a reset connection does). Before the fix the PLEG handed
// the pod worker a view without the new container, and the worker created it again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { DockerRuntime } from '../../src/cri/docker/index.ts';
import type { ContainerConfig, ContainerStatus, PodSandboxConfig } from '../../src/cri/index.ts';
import { Kubelet } from '../../src/kubelet/kubelet.ts';
import { applyPodDefaults } from '../../src/kubelet/pod/pod-spec.ts';
import { FILE_SOURCE } from '../../src/kubelet/sources/manifest-source.ts';
import { RuntimeUnavailableError, silentLogger } from '../../src/lib/index.ts';
import { docker, waitFor } from '../helpers/berth.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

/** Each new container's inspect fails for this long after its creation. */
const FAIL_FOR_MS = 3000;

describe('kubelet with a failing container inspect (real Docker)', () => {
  const nodeName = `t-pleg-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-pleg-'));
  const real = new DockerRuntime({ log: silentLogger });
  const failUntil = new Map<string, number>();
  /** createContainer calls by container name (failed ones included). */
  const creates = new Map<string, number>();
  let injected = 0;
  // The real runtime with one fault: a newly created container's inspect fails for FAIL_FOR_MS.
  const runtime = new Proxy(real, {
    get(target, key, receiver) {
      if (key === 'createContainer')
        return async (podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> => {
          creates.set(config.metadata.name, (creates.get(config.metadata.name) ?? 0) + 1);
          const id = await target.createContainer(podSandboxId, config, sandboxConfig);
          failUntil.set(id, Date.now() + FAIL_FOR_MS);
          return id;
        };
      if (key === 'containerStatus')
        return async (id: string): Promise<ContainerStatus> => {
          if (Date.now() < (failUntil.get(id) ?? 0)) {
            injected++;
            throw new RuntimeUnavailableError(`inspect ${id}: injected failure`);
          }
          return target.containerStatus(id);
        };
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const kubelet = new Kubelet({
    runtime,
    images: real,
    log: silentLogger,
    node: { nodeName, hostname: nodeName, memoryCapacityBytes: os.totalmem(), clusterDNS: [], clusterDomain: 'cluster.local', rootDir: path.join(tmp, 'root'), podLogsDir: path.join(tmp, 'logs') },
    hostIP: () => '127.0.0.1',
    relistPeriodMs: 200,
    sources: [FILE_SOURCE],
  });
  const ours = async (): Promise<{ Id: string; Labels: Record<string, string> }[]> =>
    docker.listContainers({ all: true, filters: { label: [`io.berth.node=${nodeName}`] } });

  beforeAll(async () => {
    await ensureTestImages(docker);
    kubelet.start();
  });

  afterAll(async () => {
    await kubelet.stop();
    for (const c of await ours()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('starts each container exactly once although its first inspects fail, and the pod ends up Running', async () => {
    const pod = applyPodDefaults({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `flaky-${nodeName}`, namespace: 'default', uid: `uid-${nodeName}`, annotations: { 'kubernetes.io/config.source': FILE_SOURCE } },
      spec: {
        nodeName,
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'a', image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'] },
          { name: 'b', image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'] },
        ],
      },
    } as Pod);
    kubelet.updateSource(FILE_SOURCE, [pod]);
    // Something else asks for syncs meanwhile (probes, status updates, the periodic resync do).
    const kicker = setInterval(() => kubelet.kick(pod.metadata!.uid!), 150);
    try {
      await waitFor(() => injected > 0, 30_000, 'an injected inspect failure');
      await new Promise((r) => setTimeout(r, FAIL_FOR_MS));
    } finally {
      clearInterval(kicker);
    }
    const rec = await waitFor(() => {
      const r = kubelet.pod(pod.metadata!.uid!);
      return r?.status.phase === 'Running' && r.status.containerStatuses?.every((c) => c.ready) && r;
    }, 60_000, 'pod Running with both containers ready');
    expect(injected).toBeGreaterThanOrEqual(4);
    expect(Object.fromEntries(creates)).toEqual({ a: 1, b: 1 });
    // no Failed/BackOff/…: the only warning allowed is upstream's MissingClusterDNS (this node has no --cluster-dns)
    expect(kubelet.recorder.all().filter((e) => e.type === 'Warning' && e.reason !== 'MissingClusterDNS')).toEqual([]);
    // a few more relists and syncs: still one container per name, none restarted
    await new Promise((r) => setTimeout(r, 1500));
    const app = (await ours()).filter((c) => c.Labels['io.kubernetes.container.name'] !== 'POD');
    expect(app.map((c) => c.Labels['io.kubernetes.container.name']).sort()).toEqual(['a', 'b']);
    expect((await ours()).filter((c) => c.Labels['io.kubernetes.container.name'] === 'POD')).toHaveLength(1);
    expect(rec.status.containerStatuses?.map((c) => c.restartCount)).toEqual([0, 0]);
  });
});
