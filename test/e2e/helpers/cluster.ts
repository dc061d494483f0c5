// Helpers for end-to-end tests against the rig's real kube-apiserver (test/e2e/apiserver.sh). Paths come from
// BERTH_E2E_DIR (default /var/lib/berth-e2e), the endpoint from BERTH_E2E_APISERVER or the admin kubeconfig. `requireCluster()` is the skip-guard: it skips a suite when the API
// server is not reachable, except under BERTH_REQUIRE_ALL=1 (scripts/test.sh) or CI=true where it throws (a CI run must
// never pass by skipping; the policy lives in test/helpers/require.ts).
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { mustRunAll, requireEnv } from '../../helpers/require.ts';

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

export { waitFor } from '../../helpers/wait.ts';

/** A name unique to this test run (`prefix-<base36 time>-<random>`), valid as a Kubernetes name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
