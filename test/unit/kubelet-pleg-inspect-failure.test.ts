// The PLEG never hands out a partial view of a pod (issue #9 defect 5). Upstream: pkg/kubelet/pleg/generic.go —
// a pod whose inspect failed keeps its old cache entry, is put in podsToReinspect, and GetNewerThan does not return
// for it until a relist inspected it whole. Otherwise a new container missing from the view is started again.
import { afterEach, describe, expect, it } from 'vitest';
import type { Container, ContainerStatus, PodSandbox, PodSandboxStatus, RuntimeEvent } from '../../src/cri/index.ts';
import { NotFoundError, RuntimeUnavailableError, silentLogger } from '../../src/lib/index.ts';
import { Pleg, type PlegRuntime } from '../../src/kubelet/runtime/pleg.ts';
import { POD_UID, running, sandbox } from './helpers/kubelet-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/** A runtime holding fixed statuses; `failInspect` ids throw RuntimeUnavailable, `vanish` ids NotFound. */
class FakePlegRuntime implements PlegRuntime {
  sandboxes = new Map<string, PodSandboxStatus>();
  containers = new Map<string, ContainerStatus>();
  failInspect = new Set<string>();
  vanish = new Set<string>();
  inspects: string[] = [];
  async listPodSandbox(): Promise<PodSandbox[]> {
    return [...this.sandboxes.values()].map(({ network: _n, linux: _l, ...s }) => s);
  }
  async listContainers(): Promise<Container[]> {
    return [...this.containers.values()].map((c) => ({ id: c.id, podSandboxId: c.podSandboxId, metadata: c.metadata, image: c.image, imageRef: c.imageRef, state: c.state, createdAt: c.createdAt, labels: c.labels, annotations: c.annotations }));
  }
  private inspect<T>(id: string, m: Map<string, T>): T {
    this.inspects.push(id);
    if (this.vanish.has(id)) throw new NotFoundError(`no such object ${id}`);
    if (this.failInspect.has(id)) throw new RuntimeUnavailableError(`inspect ${id}: connection reset`);
    const v = m.get(id);
    if (!v) throw new NotFoundError(`no such object ${id}`);
    return structuredClone(v);
  }
  async containerStatus(id: string): Promise<ContainerStatus> {
    return this.inspect(id, this.containers);
  }
  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    return this.inspect(id, this.sandboxes);
  }
  async *events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
  }
}

let pleg: Pleg | undefined;
afterEach(() => pleg?.stop());

function start(rt: FakePlegRuntime): { pleg: Pleg; changed: string[] } {
  const changed: string[] = [];
  pleg = new Pleg({ runtime: rt, log: silentLogger, relistPeriodMs: 20 });
  pleg.onPodChanged((uid) => changed.push(uid));
  pleg.start();
  return { pleg, changed };
}
const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('PLEG with a failing inspect', () => {
  it('a new container whose inspect fails is not dropped from a view that is then handed out: the pod keeps its old entry and getNewerThan waits', async () => {
    const rt = new FakePlegRuntime();
    const sb = sandbox();
    rt.sandboxes.set(sb.id, sb);
    rt.containers.set('app-0', running('app'));
    const { pleg, changed } = start(rt);
    await waitFor(() => pleg.get(POD_UID).containers.length === 1, 5000, { intervalMs: 10 });
    const before = pleg.get(POD_UID);

    // a second container appears and its inspect fails (a transient Docker error)
    rt.containers.set('side-0', running('side', { createdAt: Date.now() }));
    rt.failInspect.add('side-0');
    const asked = Date.now();
    const nChanged = changed.length;
    let got: ReturnType<Pleg['get']> | undefined;
    void pleg.getNewerThan(POD_UID, asked).then((v) => (got = v));
    await waitFor(() => rt.inspects.filter((i) => i === 'side-0').length >= 3, 5000, { intervalMs: 10 });

    // never a view without the new container: the old entry stays whole, no change is announced, no sync happens
    expect(got).toBeUndefined();
    expect(pleg.get(POD_UID)).toBe(before);
    expect(changed.length).toBe(nChanged);
    expect(pleg.freshness(POD_UID)).toBeLessThanOrEqual(asked);

    // the daemon recovers: the next relist sees the pod whole, and the waiting sync gets both containers
    rt.failInspect.delete('side-0');
    await waitFor(() => got, 5000, { intervalMs: 10 });
    expect(got!.containers.map((c) => c.id).sort()).toEqual(['app-0', 'side-0']);
    expect(changed.length).toBeGreaterThan(nChanged);
  });

  it('a failed inspect of a known container whose state changed keeps the whole previous view', async () => {
    const rt = new FakePlegRuntime();
    const sb = sandbox();
    rt.sandboxes.set(sb.id, sb);
    rt.containers.set('app-0', running('app'));
    rt.containers.set('side-0', running('side'));
    const { pleg } = start(rt);
    await waitFor(() => pleg.get(POD_UID).containers.length === 2, 5000, { intervalMs: 10 });
    const before = pleg.get(POD_UID);
    rt.containers.set('app-0', { ...running('app'), state: 'CONTAINER_EXITED', exitCode: 1 });
    rt.failInspect.add('app-0');
    await waitFor(() => rt.inspects.filter((i) => i === 'app-0').length >= 3, 5000, { intervalMs: 10 });
    expect(pleg.get(POD_UID)).toBe(before);
    rt.failInspect.delete('app-0');
    await waitFor(() => pleg.get(POD_UID).containers.find((c) => c.id === 'app-0')?.state === 'CONTAINER_EXITED', 5000, { intervalMs: 10 });
  });

  it('other pods are not held back by one pod whose inspect fails', async () => {
    const rt = new FakePlegRuntime();
    rt.containers.set('bad-0', { ...running('bad'), id: 'bad-0', labels: { 'io.kubernetes.pod.uid': 'uid-bad', 'io.kubernetes.container.name': 'bad' } });
    rt.failInspect.add('bad-0');
    const { pleg } = start(rt);
    await waitFor(() => rt.inspects.includes('bad-0'), 5000, { intervalMs: 10 });
    rt.containers.set('app-0', running('app'));
    const v = await pleg.getNewerThan(POD_UID, Date.now());
    expect(v.containers.map((c) => c.id)).toEqual(['app-0']);
    expect(pleg.uids()).not.toContain('uid-bad');
  });

  it('a container removed between list and inspect (NotFound) is simply gone and does not hold the pod back', async () => {
    const rt = new FakePlegRuntime();
    rt.containers.set('app-0', running('app'));
    rt.containers.set('gone-0', running('gone'));
    rt.vanish.add('gone-0');
    const { pleg } = start(rt);
    const v = await pleg.getNewerThan(POD_UID, Date.now());
    expect(v.containers.map((c) => c.id)).toEqual(['app-0']);
    await settle(60);
  });
});
