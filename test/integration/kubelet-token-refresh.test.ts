// Issue #12: a service-account token refresh reaches the projected volume, forced early with a fake clock. The real
// volume code (setupPodVolumes: projected payload + atomic writer on tmpfs) with the real TokenManager, against the
// rig's real kube-apiserver as node-2 (Node authorizer + NodeRestriction; no berth runs as node-2), for a pod bound to
// node-2 created through the admin kubeconfig. Any rig profile: the TokenRequest API is always on.
// Before 80 % of the token's lifetime a sync makes no TokenRequest and leaves the file alone; past it the file holds
// a new token that a TokenReview authenticates as the pod's service account, and the old token is gone from the volume.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import type { KubeClient } from '../../src/kube/index.ts';
import { FakeClock } from '../../src/lib/index.ts';
import { TokenManager, type TokenApi } from '../../src/kubelet/sources/token-manager.ts';
import { setupPodVolumes, teardownPodVolumes } from '../../src/kubelet/volumes/index.ts';
import { countingTokenApi, kubectl, paths, requireCluster, uniqueName } from '../e2e/helpers/cluster.ts';

const up = await requireCluster();
const TTL_S = 600; // the TokenRequest API's minimum expirationSeconds
const SA = 'berth-refresh';

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; extra?: Record<string, string[]> };
  error?: string;
}
async function tokenReview(token: string): Promise<TokenReviewStatus> {
  const review = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } };
  return (JSON.parse(await kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(review) })) as { status: TokenReviewStatus }).status;
}

/** Every regular file under `dir` (not following symlinks), with its bytes. */
function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of filesUnder(p)) out.set(k, v);
    else if (e.isFile()) out.set(p, readFileSync(p, 'utf8'));
  }
  return out;
}

describe.skipIf(!up)('a projected serviceAccountToken is refreshed into the volume at 80 % of its lifetime (real API server, fake clock)', () => {
  const NS = uniqueName('tok-refresh');
  const rootDir = mkdtempSync(path.join(os.tmpdir(), 'berth-tokrefresh-'));
  let api: KubeClient;
  let pod: Pod;
  let count = { calls: 0 };
  let counted: TokenApi;

  beforeAll(async () => {
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['-n', NS, 'create', 'serviceaccount', SA]);
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'refresh', namespace: NS },
      spec: {
        nodeName: 'node-2',
        serviceAccountName: SA,
        automountServiceAccountToken: false,
        containers: [{ name: 'c', image: 'berth-test/busybox:latest' }],
        volumes: [
          {
            name: 'tok',
            projected: {
              sources: [
                { serviceAccountToken: { path: 'token', expirationSeconds: TTL_S } },
                { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
              ],
            },
          },
        ],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    pod = JSON.parse(await kubectl(['-n', NS, 'get', 'pod', 'refresh', '-o', 'json'])) as Pod;
    ({ api, tokenApi: counted, count } = await countingTokenApi('node-2'));
  }, 60_000);

  afterAll(async () => {
    if (pod?.metadata?.uid) await teardownPodVolumes(rootDir, pod.metadata.uid).catch(() => undefined);
    rmSync(rootDir, { recursive: true, force: true });
    await api?.close();
    await kubectl(['delete', 'pod', '-n', NS, '--all', '--grace-period=0', '--force']).catch(() => undefined);
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']).catch(() => undefined);
  }, 60_000);

  it('projects the token, keeps it until 80 % of its lifetime, then writes a new valid one and drops the old', async () => {
    const clock = new FakeClock(Date.now());
    const tokens = new TokenManager({ api: counted, clock, random: () => 0 });
    const uid = pod.metadata!.uid!;
    const dir = path.join(rootDir, 'pods', uid, 'volumes', 'kubernetes.io~projected', 'tok');
    const sync = async (): Promise<void> => {
      const out = await setupPodVolumes(pod, { rootDir, tokens });
      expect(out.get('tok')).toBe(dir);
    };
    const review = async (token: string): Promise<void> => {
      expect(await tokenReview(token)).toMatchObject({
        authenticated: true,
        user: { username: `system:serviceaccount:${NS}:${SA}`, extra: { 'authentication.kubernetes.io/pod-name': ['refresh'], 'authentication.kubernetes.io/pod-uid': [uid] } },
      });
    };

    // First sync: one TokenRequest, the token in the volume.
    await sync();
    expect(count.calls).toBe(1);
    const first = readFileSync(path.join(dir, 'token'), 'utf8');
    expect(first.split('.')).toHaveLength(3);
    await review(first);
    const firstData = readlinkSync(path.join(dir, '..data'));
    expect(readFileSync(path.join(dir, 'namespace'), 'utf8')).toBe(NS);

    // Well before 80 % (470 s of 600 s): served from the cache, no request, the projection untouched.
    clock.advance(470_000);
    await sync();
    expect(count.calls).toBe(1);
    expect(readlinkSync(path.join(dir, '..data'))).toBe(firstData);
    expect(readFileSync(path.join(dir, 'token'), 'utf8')).toBe(first);

    // The real server signs iat/exp in whole seconds (no jti in 1.20): a request within the same second as the first
    // would get the same bytes back. Let the wall clock move on so a refresh is seen as a different token.
    await new Promise((r) => setTimeout(r, 1100));
    // Past 80 % (490 s > 480 s): the next sync requests a new token and the writer swaps it in.
    clock.advance(20_000);
    await sync();
    expect(count.calls).toBe(2);
    const second = readFileSync(path.join(dir, 'token'), 'utf8');
    expect(second).not.toBe(first);
    await review(second);
    const secondData = readlinkSync(path.join(dir, '..data'));
    expect(secondData).not.toBe(firstData);
    expect(statSync(path.join(dir, firstData), { throwIfNoEntry: false })).toBeUndefined();
    // The old token is nowhere in the volume any more; the other source's file is still there.
    const files = filesUnder(dir);
    expect([...files.keys()].sort()).toEqual([path.join(dir, secondData, 'namespace'), path.join(dir, secondData, 'token')]);
    expect([...files.values()].filter((v) => v.includes(first))).toEqual([]);
    expect(readFileSync(path.join(dir, 'namespace'), 'utf8')).toBe(NS);
  }, 60_000);
});
