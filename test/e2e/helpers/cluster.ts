// Helpers for end-to-end tests against the rig's real kube-apiserver (test/e2e/apiserver.sh). Paths come from
// BERTH_E2E_DIR (default /var/lib/berth-e2e), the endpoint from BERTH_E2E_APISERVER or the admin kubeconfig. `requireCluster()` is the skip-guard: it skips a suite when the API
// server is not reachable, except under BERTH_REQUIRE_ALL=1 (scripts/test.sh) or CI=true where it throws (a CI run must
// never pass by skipping; the policy lives in test/helpers/require.ts).
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Pod, Service } from 'kubernetes-types/core/v1';
import { parse as parseYaml } from 'yaml';
import { shContainer, useBerth, type BerthProcess, type UseBerthOptions } from '../../helpers/berth.ts';
import { mustRunAll, requireEnv } from '../../helpers/require.ts';
import { waitFor } from '../../helpers/wait.ts';
import { KubeClient, loadClientConfig, type KubeApi } from '../../../src/kube/index.ts';
import { httpGet } from '../../../src/lib/http-get.ts';
import type { TokenApi } from '../../../src/kubelet/sources/token-manager.ts';

export const E2E_DIR = process.env.BERTH_E2E_DIR ?? '/var/lib/berth-e2e';

export const paths = {
  dir: E2E_DIR,
  adminKubeconfig: path.join(E2E_DIR, 'admin.kubeconfig'),
  nodeKubeconfig: (node = 'node-1'): string => path.join(E2E_DIR, `${node}.kubeconfig`),
  nodeToken: (node = 'node-1'): string => path.join(E2E_DIR, `${node}.token`),
  kubectl: path.join(E2E_DIR, 'bin', 'kubectl'),
  caCert: path.join(E2E_DIR, 'pki', 'ca.crt'),
  clientCert: (node = 'node-1'): string => path.join(E2E_DIR, 'pki', `${node}-client.crt`),
  clientKey: (node = 'node-1'): string => path.join(E2E_DIR, 'pki', `${node}-client.key`),
  kubeletServingCert: (node = 'node-1'): string => path.join(E2E_DIR, 'pki', `kubelet-${node}.crt`),
  kubeletServingKey: (node = 'node-1'): string => path.join(E2E_DIR, 'pki', `kubelet-${node}.key`),
} as const;

/** True when skipping is a failure (BERTH_REQUIRE_ALL=1 or CI=true). */
export const isCI = mustRunAll();

/** This host's node name for tests that run berth as the node (scripts/test.sh exports it). */
export const e2eNodeName = process.env.BERTH_E2E_NODE_NAME ?? os.hostname().toLowerCase();

/** BERTH_E2E_APISERVER, else the server named in the admin kubeconfig (https://127.0.0.1:6443 on the rig). */
export function apiServerUrl(): string {
  if (process.env.BERTH_E2E_APISERVER) return process.env.BERTH_E2E_APISERVER;
  const doc = parseYaml(readFileSync(paths.adminKubeconfig, 'utf8')) as { clusters?: { cluster?: { server?: string } }[] };
  const server = doc.clusters?.[0]?.cluster?.server;
  if (!server) throw new Error(`${paths.adminKubeconfig}: no cluster server`);
  return server;
}

