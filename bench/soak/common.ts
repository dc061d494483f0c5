// Shared pieces of the fault campaign (bench/soak.ts, test/e2e/soak.test.ts): berth as a cluster node under a
// node identity of the rig (node-1, node-2; never `vm`, which needs the e2e lock), an admin client, a namespace per
// run, Docker state by berth's labels, RSS from /proc, and cleanup that runs even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { BerthProcess, docker, waitFor } from '../../test/helpers/berth.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from '../../test/integration/helpers/docker-images.ts';
import { kubectl, paths } from '../../test/e2e/helpers/cluster.ts';
import { KubeClient, loadClientConfig, resources } from '../../src/kube/index.ts';
import { createLogger } from '../../src/lib/index.ts';
import { A, DOCKER_TYPE_SANDBOX, L } from '../../src/cri/labels.ts';

export { BUSYBOX_IMAGE, docker, kubectl, paths, resources, waitFor };

export type Profile = 'ci' | 'long';

export interface ScenarioResult {
  scenario: string;
  pass: boolean;
  /** Why it failed (empty when it passed). */
  failures: string[];
  figures: Record<string, unknown>;
}

/** Progress on stderr (stdout carries the JSON report). */
export const progress = (msg: string): void => void process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const log = createLogger({ level: 'warn' });

export async function adminClient(): Promise<KubeClient> {
  return new KubeClient({ config: await loadClientConfig({ kubeconfigPath: paths.adminKubeconfig, env: {} }), log });
}

/** mulberry32: a seeded PRNG so a failing run can be replayed with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True when nothing listens on 127.0.0.1:port right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A berth process as a cluster node with one of the rig's node identities, on a read-only port free right now. */
export async function clusterNode(nodeName: string, extraArgs: string[] = []): Promise<BerthProcess> {
  for (let i = 0; ; i++) {
    const b = newClusterNode(nodeName, extraArgs);
    if ((await portFree(b.port)) || i >= 10) return b;
    rmSync(path.dirname(b.rootDir), { recursive: true, force: true });
  }
}

function newClusterNode(nodeName: string, extraArgs: string[]): BerthProcess {
  const b = new BerthProcess({
    nodeName,
    extraArgs: [
      `--kubeconfig=${paths.nodeKubeconfig(nodeName)}`,
      '--node-ip=127.0.0.1',
      '--log-level=warn',
      '--crash-loop-backoff-initial=2s',
      '--crash-loop-backoff-max=8s',
      ...extraArgs,
    ],
  });
  mkdirSync(b.manifestDir, { recursive: true });
  return b;
}

/** Starts berth (after removing a stale Node object of that name) and waits for the Node to be Ready. */
export async function startNode(admin: KubeClient, b: BerthProcess, timeoutMs = 60_000): Promise<number> {
  const other = processesRunningAs(b.nodeName);
  if (other.length) throw new Error(`another berth already runs as ${b.nodeName} (pid ${other.join(', ')}): two agents for one node would fight`);
  await ensureTestImages(docker);
  await admin.delete(resources.nodes, b.nodeName).catch(() => undefined);
  const t0 = performance.now();
  b.start();
  await waitForNodeReady(admin, b, timeoutMs);
  return Math.round(performance.now() - t0);
}

/** Waits for the Node to be Ready; fails at once when the berth process exits meanwhile. */
export async function waitForNodeReady(admin: KubeClient, b: BerthProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (!b.alive()) throw new Error(`berth ${b.nodeName} exited: ${b.logs().slice(-1500)}`);
    try {
      const n = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(resources.nodes, b.nodeName);
      if (n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return;
      last = undefined;
    } catch (err: unknown) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`node ${b.nodeName} not Ready after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

/** Pids of running processes whose command line names this node (`--hostname-override=<node>`). */
export function processesRunningAs(nodeName: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args.includes('run') && args.some((a) => a === `--hostname-override=${nodeName}` || a === `--node-name=${nodeName}`)) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** kill -9 and wait for the process to be gone. */
export async function killHard(b: BerthProcess): Promise<void> {
  const pid = b.pid;
  if (pid === undefined || !b.alive()) return;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !b.alive(), 10_000, `berth ${b.nodeName} (pid ${pid}) gone after SIGKILL`);
}

/** VmRSS of a process in bytes (from /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status: no VmRSS`);
  return Number(m[1]) * 1024;
}

export const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/**
 * Runs an API call, retrying transport failures and 5xx for up to `timeoutMs` (the shared rig's API server is
 * restarted by other suites now and then). `ok` lists status codes that count as done (404 on a delete, 409 on a
 * create retried after a lost answer).
 */
export async function retryApi<T>(what: string, fn: () => Promise<T>, o: { ok?: number[]; timeoutMs?: number } = {}): Promise<T | undefined> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    try {
      return await fn();
    } catch (err: unknown) {
      const code = (err as { statusCode?: number }).statusCode ?? 0;
      if (o.ok?.includes(code)) return undefined;
      if ((code !== 0 && code < 500 && code !== 429) || Date.now() > deadline) throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      await sleep(500);
    }
  }
}

/** Identity of the running kube-apiserver (pid and start time): a change means it restarted meanwhile. */
export function apiServerEpoch(): string {
  try {
    const pid = readFileSync(path.join(paths.dir, 'run', 'kube-apiserver.pid'), 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${pid}@${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  } catch {
    return 'down';
  }
}

/** A namespace of its own for a run; waits for its `default` ServiceAccount (pods are refused before it exists). */
export async function createNamespace(admin: KubeClient, name: string): Promise<void> {
  await retryApi(`create namespace ${name}`, () => admin.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'berth-soak': 'true' } } }), { ok: [409] });
  await waitFor(() => admin.get(resources.serviceaccounts, 'default', { namespace: name }).then(() => true), 30_000, {
    what: `serviceaccount default in ${name}`,
    intervalMs: 250,
  });
}

