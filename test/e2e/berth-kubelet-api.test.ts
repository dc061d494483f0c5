// The kubelet API of a berth node through the real kube-apiserver (1.20): `kubectl logs` in its variants and
// `kubectl get --raw …/proxy/pods` proxied by the API server (client certificate kube-apiserver-kubelet-client),
// plus the node API's own security: 401 for anonymous requests, 403 (upstream message) for a certificate user
// without nodes/proxy, and bearer tokens accepted only after a TokenReview. Run with flock /tmp/berth-e2e.lock.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Pod, PodList } from 'kubernetes-types/core/v1';
import { docker } from '../helpers/berth.ts';
import { signClient, type CertPair } from '../helpers/pki.ts';
import { BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { deleteRunObjects, e2eNodeName, kubectl, kubectlApply, paths, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const NS = 'default';
const RUN = uniqueName('kapi');
const PORT = 20000 + Math.floor(Math.random() * 20000);

const manifest = (name: string, script: string, spec: Record<string, unknown> = {}): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { 'berth-e2e': RUN } },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script] }], ...spec },
  });

function direct(p: string, o: { cert?: CertPair; token?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port: PORT, path: p, rejectUnauthorized: false, ...(o.cert ? { cert: o.cert.cert, key: o.cert.key } : {}), headers: o.token ? { authorization: `Bearer ${o.token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
  });
}

describe.skipIf(!up)('kubelet API of a berth node through the API server', () => {
  const web = `${RUN}-web`;
  const crash = `${RUN}-crash`;
  const count = `${RUN}-count`;
  const berth = useClusterBerth({
    node: NODE,
    // The client CA defaults to the kubeconfig's cluster CA, which signed the API server's kubelet-client cert.
    extraArgs: [`--port=${PORT}`, '--node-ip=127.0.0.1', '--crash-loop-backoff-initial=2s', '--crash-loop-backoff-max=4s'],
    replaceNode: true,
    nodeReadyTimeoutMs: 60_000,
    nodeReadyIntervalMs: 500,
    afterReady: async () => {
      await kubectlApply(manifest(web, 'for i in 1 2 3 4 5; do echo line $i; done; sleep 3600'));
      await kubectlApply(manifest(crash, 'echo run $(cat /proc/sys/kernel/random/uuid); exit 1'));
      await waitFor(async () => (await kubectl(['get', 'pod', web, '-o', 'jsonpath={.status.phase}'])) === 'Running', 60_000, { what: 'web running', intervalMs: 500 });
    },
    hookTimeoutMs: 120_000,
    afterCleanup: () => deleteRunObjects({ ns: NS, run: RUN, node: NODE }),
    cleanupTimeoutMs: 90_000,
  });

  it('kubectl logs: plain, --tail, --timestamps, --limit-bytes, --since', async () => {
    expect(await kubectl(['logs', web])).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    expect(await kubectl(['logs', web, '--tail=2'])).toBe('line 4\nline 5\n');
    expect(await kubectl(['logs', web, '--tail=1', '--timestamps'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line 5\n$/);
    expect(await kubectl(['logs', web, '--limit-bytes=9'])).toBe('line 1\nli');
    expect(await kubectl(['logs', web, '--since=1h'])).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await kubectl(['logs', web, '--since=2s'])).toBe('');
  }, 60_000);

  it('kubectl logs -f streams until the container exits', async () => {
    await kubectl(['apply', '-f', '-'], { input: manifest(count, 'sleep 2; for i in 1 2 3; do echo tick $i; sleep 1; done', { restartPolicy: 'Never' }) });
    await waitFor(async () => (await kubectl(['get', 'pod', count, '-o', 'jsonpath={.status.containerStatuses[0].state.running.startedAt}'])) !== '', 30_000, {
      what: 'count running',
      intervalMs: 300,
    });
    const t0 = Date.now();
    expect(await kubectl(['logs', '-f', count], { timeoutMs: 30_000 })).toBe('tick 1\ntick 2\ntick 3\n');
    expect(Date.now() - t0).toBeLessThan(25_000);
  }, 60_000);

  it('kubectl logs --previous shows the instance that crashed; a pod without one gets the upstream error', async () => {
    // What `kubectl get pod` shows as "Last State: Terminated" is what --previous reads.
    await waitFor(async () => (await kubectl(['get', 'pod', crash, '-o', 'jsonpath={.status.containerStatuses[0].lastState.terminated.containerID}'])) !== '', 60_000, {
      what: 'crash restarted with a last state',
      intervalMs: 500,
    });
    expect(await kubectl(['logs', crash, '--previous'])).toMatch(/^run [0-9a-f-]{36}\n$/);
    await expect(kubectl(['logs', web, '--previous'])).rejects.toThrow(`previous terminated container "c" in pod "${web}" not found`);
    await expect(kubectl(['logs', web, '-c', 'nope'])).rejects.toThrow(/container nope is not valid for pod/);
  }, 90_000);

  it('kubectl get --raw …/nodes/<node>/proxy/pods returns the node pod list', async () => {
    const list = JSON.parse(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/pods`])) as PodList;
    expect(list.kind).toBe('PodList');
    expect(list.items.map((p: Pod) => p.metadata?.name)).toEqual(expect.arrayContaining([web, crash]));
    expect(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/healthz`])).toBe('ok');
  });

  it('an anonymous request to the node API gets 401', async () => {
    expect(await direct('/pods')).toEqual({ status: 401, body: 'Unauthorized' });
    expect(await direct(`/containerLogs/${NS}/${web}/c`)).toEqual({ status: 401, body: 'Unauthorized' });
  });

  it('a certificate user without nodes/proxy gets 403 with the upstream message', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-pki-'));
    const ca = { certFile: paths.caCert, keyFile: path.join(paths.dir, 'pki', 'ca.key') };
    const nobody = signClient(dir, ca, 'nobody', `/CN=e2e-nobody-${RUN}`);
    expect(await direct(`/containerLogs/${NS}/${web}/c`, { cert: nobody })).toEqual({
      status: 403,
      body: `Forbidden (user=e2e-nobody-${RUN}, verb=get, resource=nodes, subresource=proxy)`,
    });
    expect((await direct('/stats/summary', { cert: nobody })).body).toContain('subresource=stats');
    const admin = signClient(dir, ca, 'masters', `/CN=e2e-admin-${RUN}/O=system:masters`);
    expect(await direct(`/containerLogs/${NS}/${web}/c?tailLines=1`, { cert: admin })).toEqual({ status: 200, body: 'line 5\n' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bearer token is accepted only after a TokenReview names its user', async () => {
    const adminToken = readFileSync(path.join(paths.dir, 'admin.token'), 'utf8').trim();
    expect(await direct(`/containerLogs/${NS}/${web}/c?tailLines=1`, { token: adminToken })).toEqual({ status: 200, body: 'line 5\n' });
    // The node's own token authenticates as system:node:<node>, which may not read nodes/proxy.
    const nodeToken = readFileSync(paths.nodeToken(NODE), 'utf8').trim();
    expect(await direct('/pods', { token: nodeToken })).toEqual({ status: 403, body: `Forbidden (user=system:node:${NODE}, verb=get, resource=nodes, subresource=proxy)` });
    expect(await direct('/pods', { token: 'not-a-real-token' })).toEqual({ status: 401, body: 'Unauthorized' });
  });
});
