// A dockerd of the campaign's own (scenario 2), so it can be stopped and restarted without touching the host's
// dockerd that everyone else uses: its own socket, data root, exec root (its own managed containerd under it), pid
// file, config file (live-restore is set per start) and bridge (`berthf0`, 172.31.250.0/24, no iptables, no
// masquerade, ip_forward left alone). destroy() removes every trace: containers, daemon, mounts, dirs, bridge.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Dockerode from 'dockerode';
import { BUSYBOX_IMAGE, docker as hostDocker, waitFor } from './common.ts';

export const BRIDGE = 'berthf0';
const BRIDGE_CIDR = '172.31.250.1/24';

export interface PrivateDockerdOptions {
  /** Names the run's directories (/run/<name>, /var/lib/<name>). */
  name?: string;
}

export class PrivateDockerd {
  readonly runDir: string;
  readonly dataRoot: string;
  readonly socket: string;
  readonly client: Dockerode;
  private child: ChildProcess | undefined;
  private bridgeMade = false;

  constructor(o: PrivateDockerdOptions = {}) {
    const name = o.name ?? 'berth-soak2';
    this.runDir = `/run/${name}`;
    this.dataRoot = `/var/lib/${name}`;
    this.socket = path.join(this.runDir, 'docker.sock');
    this.client = new Dockerode({ socketPath: this.socket });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Creates the bridge and the directories, after removing what a run that died with its runner left (callers hold
   * the node's lock, so no live run owns them).
   */
  async prepare(): Promise<void> {
    const left = await this.destroy();
    if (left.length) throw new Error(`leftovers of an earlier run: ${left.join('; ')}`);
    for (const args of [['link', 'add', BRIDGE, 'type', 'bridge'], ['addr', 'add', BRIDGE_CIDR, 'dev', BRIDGE], ['link', 'set', BRIDGE, 'up']]) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
      this.bridgeMade = true;
    }
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(this.dataRoot, { recursive: true });
  }

  /** Starts the daemon and waits until it answers; resolves with the time that took (ms). */
  async start(o: { liveRestore: boolean }): Promise<number> {
    if (this.alive()) throw new Error('private dockerd already running');
    writeFileSync(path.join(this.runDir, 'daemon.json'), JSON.stringify({ 'live-restore': o.liveRestore }));
    const t0 = performance.now();
    this.child = spawn(
      'dockerd',
      [
        `--config-file=${path.join(this.runDir, 'daemon.json')}`,
        `--host=unix://${this.socket}`,
        `--data-root=${this.dataRoot}`,
        `--exec-root=${path.join(this.runDir, 'exec')}`,
        `--pidfile=${path.join(this.runDir, 'docker.pid')}`,
        '--iptables=false',
        '--ip-masq=false',
        '--ip-forward=false',
        `--bridge=${BRIDGE}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const log = path.join(this.runDir, 'dockerd.log');
    this.child.stderr!.on('data', (c: Buffer) => writeFileSync(log, c, { flag: 'a' }));
    await waitFor(
      async () => {
        if (!this.alive()) throw new Error(`private dockerd exited: ${this.logTail()}`);
        return this.client.ping().then(() => true);
      },
      30_000,
      { what: 'private dockerd to answer', intervalMs: 100 },
    );
    return Math.round(performance.now() - t0);
  }

  /** SIGTERM and wait for the daemon to exit (with live-restore off it stops every container first). */
  async stop(): Promise<number> {
    const c = this.child;
    if (!c || !this.alive()) return 0;
    const t0 = performance.now();
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 40_000);
    await gone;
    clearTimeout(t);
    this.child = undefined;
    return Math.round(performance.now() - t0);
  }

  /** Loads the test image from the host's dockerd (docker save | load). */
  async loadTestImage(): Promise<void> {
    const tar = await hostDocker.getImage(BUSYBOX_IMAGE).get();
    const stream = await this.client.loadImage(tar);
    await new Promise((resolve, reject) => this.client.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
  }

  logTail(): string {
    try {
      return readFileSync(path.join(this.runDir, 'dockerd.log'), 'utf8').slice(-1500);
    } catch {
      return '';
    }
  }

  /** Removes every container, stops the daemon, unmounts and removes its directories and the bridge. Never throws. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    if (this.alive()) {
      try {
        for (const c of await this.client.listContainers({ all: true })) await this.client.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      } catch (err: unknown) {
        problems.push(`remove containers: ${String(err)}`);
      }
      await this.stop();
    }
    this.killStale();
    // A container whose start the daemon's shutdown interrupted can leave its rootfs mounted: unmount and retry.
    for (let attempt = 1; ; attempt++) {
      // dockerd bind-mounts its data root onto itself (to make it private): that one goes too.
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4] ?? '')
        .filter((m) => [this.runDir, this.dataRoot].some((d) => m === d || m.startsWith(d + '/')))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) spawnSync('umount', ['-l', m], { timeout: 10_000 });
      const left: string[] = [];
      for (const d of [this.runDir, this.dataRoot]) {
        try {
          rmSync(d, { recursive: true, force: true, maxRetries: 3 });
        } catch (err: unknown) {
          left.push(`rm ${d}: ${String(err)}`);
        }
      }
      if (!left.length) break;
      if (attempt >= 3) {
        problems.push(...left);
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (this.bridgeMade || existsSync(`/sys/class/net/${BRIDGE}`)) {
      const r = spawnSync('ip', ['link', 'del', BRIDGE], { encoding: 'utf8' });
      if (r.status !== 0 && existsSync(`/sys/class/net/${BRIDGE}`)) problems.push(`ip link del ${BRIDGE}: ${r.stderr}`);
      this.bridgeMade = false;
    }
    return problems;
  }

  /**
   * A daemon of an earlier run of this scenario that died with its runner, and the containerd and shims under its
   * exec root: found by their command lines naming this run's directory, ended by pid.
   */
  private killStale(): void {
    const pids: number[] = [];
    for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        if (cmd.includes(`${this.runDir}/exec/`) || cmd.includes(`--pidfile=${this.runDir}/docker.pid`)) pids.push(Number(d));
      } catch {
        // gone meanwhile
      }
    }
    for (const pid of pids.filter((p) => p !== this.child?.pid && p !== process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}