/** Why the cluster is not usable, or undefined when /readyz answers ok. */
export async function clusterProblem(timeoutMs = 3000): Promise<string | undefined> {
  for (const f of [paths.adminKubeconfig, paths.nodeKubeconfig(), paths.kubectl, paths.caCert]) {
    if (!existsSync(f)) return `${f} is missing`;
  }
  let url: URL;
  try {
    url = new URL('/readyz', apiServerUrl());
  } catch (err: unknown) {
    return String(err);
  }
  return new Promise((resolve) => {
    const req = https.get(url, { ca: readFileSync(paths.caCert), timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? undefined : `${url.href}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve(`${url.href}: ${err.message}`));
  });
}

/**
 * The skip-guard. Returns true when the API server is up. When it is not: under BERTH_REQUIRE_ALL=1 or CI=true throws
 * (the suite fails loudly); otherwise warns loudly and returns false so the caller can `describe.skipIf(!up)`.
 */
export async function requireCluster(): Promise<boolean> {
  return requireEnv('e2e: kube-apiserver', await clusterProblem(), { hint: 'start it with: bash test/e2e/apiserver.sh start' });
}

export interface KubectlOptions {
  /** Written to stdin (for `apply -f -`). */
  input?: string;
  /** Default: the admin kubeconfig. */
  kubeconfig?: string;
  timeoutMs?: number;
}

/** Runs kubectl and returns stdout; rejects with stderr on a non-zero exit or timeout. */
export function kubectl(args: string[], opts: KubectlOptions = {}): Promise<string> {
  const argv = ['--kubeconfig', opts.kubeconfig ?? paths.adminKubeconfig, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(paths.kubectl, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`kubectl ${args.join(' ')}: ${signal ? `killed (${signal})` : `exit ${code}`}: ${err.trim()}`));
    });
    child.stdin.end(opts.input ?? '');
  });
}

export { waitFor };

/** A name unique to this test run (`prefix-<base36 time>-<random>`), valid as a Kubernetes name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Waits until the API server shows node `node` Ready=True. */
export function waitNodeReady(node: string, timeoutMs = 40_000, intervalMs?: number): Promise<true> {
  return waitFor(async () => (await kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True', timeoutMs, {
    what: 'node Ready',
    ...(intervalMs ? { intervalMs } : {}),
  });
}

export interface ClusterBerthOptions extends Omit<UseBerthOptions, 'nodeName'> {
  /** The node name (and its kubeconfig in the rig's dir). */
  node: string;
  /** Delete a left-over Node object of this name before starting (default false). */
  replaceNode?: boolean;
  /** How long the node has to become Ready (default 40 s), and how often to look. */
  nodeReadyTimeoutMs?: number;
  nodeReadyIntervalMs?: number;
  /** Runs once the node is Ready (or `ready` has resolved), still in beforeAll. */
  afterReady?: () => Promise<unknown>;
}

/**
 * berth as node `o.node` of the rig's API server for the current describe block (useBerth with the node's
 * kubeconfig, ready when the Node is Ready or `ready` resolves; extraArgs come after --kubeconfig).
 */
export function useClusterBerth(o: ClusterBerthOptions): BerthProcess {
  const { node, replaceNode, nodeReadyTimeoutMs, nodeReadyIntervalMs, afterReady, beforeStart, ready, ...rest } = o;
  return useBerth({
    ...rest,
    nodeName: node,
    extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(node)}`, ...(o.extraArgs ?? [])],
    beforeStart: async () => {
      if (replaceNode) await kubectl(['delete', 'node', node, '--ignore-not-found', '--wait=false']);
      await beforeStart?.();
    },
    ready: async (berth) => {
      if (ready) await ready(berth);
      else await waitNodeReady(node, nodeReadyTimeoutMs, nodeReadyIntervalMs);
      await afterReady?.();
    },
  });
}

/**
 * Deletes (force, no grace) the pods labelled berth-e2e=<run> in `ns`, then runs each `also` kubectl command, then deletes
 * the Node; retried for up to 40 s (the API server may just have restarted).
 */
export function deleteRunObjects(o: { ns: string; run: string; node: string; also?: string[][] }): Promise<true> {
  return waitFor(
    async () => {
      await kubectl(['delete', 'pod', '-n', o.ns, '-l', `berth-e2e=${o.run}`, '--ignore-not-found', '--grace-period=0', '--force']);
      for (const args of o.also ?? []) await kubectl(args);
      await kubectl(['delete', 'node', o.node, '--ignore-not-found', '--wait=false']);
      return true;
    },
    40_000,
    { what: 'e2e objects deleted', intervalMs: 1000 },
  );
}

/** One best-effort pass (errors ignored): force-deletes the `kinds` labelled berth-e2e=<run> in `ns`, then the Node. */
export async function dropRunObjects(o: { ns: string; run: string; node: string; kinds?: string }): Promise<void> {
  await kubectl(['delete', o.kinds ?? 'pod', '-n', o.ns, '-l', `berth-e2e=${o.run}`, '--ignore-not-found', '--grace-period=0', '--force']).catch(() => undefined);
  await kubectl(['delete', 'node', o.node, '--ignore-not-found', '--wait=false']).catch(() => undefined);
}

/** Applies one object (JSON or YAML text) with `kubectl apply -f -`. */
export function kubectlApply(text: string): Promise<string> {
  return kubectl(['apply', '-f', '-'], { input: text });
}

/**
 * Two busybox httpd pods `<run>-1`, `<run>-2` on `node` (port 8080 "http", each serving its hostname, tcp readiness
 * probe) behind the NodePort Service `<run>` (port 80); all labelled berth-e2e=<run>. Returns the Service as created.
 */
export async function applyWebService(o: { ns: string; run: string; node: string }): Promise<Service> {
  const { ns, run, node } = o;
  for (const i of [1, 2]) {
    await kubectlApply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${run}-${i}`, namespace: ns, labels: { app: run, 'berth-e2e': run } },
        spec: {
          nodeName: node,
          terminationGracePeriodSeconds: 1,
          containers: [
            shContainer('web', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www', {
              ports: [{ containerPort: 8080, name: 'http' }],
              readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
            }),
          ],
        },
      }),
    );
  }
  await kubectlApply(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: run, namespace: ns, labels: { 'berth-e2e': run } },
      spec: { type: 'NodePort', selector: { app: run }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }] },
    }),
  );
  return JSON.parse(await kubectl(['get', 'svc', '-n', ns, run, '-o', 'json'])) as Service;
}

/** Waits (up to `timeoutMs`, 150 s by default) until the EndpointSlices of Service `ns/service` hold `n` ready endpoints. */
export function waitReadyEndpoints(ns: string, service: string, n: number, timeoutMs = 150_000): Promise<true> {
  return waitFor(
    async () => {
      const out = await kubectl(['get', 'endpointslices', '-n', ns, '-l', `kubernetes.io/service-name=${service}`, '-o', 'json']);
      const slices = JSON.parse(out) as { items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] };
      return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready).length === n;
    },
    timeoutMs,
    { what: `EndpointSlice with ${n} ready endpoints`, intervalMs: 500 },
  );
}

/**
 * GET `url` (2 s timeout) on a connection of its own and return the body, trimmed; rejects on a status other than
 * 2xx. A new connection per request matters for Service traffic: fetch's keep-alive pool would send every later
 * request over a connection opened before the proxy's rules were in (not DNATed, so it went out the default route
 * to whatever answers there), and the spread over endpoints would never be seen.
 */
export async function getText(url: string): Promise<string> {
  const u = new URL(url);
  const res = await httpGet({
    scheme: 'http',
    host: u.hostname,
    port: Number(u.port || 80),
    path: u.pathname + u.search,
    headers: {},
    timeoutMs: 2000,
    maxBodyBytes: 64 * 1024 * 1024,
  });
  if (res.status < 200 || res.status > 299) throw new Error(`GET ${url}: HTTP ${res.status}: ${res.body.trim().slice(0, 200)}`);
  return res.body.trim();
}

/** Polls `url` (10 requests a round) until every one of `names` has answered; returns every answer seen. */
export async function answersFromAll(url: string, names: Set<string>, what: string): Promise<Set<string>> {
  const seen = new Set<string>();
  await waitFor(
    async () => {
      for (let i = 0; i < 10; i++) seen.add(await getText(url));
      return [...names].every((n) => seen.has(n));
    },
    30_000,
    { what: `${what} answering from both pods`, intervalMs: 500 },
  );
  return seen;
}

/** Pod `ns/name` as the API server has it, or undefined when it does not exist. */
export async function getPod(ns: string, name: string): Promise<Pod | undefined> {
  try {
    return JSON.parse(await kubectl(['get', 'pod', '-n', ns, name, '-o', 'json'])) as Pod;
  } catch (err) {
    if (/NotFound/.test(String(err))) return undefined;
    throw err;
  }
}

/**
 * An API client with `node`'s own credentials, and a TokenManager API over it that counts its TokenRequest creates
 * (`count.calls`; the tests reset it as they need).
 */
export async function countingTokenApi(node: string): Promise<{ api: KubeClient; tokenApi: TokenApi; count: { calls: number } }> {
  const api = new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.nodeKubeconfig(node), env: {} }) });
  const count = { calls: 0 };
  const create = ((...a: Parameters<KubeApi['create']>) => {
    count.calls++;
    return api.create(...a);
  }) as KubeApi['create'];
  return { api, tokenApi: { create }, count };
}
