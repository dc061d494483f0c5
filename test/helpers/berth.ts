// Runs the real berth CLI (`node src/cli/main.ts run …`) as a child process for integration and e2e tests,
// with its own node name, state directory and read-only port, and cleans up the Docker objects it made.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, createWriteStream, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import type { Pod, PodStatus } from 'kubernetes-types/core/v1';
import { afterAll, beforeAll } from 'vitest';
import { ensureTestImages } from '../integration/helpers/docker-images.ts';
import { waitFor } from './wait.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });

export type PodWithStatus = Pod & { status: PodStatus };
export interface BerthPods {
  node: string;
  items: PodWithStatus[];
  errors: { file: string; document?: number; name?: string; reason: string; message: string }[];
  events: { object: { name: string; fieldPath?: string }; type: string; reason: string; message: string; count: number }[];
}

export { waitFor };

/** The V8 flags bin/berth gives node by default (test/integration/bundle.test.ts checks bin/berth uses these). */
export const BIN_BERTH_NODE_FLAGS = ['--max-semi-space-size=2'];

export interface BerthOptions {
  nodeName?: string;
  manifestDir?: string;
  rootDir?: string;
  extraArgs?: string[];
  /** The program to run instead of src/cli/main.ts (e.g. the bundle built by scripts/build.ts). */
  entry?: string;
  /** Flags for node itself (bin/berth passes BIN_BERTH_NODE_FLAGS). */
  nodeFlags?: string[];
}

export class BerthProcess {
  readonly nodeName: string;
  readonly manifestDir: string;
  readonly rootDir: string;
  readonly port: number;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private readonly extra: string[];
  private readonly entry: string;
  private readonly nodeFlags: string[];

  constructor(o: BerthOptions = {}) {
    this.nodeName = o.nodeName ?? `t-${Math.random().toString(36).slice(2, 8)}`;
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-it-'));
    this.manifestDir = o.manifestDir ?? path.join(tmp, 'manifests');
    this.rootDir = o.rootDir ?? path.join(tmp, 'root');
    this.logFile = path.join(tmp, 'berth.log');
    this.port = 20000 + Math.floor(Math.random() * 20000);
    this.extra = o.extraArgs ?? [];
    this.entry = o.entry ?? path.join(REPO, 'src/cli/main.ts');
    this.nodeFlags = o.nodeFlags ?? [];
  }

  start(): void {
    const out = createWriteStream(this.logFile, { flags: 'a' });
    this.child = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        ...this.nodeFlags,
        this.entry,
        'run',
        `--hostname-override=${this.nodeName}`,
        `--pod-manifest-path=${this.manifestDir}`,
        `--root-dir=${this.rootDir}`,
        `--pod-logs-dir=${path.join(this.rootDir, 'logs')}`,
        `--read-only-port=${this.port}`,
        '--healthz-port=0',
        // The kubelet API (10250) is off unless a test asks for it with its own --port (a later flag wins).
        '--port=0',
        '--proxy-mode=none',
        '--file-check-frequency=2s',
        ...this.extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout!.pipe(out);
    this.child.stderr!.pipe(out);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  logs(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** SIGTERM and wait for exit; resolves with the exit code. */
  async stop(): Promise<number | null> {
    const c = this.child;
    // A child killed by a signal has exitCode null and signalCode set: it is gone too.
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const done = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    const code = await done;
    clearTimeout(t);
    this.child = undefined;
    return code;
  }

  alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async pods(): Promise<BerthPods> {
    const res = await fetch(`http://127.0.0.1:${this.port}/berth/pods`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as BerthPods;
  }

  async pod(name: string): Promise<PodWithStatus | undefined> {
    return (await this.pods()).items.find((p) => p.metadata?.name === `${name}-${this.nodeName}`);
  }

  /** Docker containers (all states) this berth created. */
  async containers(): Promise<Dockerode.ContainerInfo[]> {
    return docker.listContainers({ all: true, filters: { label: [`io.berth.node=${this.nodeName}`] } });
  }

  /** Removes every Docker object of this node (tests' afterAll). */
  async cleanup(): Promise<void> {
    await this.stop();
    for (const c of await this.containers()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    // A stopped berth leaves its pods' mounts (tmpfs volumes, subPath binds) in place, as a kubelet does: unmount them.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '');
    for (const mp of mounts.filter((m) => m.startsWith(this.rootDir + '/')).sort((a, b) => b.length - a.length))
      spawnSync('umount', ['-l', mp], { timeout: 10_000 });
  }
}

/** A Pod manifest (JSON is YAML) in `default`. */
export function podManifest(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', ...metadata }, spec });
}

/** A container running `sh -c script` in the local busybox test image. */
export function shContainer(name: string, script: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, image: 'berth-test/busybox:latest', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script], ...more };
}

/** Writes and removes manifests in a berth's manifest folder. */
export function manifestFiles(berth: BerthProcess): { write: (file: string, text: string) => void; remove: (file: string) => void } {
  return {
    write: (file, text) => writeFileSync(path.join(berth.manifestDir, file), text),
    remove: (file) => rmSync(path.join(berth.manifestDir, file), { force: true }),
  };
}

export interface UseBerthOptions extends BerthOptions {
  /** Runs once the manifest folder exists, just before berth starts (manifests or files berth must see at startup). */
  beforeStart?: () => unknown;
  /** Runs in afterAll before berth.cleanup(). */
  beforeCleanup?: () => unknown;
  /** Runs in afterAll after berth.cleanup(). */
  afterCleanup?: () => unknown;
  /** vitest's timeout for the afterAll hook (default: vitest's). */
  cleanupTimeoutMs?: number;
  /** What "started" means (default: berth answers /berth/pods within `readyTimeoutMs`). */
  ready?: (berth: BerthProcess) => Promise<unknown>;
  /** How long berth has to answer /berth/pods (default 20 s). */
  readyTimeoutMs?: number;
  /** What the wait for /berth/pods is called in a timeout error (default 'berth to answer'). */
  readyWhat?: string;
  /** vitest's timeout for the beforeAll hook (default: vitest's). */
  hookTimeoutMs?: number;
}

/**
 * A berth for the current describe block (or file): registers beforeAll (test images, manifest folder, optional
 * `beforeStart`, start, wait for /berth/pods or `ready`) and afterAll (`beforeCleanup`, cleanup, `afterCleanup`).
 */
export function useBerth(o: UseBerthOptions = {}): BerthProcess {
  const berth = new BerthProcess(o);
  beforeAll(async () => {
    await ensureTestImages(docker);
    mkdirSync(berth.manifestDir, { recursive: true });
    await o.beforeStart?.();
    berth.start();
    if (o.ready) await o.ready(berth);
    else await waitFor(() => berth.pods(), o.readyTimeoutMs ?? 20_000, o.readyWhat ?? 'berth to answer');
  }, o.hookTimeoutMs);
  afterAll(async () => {
    await o.beforeCleanup?.();
    await berth.cleanup();
    await o.afterCleanup?.();
  }, o.cleanupTimeoutMs);
  return berth;
}

/** Runs a program and keeps its exit code (non-zero is an answer here, not an error); `input` goes to stdin. */
export function execCode(file: string, args: string[], input = '', timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** The body of GET http://127.0.0.1:<port>/ (no keep-alive agent). */
export function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += String(d)));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
