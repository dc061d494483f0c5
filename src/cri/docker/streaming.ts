// The streaming half of the CRI over the Docker Engine: exec and attach on hijacked Engine connections, port-forward
// into a sandbox's network namespace. Follows dockershim's streamingRuntime (pkg/kubelet/dockershim/docker_streaming.go,
// exec.go): exec = create + start hijacked + inspect for the exit code; attach = container attach with resizes; port
// forward = `nsenter -t <sandbox pid> -n <connector> localhost <port>` with the stream as the connector's stdio
// (dockershim used socat; berth uses busybox's nc, which the install script provides).
import { spawn } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import Dockerode from 'dockerode';
import { BerthError } from '../../lib/errors.ts';
import type { StreamIO, StreamingRuntime, TerminalSize } from '../runtime.ts';
import { translateDockerError } from './errors.ts';

export interface DockerStreamingOptions {
  /** A dockerode client, or the path of the Docker socket (default /var/run/docker.sock). */
  docker?: Dockerode | string;
  /** Deadline of each non-streaming Docker call (create, start, inspect, resize), default 30 s. */
  callTimeoutMs?: number;
  /** Command (argv prefix) that connects stdio to `<host> <port>` (default busybox nc). */
  connector?: string[];
  /** nsenter binary (default nsenter from PATH). */
  nsenter?: string;
}

interface InspectState {
  State?: { Running?: boolean; Pid?: number };
  Config?: { Tty?: boolean };
  Id?: string;
}

async function withTimeout<T>(op: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new Error('timeout')), timeoutMs);
  try {
    return await fn(ac.signal);
  } catch (err: unknown) {
    throw translateDockerError(err, op, ac.signal.aborted, timeoutMs);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Copies Docker's multiplexed stream (8-byte header: stream type, 0, 0, 0, uint32 BE size) to stdout/stderr,
 * pausing the source while a destination is full. Frames for a missing destination are dropped.
 */
export function pipeMultiplexed(src: Duplex, stdout: NodeJS.WritableStream | undefined, stderr: NodeJS.WritableStream | undefined): void {
  let pending: Buffer = Buffer.alloc(0);
  src.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let blocked: NodeJS.WritableStream | undefined;
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      const type = pending[0];
      const payload = pending.subarray(8, 8 + len);
      pending = pending.subarray(8 + len);
      const dst = type === 1 ? stdout : type === 2 ? stderr : undefined;
      if (dst && payload.length && !dst.write(payload)) blocked = dst;
    }
    if (blocked) {
      src.pause();
      blocked.once('drain', () => src.resume());
    }
  });
}

function pipeRaw(src: Duplex, dst: NodeJS.WritableStream | undefined): void {
  if (!dst) {
    src.resume();
    return;
  }
  src.on('data', (chunk: Buffer) => {
    if (!dst.write(chunk)) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
}

/** Client stdin → Engine connection; the client's EOF half-closes the connection (the process sees EOF on stdin). */
function pipeStdin(stdin: NodeJS.ReadableStream | undefined, sock: Duplex): void {
  if (!stdin) return;
  stdin.on('data', (chunk: Buffer) => {
    if (!sock.destroyed && !sock.writableEnded && !sock.write(chunk)) {
      stdin.pause();
      sock.once('drain', () => stdin.resume());
    }
  });
  stdin.on('end', () => {
    if (!sock.destroyed && !sock.writableEnded) sock.end();
  });
}

/** Resolves once the Engine connection is over (end or close), whichever first. */
function finished(sock: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    sock.once('end', () => resolve());
    sock.once('close', () => resolve());
    sock.once('error', () => resolve());
  });
}

export class DockerStreamingRuntime implements StreamingRuntime {
  private readonly docker: Dockerode;
  private readonly callTimeoutMs: number;
  private readonly connector: string[];
  private readonly nsenter: string;

  constructor(opts: DockerStreamingOptions = {}) {
    this.docker =
      opts.docker instanceof Dockerode
        ? opts.docker
        : new Dockerode({ socketPath: typeof opts.docker === 'string' ? opts.docker : '/var/run/docker.sock' });
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.connector = opts.connector ?? ['/bin/busybox', 'nc'];
    this.nsenter = opts.nsenter ?? 'nsenter';
  }

  private inspect(id: string): Promise<InspectState> {
    return withTimeout(`inspect container ${id}`, this.callTimeoutMs, (s) =>
      this.docker.getContainer(id).inspect({ abortSignal: s }) as Promise<unknown> as Promise<InspectState>,
    );
  }

  async assertRunning(containerId: string): Promise<void> {
    const c = await this.inspect(containerId);
    if (!c.State?.Running) throw new BerthError('Conflict', `container not running (${c.Id ?? containerId})`);
  }

  private async applyResizes(resize: AsyncIterable<TerminalSize> | undefined, apply: (s: TerminalSize) => Promise<unknown>): Promise<void> {
    if (!resize) return;
    try {
      for await (const size of resize) {
        if (size.width > 0 && size.height > 0) await apply(size).catch(() => undefined);
      }
    } catch {
      // the resize channel broke with the session: nothing to do
    }
  }

