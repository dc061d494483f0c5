// Mirror pods (pkg/kubelet/pod/mirror_client.go): every static pod gets a read-only copy in the API server,
// annotated `kubernetes.io/config.mirror: <config hash>` and owned by the Node, so `kubectl get pods` shows it.
// A mirror pod whose hash no longer matches (the manifest was edited) is replaced; one whose static pod is
// gone is deleted. Level-triggered: each sync compares the full sets.
import type { Pod } from 'kubernetes-types/core/v1';
import { resources, type KubeApi } from '../../kube/index.ts';
import { errorMessage, hasCode, RateLimiter, type Logger } from '../../lib/index.ts';

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
export const CONFIG_HASH_ANNOTATION = 'kubernetes.io/config.hash';

export const isMirrorPod = (p: Pod): boolean => p.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined;

export interface MirrorActions {
  create: Pod[];
  /** Mirror pods to delete (stale hash, orphaned, or being deleted) — by namespace/name/uid. */
  delete: Pod[];
}

/** Pure: what to create and delete so that mirrors match the static pods. */
export function computeMirrorActions(staticPods: Pod[], mirrors: Pod[], node: { name: string; uid?: string }): MirrorActions {
  const key = (p: Pod): string => `${p.metadata?.namespace}/${p.metadata?.name}`;
  const byKey = new Map(mirrors.map((m) => [key(m), m]));
  const create: Pod[] = [];
  const del: Pod[] = [];
  const wanted = new Set<string>();
  for (const sp of staticPods) {
    const k = key(sp);
    wanted.add(k);
    const hash = sp.metadata?.annotations?.[CONFIG_HASH_ANNOTATION] ?? sp.metadata?.uid ?? '';
    const m = byKey.get(k);
    if (m && m.metadata?.annotations?.[MIRROR_ANNOTATION] === hash && !m.metadata?.deletionTimestamp) continue;
    // A stale mirror, or one someone deleted (graceful deletion waits for this node): remove it for good
    // (grace 0, UID precondition) and create a fresh one; the create succeeds once the old one is gone.
    if (m) del.push(m);
    create.push(buildMirrorPod(sp, hash, node));
  }
  for (const m of mirrors) if (!wanted.has(key(m))) del.push(m);
  return { create, delete: del };
}

export function buildMirrorPod(sp: Pod, hash: string, node: { name: string; uid?: string }): Pod {
  const m = sp.metadata!;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: m.name,
      namespace: m.namespace,
      labels: m.labels,
      annotations: { ...(m.annotations ?? {}), [MIRROR_ANNOTATION]: hash },
      ownerReferences: node.uid ? [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid, controller: true }] : undefined,
    },
    spec: sp.spec,
  };
}

export interface MirrorPodManagerOptions {
  api: Pick<KubeApi, 'create' | 'delete'>;
  log: Logger;
  node: () => { name: string; uid?: string };
}

export class MirrorPodManager {
  private readonly o: MirrorPodManagerOptions;
  private readonly warn = new RateLimiter(60_000);
  constructor(o: MirrorPodManagerOptions) {
    this.o = o;
  }

  /** One pass; errors are logged (rate-limited) and retried on the next pass. */
  async sync(staticPods: Pod[], mirrors: Pod[]): Promise<void> {
    const node = this.o.node();
    const a = computeMirrorActions(staticPods, mirrors, node);
    for (const m of a.delete) {
      try {
        await this.o.api.delete(resources.pods, m.metadata!.name!, { namespace: m.metadata!.namespace, gracePeriodSeconds: 0, preconditions: { uid: m.metadata!.uid } });
        this.o.log.info({ pod: `${m.metadata!.namespace}/${m.metadata!.name}` }, 'deleted mirror pod');
      } catch (err) {
        if (!hasCode(err, 'NotFound') && !hasCode(err, 'Conflict') && this.warn.allow(`del:${m.metadata!.uid}`))
          this.o.log.warn({ err: errorMessage(err), pod: `${m.metadata!.namespace}/${m.metadata!.name}` }, 'deleting mirror pod failed');
      }
    }
    for (const p of a.create) {
      try {
        await this.o.api.create(resources.pods, p, { namespace: p.metadata!.namespace });
        this.o.log.info({ pod: `${p.metadata!.namespace}/${p.metadata!.name}` }, 'created mirror pod');
      } catch (err) {
        if (hasCode(err, 'AlreadyExists')) continue; // the old one is still going away; next pass
        if (this.warn.allow(`create:${p.metadata!.namespace}/${p.metadata!.name}`))
          this.o.log.warn({ err: errorMessage(err), pod: `${p.metadata!.namespace}/${p.metadata!.name}` }, 'creating mirror pod failed');
      }
    }
  }
}