export interface PodOptions {
  ns: string;
  name: string;
  node?: string;
  labels?: Record<string, string>;
  /** The shell script of the app container. */
  script?: string;
  sidecar?: boolean;
  emptyDir?: boolean;
  graceSeconds?: number;
}

export function podObject(o: PodOptions): Pod {
  const c = (name: string, script: string): NonNullable<Pod['spec']>['containers'][number] => ({
    name,
    image: BUSYBOX_IMAGE,
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', script],
    ...(o.emptyDir ? { volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] } : {}),
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.ns, labels: { 'berth-soak': 'true', ...o.labels } },
    spec: {
      ...(o.node ? { nodeName: o.node } : {}),
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: o.graceSeconds ?? 1,
      containers: [c('app', o.script ?? 'sleep 3600'), ...(o.sidecar ? [c('side', 'sleep 3600')] : [])],
      ...(o.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
    },
  };
}

export async function listPods(admin: KubeClient, ns: string, node?: string): Promise<Pod[]> {
  return (await admin.list<Pod>(resources.pods, { namespace: ns, ...(node ? { fieldSelector: `spec.nodeName=${node}` } : {}) })).items;
}

/** One Docker object of a berth node, as its labels describe it. */
export interface DockerObj {
  id: string;
  uid: string;
  sandbox: boolean;
  container: string;
  running: boolean;
  /** Docker's state: created (never started), running, exited… */
  state: string;
  restartCount: number;
  podName: string;
  namespace: string;
}

/** The node's Docker objects, from the host's dockerd unless `client` names another (scenario 2's private one). */
export async function dockerObjects(node: string, client: Pick<typeof docker, 'listContainers'> = docker): Promise<DockerObj[]> {
  const all = await client.listContainers({ all: true, filters: { label: [`${L.node}=${node}`] } });
  return all.map((c) => ({
    id: c.Id,
    uid: c.Labels[L.podUid] ?? '',
    sandbox: c.Labels[L.dockerType] === DOCKER_TYPE_SANDBOX,
    container: c.Labels[L.containerName] ?? '',
    running: c.State === 'running',
    state: c.State,
    restartCount: Number(c.Labels[`annotation.${A.restartCount}`] ?? 0),
    podName: c.Labels[L.podName] ?? '',
    namespace: c.Labels[L.podNamespace] ?? '',
  }));
}

/** Running-duplicate count: per pod UID, running sandboxes beyond one plus running containers of a name beyond one. */
export function duplicates(objs: DockerObj[]): { count: number; detail: string[] } {
  const seen = new Map<string, number>();
  for (const o of objs.filter((x) => x.running)) {
    const k = `${o.uid}/${o.sandbox ? 'POD' : o.container}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const detail = [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k}×${n}`);
  return { count: [...seen.values()].reduce((s, n) => s + Math.max(0, n - 1), 0), detail };
}

/** Entries of a directory (empty when it does not exist). */
export function dirEntries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Mount points under a directory (tmpfs volumes, binds) from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir + '/'));
}

/**
 * Removes everything a scenario made, whatever state it is in: the pods (forced), the namespace, berth's Docker
 * objects and mounts, its Node object and its temporary directory. Never throws.
 */
export async function teardown(admin: KubeClient, o: { ns?: string[]; nodes: BerthProcess[] }): Promise<void> {
  const quiet = async (what: string, f: () => Promise<unknown>): Promise<void> => {
    const done = (err: unknown): boolean => /NotFound|not found/.test(String(err));
    await waitFor(() => f().then(() => true, (err: unknown) => done(err) || Promise.reject(err)), 90_000, { what, intervalMs: 1000 }).catch((err: unknown) =>
      progress(`teardown: ${String(err)}`),
    );
  };
  for (const ns of o.ns ?? []) {
    await quiet(`pods of ${ns} deleted`, () => kubectl(['delete', 'deploy,pod', '--all', '-n', ns, '--grace-period=0', '--force', '--wait=false'], { timeoutMs: 60_000 }));
  }
  for (const b of o.nodes) {
    await b.cleanup().catch((err: unknown) => progress(`teardown: ${b.nodeName}: ${String(err)}`));
    await quiet(`node ${b.nodeName} deleted`, () => kubectl(['delete', 'node', b.nodeName, '--ignore-not-found', '--wait=false']));
    rmSync(path.dirname(b.rootDir), { recursive: true, force: true, maxRetries: 3 });
  }
  for (const ns of o.ns ?? []) await quiet(`namespace ${ns} deleted`, () => kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']));
}

/**
 * Holds /tmp/berth-e2e.lock (the e2e suites' lock for host-wide state) until the returned release() is called or this
 * process dies (the holder reads our pipe and exits on its end of file). Resolves to undefined when the lock was not
 * free within `waitSeconds`.
 */
export async function e2eLock(waitSeconds: number): Promise<(() => Promise<void>) | undefined> {
  return fileLock('/tmp/berth-e2e.lock', waitSeconds);
}

/** e2eLock for any lock file (e.g. /tmp/berth-soak-node1.lock, held by whoever runs berth as node-1). */
export async function fileLock(lockPath: string, waitSeconds: number): Promise<(() => Promise<void>) | undefined> {
  const child: ChildProcess = spawn('flock', ['-w', String(waitSeconds), lockPath, '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const got = await new Promise<boolean>((resolve) => {
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('locked') && resolve(true));
    child.on('exit', () => resolve(false));
  });
  if (!got) return undefined;
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    await gone;
  };
}
