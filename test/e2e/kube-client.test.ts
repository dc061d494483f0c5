// src/kube against the rig's real kube-apiserver (v1.20.2, Node authorizer + NodeRestriction), as node-1.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, copyFile, writeFile, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Node, Pod } from 'kubernetes-types/core/v1';
import { stringify } from 'yaml';
import {
  loadClientConfig,
  KubeClient,
  Discovery,
  Informer,
  resources,
  apiErrorDetails,
  type ClientConfig,
} from '../../src/kube/index.ts';
import { hasCode, isNotFound, silentLogger } from '../../src/lib/index.ts';
import { requireCluster, paths, kubectl, waitFor, uniqueName, apiServerUrl } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = 'node-1';

describe.skipIf(!up)('kube client against a real API server', () => {
  let config: ClientConfig;
  let client: KubeClient;
  let admin: KubeClient;
  let tmp: string;
  const ns = uniqueName('berth-kube-e2e');

  beforeAll(async () => {
    config = await loadClientConfig({ kubeconfigPath: paths.nodeKubeconfig(NODE), env: {} });
    client = new KubeClient({ config, requestTimeoutMs: 15_000 });
    admin = new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.adminKubeconfig, env: {} }) });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'berth-kube-e2e-'));
    await kubectl(['create', 'namespace', ns]);
  });

  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => undefined);
    await client?.close();
    await admin?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('discovery picks the versions this server serves', async () => {
    const discovery = new Discovery({ api: client });
    const v = await discovery.serverVersion();
    expect(v.major).toBe('1');
    const minor = Number.parseInt(v.minor ?? '0', 10);
    const want = minor >= 21 ? 'v1' : 'v1beta1'; // v1 of both groups came in 1.21; the rig runs 1.20.2
    expect(await discovery.preferredVersion('discovery.k8s.io', ['v1', 'v1beta1'])).toBe(want);
    expect(await discovery.preferredVersion('policy', ['v1', 'v1beta1'])).toBe(want);
    expect(await discovery.preferredVersion('coordination.k8s.io', ['v1'])).toBe('v1');
    const slices = await discovery.resolve(resources.endpointslices, ['v1', 'v1beta1']);
    // node-1 may list EndpointSlices on the rig (system:node-proxier bound to system:nodes)
    const list = await client.list(slices, { limit: 1 });
    expect(Array.isArray(list.items)).toBe(true);
  });

  it('creates, reads and patches (merge, strategic, json, apply) its own Node; deletes it as admin', async () => {
    await kubectl(['delete', 'node', NODE, '--ignore-not-found']);
    const created = await client.create<Node>(resources.nodes, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE } },
    });
    expect(created.metadata?.uid).toBeTruthy();
    try {
      const got = await client.get<Node>(resources.nodes, NODE);
      expect(got.metadata?.uid).toBe(created.metadata?.uid);

      await expect(client.create<Node>(resources.nodes, { metadata: { name: NODE } })).rejects.toMatchObject({ code: 'AlreadyExists', statusCode: 409 });

      const merged = await client.patch<Node>(resources.nodes, NODE, { metadata: { labels: { 'berth.test/merge': 'yes' } } }, { type: 'merge' });
      expect(merged.metadata?.labels?.['berth.test/merge']).toBe('yes');

      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const withStatus = await client.patchStatus<Node>(
        resources.nodes,
        NODE,
        {
          status: {
            conditions: [{ type: 'Ready', status: 'False', reason: 'BerthE2E', message: 'kube client test', lastHeartbeatTime: now, lastTransitionTime: now }],
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          },
        },
        { type: 'strategic' },
      );
      expect(withStatus.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('BerthE2E');

      const jsonPatched = await client.patch<Node>(resources.nodes, NODE, [{ op: 'add', path: '/metadata/annotations', value: { 'berth.test/json': '1' } }], { type: 'json' });
      expect(jsonPatched.metadata?.annotations?.['berth.test/json']).toBe('1');

      const applied = await client.patch<Node>(
        resources.nodes,
        NODE,
        { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: { 'berth.test/apply': 'yes' } } },
        { type: 'apply', fieldManager: 'berth-e2e' },
      );
      expect(applied.metadata?.labels?.['berth.test/apply']).toBe('yes');
      expect(applied.metadata?.managedFields?.some((f) => f.manager === 'berth-e2e' && f.operation === 'Apply')).toBe(true);

      // a stale resourceVersion is a write conflict (current content, older version: NodeRestriction would refuse
      // an update that reverts taints the node controller added meanwhile, before the version is even checked)
      const latest = await client.get<Node>(resources.nodes, NODE);
      const olderRV = String(Number(latest.metadata?.resourceVersion) - 1);
      const stale = { ...latest, metadata: { ...latest.metadata, resourceVersion: olderRV } };
      await expect(client.update<Node>(resources.nodes, stale)).rejects.toMatchObject({ code: 'Conflict', statusCode: 409 });

      // the Node authorizer does not let a node delete Node objects, not even its own
      const own = await client.delete(resources.nodes, NODE).catch((e: unknown) => e);
      expect(hasCode(own, 'Forbidden')).toBe(true);
      expect((own as Error).message).toMatch(/cannot delete resource "nodes"/);

      // delete with a wrong uid precondition: Conflict, the Node stays
      const wrong = await admin.delete(resources.nodes, NODE, { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } }).catch((e: unknown) => e);
      expect(hasCode(wrong, 'Conflict')).toBe(true);
      expect(apiErrorDetails(wrong)?.status?.message).toMatch(/the UID in the precondition .* does not match/);
    } finally {
      // (as the admin, as a node's deletion is the cluster operator's or the node controller's business)
      await admin.delete(resources.nodes, NODE, { preconditions: { uid: created.metadata?.uid }, gracePeriodSeconds: 0 });
    }
    const gone = await client.get(resources.nodes, NODE).catch((e: unknown) => e);
    expect(isNotFound(gone)).toBe(true);
    expect(apiErrorDetails(gone)?.status?.reason).toBe('NotFound');
  });

  it('maps 403 to Forbidden with the server message', async () => {
    const err = await client.list(resources.secrets).catch((e: unknown) => e);
    expect(hasCode(err, 'Forbidden')).toBe(true);
    expect((err as Error).message).toMatch(/User "system:node:node-1" cannot list resource "secrets" in API group "" at the cluster scope/);
    expect(apiErrorDetails(err)).toMatchObject({ statusCode: 403, reason: 'Forbidden' });
    // NodeRestriction: a node may not create (or modify) another node
    const other = await client.create<Node>(resources.nodes, { metadata: { name: 'node-2' } }).catch((e: unknown) => e);
    expect(hasCode(other, 'Forbidden')).toBe(true);
    expect((other as Error).message).toMatch(/node "node-1" is not allowed to modify node "node-2"/);
  });

  it('an informer on pods bound to node-1 sees add, update and delete', async () => {
    const events: string[] = [];
    const informer = new Informer<Pod>({
      api: client,
      ref: resources.pods,
      fieldSelector: `spec.nodeName=${NODE}`,
      log: silentLogger,
      stallTimeoutMs: 90_000,
      minWatchTimeoutSeconds: 1, // the server ends each watch after 1–2 s: exercises re-watching
    });
    informer.addEventHandler({
      onAdd: (p) => void (p.metadata?.namespace === ns && events.push(`add ${p.metadata.name}`)),
      onUpdate: (_o, p) => void (p.metadata?.namespace === ns && events.push(`update ${p.metadata.name} ${p.metadata.labels?.step ?? ''}`)),
      onDelete: (p) => void (p.metadata?.namespace === ns && events.push(`delete ${p.metadata.name}`)),
    });
    informer.start();
    try {
      await informer.waitForSync(AbortSignal.timeout(15_000));
      // Watches the server ended are re-opened from the last resourceVersion, without relisting.
      await waitFor(() => informer.stats().watches >= 3, 15_000, { what: 'three watches' });
      expect(informer.stats().lists).toBe(1);
      const name = 'informed';
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, labels: { step: 'one' } },
        spec: { nodeName: NODE, containers: [{ name: 'c', image: 'registry.invalid/none:1' }], terminationGracePeriodSeconds: 0 },
      };
      // a pod on another node must not reach this informer
      const elsewhere = { ...pod, metadata: { ...pod.metadata, name: 'elsewhere' }, spec: { ...pod.spec, nodeName: 'node-2' } };
      await kubectl(['apply', '-f', '-'], { input: stringify(elsewhere) + '---\n' + stringify(pod) });
      await waitFor(() => events.includes(`add ${name}`), 15_000, { what: 'add event' });
      expect(informer.get(`${ns}/${name}`).spec?.nodeName).toBe(NODE);

      await kubectl(['-n', ns, 'label', 'pod', name, 'step=two', '--overwrite']);
      await waitFor(() => events.includes(`update ${name} two`), 15_000, { what: 'update event' });

      await kubectl(['-n', ns, 'delete', 'pod', name, '--grace-period=0', '--force']);
      await waitFor(() => events.includes(`delete ${name}`), 15_000, { what: 'delete event' });
      expect(informer.has(`${ns}/${name}`)).toBe(false);
      expect(events.some((e) => e.includes('elsewhere'))).toBe(false);
      expect(informer.healthy()).toBe(true);
      expect(informer.lastSyncAgeMs()).toBeLessThan(15_000);
      expect(informer.stats()).toMatchObject({ lists: 1, gone: 0, stalls: 0, failures: 0 });
      await kubectl(['-n', ns, 'delete', 'pod', 'elsewhere', '--grace-period=0', '--force', '--ignore-not-found']);
    } finally {
      await informer.stop();
    }
  });

  it('authenticates with a client certificate (relative paths in a written kubeconfig) and with a tokenFile', async () => {
    await mkdir(path.join(tmp, 'pki'));
    await copyFile(paths.clientCert(NODE), path.join(tmp, 'pki', 'client.crt'));
    await copyFile(paths.clientKey(NODE), path.join(tmp, 'pki', 'client.key'));
    await copyFile(paths.caCert, path.join(tmp, 'pki', 'ca.crt'));
    await copyFile(paths.nodeToken(NODE), path.join(tmp, 'token'));
    const kc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'rig', cluster: { server: apiServerUrl(), 'certificate-authority': 'pki/ca.crt' } }],
      users: [
        { name: 'cert', user: { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key' } },
        { name: 'tokenfile', user: { tokenFile: 'token' } },
      ],
      contexts: [
        { name: 'cert', context: { cluster: 'rig', user: 'cert' } },
        { name: 'tokenfile', context: { cluster: 'rig', user: 'tokenfile' } },
      ],
      'current-context': 'cert',
    };
    const file = path.join(tmp, 'kubeconfig');
    await writeFile(file, stringify(kc));
    for (const context of ['cert', 'tokenfile']) {
      const cfg = await loadClientConfig({ kubeconfigPath: file, context, env: {} });
      const c = new KubeClient({ config: cfg });
      try {
        // The identity shows in the authorizer's message.
        const err = await c.list(resources.secrets).catch((e: unknown) => e);
        expect(hasCode(err, 'Forbidden')).toBe(true);
        expect((err as Error).message).toMatch(/User "system:node:node-1"/);
        const v = await c.request<{ major: string }>({ method: 'GET', path: '/version' });
        expect(v.major).toBe('1');
      } finally {
        await c.close();
      }
    }
  });

  it('verifies the serving certificate: CA, tls-server-name, insecure-skip-tls-verify', async () => {
    const tryWith = async (tls: ClientConfig['tls']): Promise<unknown> => {
      const c = new KubeClient({ config: { ...config, tls } });
      try {
        return await c.request({ method: 'GET', path: '/version' });
      } catch (err: unknown) {
        return err;
      } finally {
        await c.close();
      }
    };
    const noCa = await tryWith({ insecureSkipTlsVerify: false });
    expect(hasCode(noCa, 'ApiUnavailable')).toBe(true);
    expect((noCa as Error).message).toMatch(/certificate/i);
    expect(await tryWith({ insecureSkipTlsVerify: true })).toMatchObject({ major: '1' });
    expect(await tryWith({ ca: config.tls.ca, serverName: 'kubernetes.default', insecureSkipTlsVerify: false })).toMatchObject({ major: '1' });
    const wrongName = await tryWith({ ca: config.tls.ca, serverName: 'wrong.example', insecureSkipTlsVerify: false });
    expect(hasCode(wrongName, 'ApiUnavailable')).toBe(true);
    expect((wrongName as Error).message).toMatch(/wrong\.example/);
  });
});