  async exec(containerId: string, cmd: string[], io: StreamIO): Promise<number> {
    const exec = await withTimeout(`exec in container ${containerId}`, this.callTimeoutMs, (s) =>
      this.docker.getContainer(containerId).exec({
        Cmd: cmd,
        AttachStdin: Boolean(io.stdin),
        AttachStdout: Boolean(io.stdout),
        AttachStderr: Boolean(io.stderr),
        Tty: io.tty,
        abortSignal: s,
      } as Dockerode.ExecCreateOptions),
    );
    const sock = (await withTimeout(`start exec in container ${containerId}`, this.callTimeoutMs, (s) =>
      exec.start({ hijack: true, stdin: Boolean(io.stdin), Tty: io.tty, abortSignal: s } as Dockerode.ExecStartOptions),
    )) as Duplex;
    const onAbort = (): void => {
      sock.destroy();
      void this.killExec(exec);
    };
    io.signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (io.signal.aborted) onAbort();
      const done = finished(sock);
      if (io.tty) pipeRaw(sock, io.stdout);
      else pipeMultiplexed(sock, io.stdout, io.stderr);
      pipeStdin(io.stdin, sock);
      void this.applyResizes(io.resize, (sz) => exec.resize({ h: sz.height, w: sz.width }));
      await done;
      if (io.signal.aborted) throw new BerthError('Gone', 'exec session ended by the client');
      // The stream ends when the process exits; Docker may record the exit code a moment later.
      for (let i = 0; ; i++) {
        const info = (await withTimeout(`inspect exec ${exec.id}`, this.callTimeoutMs, (s) =>
          exec.inspect({ abortSignal: s } as {}),
        )) as { Running?: boolean; ExitCode?: number | null };
        if (!info.Running && typeof info.ExitCode === 'number') return info.ExitCode;
        if (i > 500) throw new Error(`docker exec ${exec.id}: no exit code after the stream ended`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      io.signal.removeEventListener('abort', onAbort);
      sock.destroy();
    }
  }

  /**
   * Kills an exec'd process whose client went away (as containerd's CRI does on a cancelled exec; Docker has no call
   * for it, and dockershim left such processes running). Best effort: the process may be gone already.
   */
  private async killExec(exec: Dockerode.Exec): Promise<void> {
    try {
      const info = (await withTimeout(`inspect exec ${exec.id}`, this.callTimeoutMs, (s) => exec.inspect({ abortSignal: s } as {}))) as {
        Running?: boolean;
        Pid?: number;
      };
      if (info.Running && info.Pid && info.Pid > 0) process.kill(info.Pid, 'SIGKILL');
    } catch {
      // gone already, or Docker unreachable: nothing more to do
    }
  }

  async attach(containerId: string, io: StreamIO): Promise<void> {
    const c = await this.inspect(containerId);
    const tty = Boolean(c.Config?.Tty);
    const container = this.docker.getContainer(containerId);
    const sock = (await withTimeout(`attach to container ${containerId}`, this.callTimeoutMs, (s) =>
      container.attach({
        stream: true,
        hijack: true,
        stdin: Boolean(io.stdin),
        stdout: Boolean(io.stdout),
        stderr: Boolean(io.stderr),
        abortSignal: s,
      } as Dockerode.ContainerAttachOptions),
    )) as unknown as Duplex;
    const onAbort = (): void => {
      sock.destroy();
    };
    io.signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (io.signal.aborted) sock.destroy();
      const done = finished(sock);
      if (tty) pipeRaw(sock, io.stdout);
      else pipeMultiplexed(sock, io.stdout, io.stderr);
      pipeStdin(io.stdin, sock);
      void this.applyResizes(io.resize, (sz) => container.resize({ h: sz.height, w: sz.width }));
      await done;
    } finally {
      io.signal.removeEventListener('abort', onAbort);
      sock.destroy();
    }
  }

  async portForward(sandboxId: string, port: number, stream: NodeJS.ReadWriteStream, signal: AbortSignal): Promise<void> {
    const c = await this.inspect(sandboxId);
    const pid = c.State?.Pid ?? 0;
    if (!c.State?.Running || pid <= 0) throw new BerthError('Conflict', `container not running (${c.Id ?? sandboxId})`);
    const [bin, ...args] = this.connector;
    if (!bin) throw new Error('port-forward: no connector command configured');
    const child = spawn(this.nsenter, ['-t', String(pid), '-n', bin, ...args, '127.0.0.1', String(port)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    child.stderr.on('data', (b: Buffer) => {
      if (stderrBytes < 4096) stderr.push(b);
      stderrBytes += b.length;
    });
    const out = stream as unknown as Writable;
    child.stdout.on('data', (chunk: Buffer) => {
      if (!out.write(chunk)) {
        child.stdout.pause();
        out.once('drain', () => child.stdout.resume());
      }
    });
    stream.on('data', (chunk: Buffer) => {
      if (!child.stdin.destroyed && !child.stdin.write(chunk)) {
        stream.pause();
        child.stdin.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => child.stdin.end());
    child.stdin.on('error', () => undefined); // EPIPE once nc is gone; the exit status says what happened
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    signal.addEventListener('abort', kill, { once: true });
    const onStreamClose = (): void => kill();
    stream.once('close', onStreamClose);
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code) => resolve(code));
      });
      if (code !== 0 && !signal.aborted) {
        const msg = Buffer.concat(stderr).toString('utf8').trim();
        throw new Error(`exit status ${code ?? 'signal'}${msg ? `: ${msg}` : ''}`);
      }
    } finally {
      signal.removeEventListener('abort', kill);
      stream.removeListener('close', onStreamClose);
      kill();
    }
  }
}
