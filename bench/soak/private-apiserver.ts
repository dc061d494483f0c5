// A private etcd + kube-apiserver for the scenarios that stop them (issue 9, scenario 3): test/e2e/apiserver.sh run
// with its own directory and ports (BERTH_E2E_DIR, RIG_PORT, RIG_ETCD_PORT…), the rig's cached kube-apiserver
// binary hard-linked into it, and one node identity. The shared rig (:6443) is never touched. The API server writes
// an audit log of the node's pod lists and watches, so relists are counted from the server's side.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { REPO } from '../../test/helpers/berth.ts';
import { paths as rigPaths } from '../../test/e2e/helpers/cluster.ts';
import { KubeClient, loadClientConfig } from '../../src/kube/index.ts';
import { createLogger } from '../../src/lib/index.ts';
import { fileLock, sleep } from './common.ts';

export interface PrivateApiServerOptions {
  /** The node identity berth runs as (token kubeconfig `<dir>/<node>.kubeconfig`). */
  nodeName: string;
  /** Default /var/lib/berth-soak-apiserver; removed whole by stop(). */
  dir?: string;
  /** kube-apiserver secure port (default 6543). */
  port?: number;
  /** etcd client port (peer and metrics: the next two; default 2479). */
  etcdPort?: number;
}

/** One audited request of the node (verb list or watch on pods). */
export interface AuditEntry {
  verb: string;
  stage: string;
  code: number;
  requestURI: string;
  at: number;
}

const SCRIPT = path.join(REPO, 'test/e2e/apiserver.sh');
/** One run at a time (as /tmp/berth-e2e.lock for the e2e suites); the file stays, as that one does. */
const LOCK = '/tmp/berth-soak-apiserver.lock';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}


/** True while /proc/<pid> exists and is not a zombie. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
    await sleep(50);
  }
}

const started = new Set<PrivateApiServer>();

export class PrivateApiServer {
  /** Stops every instance this process started and has not stopped (a test's afterAll when its scenario timed out). */
  static async stopAll(): Promise<void> {
    for (const s of [...started]) await s.stop();
  }

  readonly dir: string;
  readonly port: number;
  readonly etcdPort: number;
  readonly nodeName: string;
  readonly endpoint: string;
  readonly adminKubeconfig: string;
  readonly nodeKubeconfig: string;
  readonly auditLog: string;
  /** etcd on a client port the API server does not know, for compactOffline(). */
  private sideEtcd: ChildProcess | undefined;
  /** Releases the lock of the run that owns `dir` (set by start()). */
  private release: (() => Promise<void>) | undefined;

  constructor(o: PrivateApiServerOptions) {
    this.dir = o.dir ?? '/var/lib/berth-soak-apiserver';
    this.port = o.port ?? 6543;
    this.etcdPort = o.etcdPort ?? 2479;
    this.nodeName = o.nodeName;
    this.endpoint = `https://127.0.0.1:${this.port}`;
    this.adminKubeconfig = path.join(this.dir, 'admin.kubeconfig');
    this.nodeKubeconfig = path.join(this.dir, `${o.nodeName}.kubeconfig`);
    this.auditLog = path.join(this.dir, 'run', 'audit.log');
  }

  private env(): NodeJS.ProcessEnv {
    const policy = path.join(this.dir, 'audit-policy.yaml');
    return {
      ...process.env,
      BERTH_E2E_DIR: this.dir,
      RIG_NODES: this.nodeName,
      RIG_PORT: String(this.port),
      RIG_ETCD_PORT: String(this.etcdPort),
      RIG_ETCD_DATA: path.join(this.dir, 'etcd'),
      // Unused (no controllers) but they must not collide with the shared rig's.
      RIG_KCM_PORT: '10357',
      RIG_SCHED_PORT: '10359',
      RIG_CONTROLLERS: '0',
      RIG_SA_ADMISSION: '0',
      RIG_PROFILE: 'default',
      RIG_RESTART_ON_CHANGE: '0',
      RIG_EXTRA_APISERVER_FLAGS: `--audit-policy-file=${policy} --audit-log-path=${this.auditLog} --audit-log-format=json`,
    };
  }

  /** Runs apiserver.sh with this instance's settings; rejects with its stderr on failure. */
  private script(cmd: 'start'): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile('bash', [SCRIPT, cmd], { env: this.env(), timeout: 180_000 }, (err, _out, stderr) =>
        err ? reject(new Error(`apiserver.sh ${cmd} (${this.dir}): ${err.message}\n${stderr.slice(-1500)}`)) : resolve(),
      );
    });
  }

  /** Pid of etcd or kube-apiserver from apiserver.sh's pid file (undefined when not running). */
  pid(name: 'etcd' | 'kube-apiserver'): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.dir, 'run', `${name}.pid`), 'utf8').trim());
      return pid > 0 && processAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A fresh cluster: stops what an earlier run in `dir` left running, wipes `dir`, links the rig's binaries, starts etcd
   * + kube-apiserver (PKI, tokens, kubeconfigs by apiserver.sh). Fails when a port is taken by something else.
   */
  async start(): Promise<void> {
    const release = await fileLock(LOCK, 0);
    if (!release) throw new Error(`${LOCK} is held: another run uses the private API server`);
    // What a run that died without its teardown left behind (no run holds the lock).
    if (existsSync(this.dir)) await this.teardown();
    this.release = release;
    started.add(this);
    for (const p of [this.port, this.etcdPort, this.etcdPort + 1, this.etcdPort + 2, this.etcdPort + 10])
      if (!(await portFree(p))) throw new Error(`127.0.0.1:${p} is in use: the private API server needs ports ${this.port}, ${this.etcdPort}-${this.etcdPort + 2} and ${this.etcdPort + 10}`);
    const bin = path.join(this.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const src = path.join(rigPaths.dir, 'bin');
    if (!existsSync(path.join(src, 'kube-apiserver'))) throw new Error(`${src}/kube-apiserver is missing: run test/e2e/apiserver.sh start once`);
    // apiserver.sh checks /proc/<pid>/exe against $BIN/kube-apiserver, so a symlink would not do: a hard link (or copy).
    try {
      linkSync(path.join(src, 'kube-apiserver'), path.join(bin, 'kube-apiserver'));
    } catch {
      copyFileSync(path.join(src, 'kube-apiserver'), path.join(bin, 'kube-apiserver'));
    }
    copyFileSync(path.join(src, 'kube-apiserver.buildinfo'), path.join(bin, 'kube-apiserver.buildinfo'));
    symlinkSync(realpathSync(rigPaths.kubectl), path.join(bin, 'kubectl'));
    writeFileSync(
      path.join(this.dir, 'audit-policy.yaml'),
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'omitStages: [RequestReceived]',
        'rules:',
        `- level: Metadata`,
        `  users: ["system:node:${this.nodeName}"]`,
        '  verbs: [list, watch]',
        '  resources: [{group: "", resources: [pods]}]',
        '- level: None',
        '',
      ].join('\n'),
    );
    await this.script('start');
  }

  /**
   * Kills etcd and kube-apiserver (by their pid files: the data is thrown away, so no graceful stop) and removes the
   * directory. Does nothing while another run holds the lock (an instance that did not start() may call it: a test's
   * afterAll after a timeout). Never throws.
   */
  async stop(): Promise<void> {
    const release = this.release ?? (await fileLock(LOCK, 0));
    this.release = undefined;
    started.delete(this);
    if (!release) return; // another run owns it
    try {
      await this.teardown();
    } finally {
      await release();
    }
  }

  private async teardown(): Promise<void> {
    await this.stopSideEtcd();
    for (const n of ['kube-apiserver', 'etcd'] as const) {
      const pid = this.pid(n);
      if (pid) {
        process.kill(pid, 'SIGKILL');
        await waitGone(pid, 10_000).catch(() => undefined);
      }
    }
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  async adminClient(): Promise<KubeClient> {
    return new KubeClient({ config: await loadClientConfig({ kubeconfigPath: this.adminKubeconfig, env: {} }), log: createLogger({ level: 'warn' }) });
  }

  /** SIGKILL (connections are then refused, not left hanging) and wait until it is gone. */
  async kill(name: 'etcd' | 'kube-apiserver'): Promise<void> {
    const pid = this.pid(name);
    if (!pid) throw new Error(`${name} is not running`);
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 10_000);
  }

  /** SIGSTOP / SIGCONT: the process keeps its sockets but answers nothing (a wedged server). */
  freeze(name: 'etcd' | 'kube-apiserver', frozen: boolean): void {
    const pid = this.pid(name);
    if (!pid) throw new Error(`${name} is not running`);
    process.kill(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** True when GET /readyz answers ok (admin token, the private CA). */
  readyz(): Promise<boolean> {
    return new Promise((resolve) => {
      let ca: Buffer, token: string;
      try {
        ca = readFileSync(path.join(this.dir, 'pki', 'ca.crt'));
        token = readFileSync(path.join(this.dir, 'admin.token'), 'utf8').trim();
      } catch {
        return resolve(false);
      }
      const req = https.get(`${this.endpoint}/readyz`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body === 'ok'));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
    });
  }

  /**
   * restart(), timed: resolves with performance.now() of the first /readyz ok seen while it ran (polled every 100 ms),
   * the moment clients may first succeed again.
   */
  async restartTimed(): Promise<number> {
    let readyAt: number | undefined;
    let done = false;
    const poll = (async () => {
      while (!done && readyAt === undefined) {
        if (await this.readyz()) readyAt = performance.now();
        else await sleep(100);
      }
    })();
    try {
      await this.restart();
    } finally {
      done = true;
      await poll;
    }
    return readyAt ?? performance.now();
  }

  /** Starts whatever of etcd / kube-apiserver is not running (apiserver.sh start: waits for etcd health and /readyz). */
  restart(): Promise<void> {
    return this.script('start');
  }

  /**
   * While etcd is down: runs it on another client port (the API server cannot reach it), writes `pads` keys and
   * compacts its history up to the newest revision, then stops it. The API server's etcd watches resume from
   * revisions that no longer exist once the real etcd is back: they fail, its watch cache relists, and a client's
   * watch from an older resourceVersion gets 410 Gone. Returns the compacted revision.
   */
  async compactOffline(pads = 3): Promise<number> {
    if (this.pid('etcd')) throw new Error('compactOffline needs etcd stopped');
    const port = this.etcdPort + 10;
    const peer = `http://127.0.0.1:${this.etcdPort + 1}`;
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      '/usr/bin/etcd',
      [
        '--name', 'rig', '--data-dir', path.join(this.dir, 'etcd'),
        '--listen-client-urls', url, '--advertise-client-urls', url,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `rig=${peer}`, '--initial-cluster-state', 'new', '--logger', 'zap', '--log-outputs', 'stderr',
      ],
      { stdio: 'ignore' },
    );
    this.sideEtcd = child;
    try {
      const post = async (p: string, body: unknown): Promise<{ header?: { revision?: string } }> => {
        const res = await fetch(`${url}${p}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`etcd ${p}: HTTP ${res.status} ${await res.text()}`);
        return (await res.json()) as { header?: { revision?: string } };
      };
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
        if (ok) break;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error('side etcd not healthy');
        await sleep(100);
      }
      const b64 = (s: string): string => Buffer.from(s).toString('base64');
      let revision = 0;
      for (let i = 0; i < pads; i++) revision = Number((await post('/v3/kv/put', { key: b64(`/berth-soak/pad-${i}`), value: b64(String(Date.now())) })).header?.revision ?? 0);
      if (!revision) throw new Error('etcd put returned no revision');
      await post('/v3/kv/compaction', { revision: String(revision), physical: true });
      return revision;
    } finally {
      await this.stopSideEtcd();
    }
  }

  private async stopSideEtcd(): Promise<void> {
    const c = this.sideEtcd;
    this.sideEtcd = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }

  /** The audited pod lists and watches of the node, in order (a watch appears at ResponseStarted). */
  audit(): AuditEntry[] {
    if (!existsSync(this.auditLog)) return [];
    const out: AuditEntry[] = [];
    for (const line of readFileSync(this.auditLog, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as { verb?: string; stage?: string; requestURI?: string; responseStatus?: { code?: number }; stageTimestamp?: string };
        if (e.verb === 'list' ? e.stage !== 'ResponseComplete' : e.stage !== 'ResponseStarted' && e.responseStatus?.code === 200) continue;
        out.push({ verb: e.verb ?? '', stage: e.stage ?? '', code: e.responseStatus?.code ?? 0, requestURI: e.requestURI ?? '', at: Date.parse(e.stageTimestamp ?? '') });
      } catch {
        // a line cut by the kill
      }
    }
    return out;
  }
}
