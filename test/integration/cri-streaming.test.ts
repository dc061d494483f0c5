// exec / attach / port-forward end to end below the API server: real dockerd (DockerStreamingRuntime), berth's
// streaming server, and as clients real kubectl 1.20 over SPDY (through test/helpers/fake-kube-api.ts, standing in
// for the API server's pass-through proxy) and a `ws` client for the WebSocket subprotocols newer clients speak.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DockerStreamingRuntime } from '../../src/cri/docker/index.ts';
import { createStreamServer, type StreamServer } from '../../src/kubelet/streaming/index.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { startFakeKubeApi, streamFlags, type FakeKubeApi } from '../helpers/fake-kube-api.ts';
import { execCode, httpGet } from '../helpers/berth.ts';
import { waitFor } from '../helpers/wait.ts';
import { BUSYBOX_IMAGE, ensureTestImages } from './helpers/docker-images.ts';

const KUBECTL = `${process.env.BERTH_E2E_DIR ?? '/var/lib/berth-e2e'}/bin/kubectl`;
const docker = new Dockerode();
const runId = `berth-it-stream-${process.pid}-${Date.now().toString(36)}`;
const ids: Record<'web' | 'cat' | 'stopped', string> = { web: '', cat: '', stopped: '' };
let webPid = 0;
let streams: StreamServer;
let api: FakeKubeApi;

async function run(name: string, opts: Partial<Dockerode.ContainerCreateOptions>, start = true): Promise<string> {
  const c = await docker.createContainer({ Image: BUSYBOX_IMAGE, name: `${runId}-${name}`, Labels: { 'berth.test': runId }, ...opts });
  if (start) await c.start();
  return c.id;
}

const kubectl = (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> => execCode(KUBECTL, [...api.kubectlArgs, ...args], input, 30_000);

/** Connector processes of this suite (nsenter execs the connector, so they show as busybox nc in the pod's netns). */
function nsenterLeft(): string {
  try {
    const lines = execFileSync('pgrep', ['-af', '^/bin/busybox nc 127.0.0.1 (8080|9)$'], { encoding: 'utf8' }).trim().split('\n');
    const podNet = readlinkSync(`/proc/${webPid}/ns/net`);
    return lines.filter((l) => {
      try {
        return readlinkSync(`/proc/${l.split(' ')[0]}/ns/net`) === podNet;
      } catch {
        return false;
      }
    }).join('\n');
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}

beforeAll(async () => {
  await ensureTestImages(docker);
  ids.web = await run('web', { Cmd: ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www'] });
  ids.cat = await run('cat', { Cmd: ['cat'], OpenStdin: true, StdinOnce: true, AttachStdin: true });
  ids.stopped = await run('stopped', { Cmd: ['true'] }, false);
  webPid = ((await docker.getContainer(ids.web).inspect()) as { State: { Pid: number } }).State.Pid;
  streams = createStreamServer({ runtime: new DockerStreamingRuntime({ docker }), log: createLogger({ level: 'warn' }), streamCreationTimeoutMs: 5_000 });
  api = await startFakeKubeApi({
    streams,
    containers: ['web', 'cat', 'stopped'],
    route: (kind, u) => {
      const container = (u.searchParams.get('container') ?? 'web') as keyof typeof ids;
      if (kind === 'portforward') return { kind, sandboxId: ids.web, podUid: 'fake-uid', ports: u.searchParams.getAll('ports').map(Number) };
      if (kind === 'attach') return { kind, containerId: ids[container], ...streamFlags(u) };
      return { kind, containerId: ids[container], command: u.searchParams.getAll('command'), ...streamFlags(u) };
    },
  });
});

afterAll(async () => {
  await api?.close();
  const left = await docker.listContainers({ all: true, filters: { label: [`berth.test=${runId}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
});

describe.skipIf(!existsSync(KUBECTL))('kubectl 1.20 over SPDY', () => {
  it('exec shows stdout and stderr and exits with the command’s exit code', async () => {
    const r = await kubectl(['exec', 'p', '-c', 'web', '--', 'sh', '-c', 'echo ok; echo err >&2; exit 3']);
    expect(r.stdout).toBe('ok\n');
    expect(r.stderr).toContain('err\n');
    expect(r.stderr).toContain('command terminated with exit code 3');
    expect(r.code).toBe(3);
  });

  it('exec -i passes stdin through and its end reaches the process', async () => {
    const r = await kubectl(['exec', '-i', 'p', '-c', 'web', '--', 'sh', '-c', 'cat; echo done'], 'hello\n');
    expect(r).toMatchObject({ code: 0, stdout: 'hello\ndone\n' });
  });

  it('exec -it runs the command on a terminal of the client’s size', async () => {
    // `script` gives kubectl a pseudo-terminal, so it really asks for a TTY and sends its size on the resize stream.
    const cmd = `stty cols 91 rows 27; ${KUBECTL} ${api.kubectlArgs.join(' ')} exec -it p -c web -- sh -c 'sleep 0.5; tty; stty size'`;
    const out = await new Promise<string>((resolve) => {
      execFile('script', ['-qec', cmd, '/dev/null'], { timeout: 30_000 }, (_e, stdout) => resolve(stdout));
    });
    expect(out).toMatch(/\/dev\/pts\/\d+/);
    expect(out).toContain('27 91');
  });

  it('exec into a stopped container fails before the upgrade with the runtime’s message', async () => {
    const r = await kubectl(['exec', 'p', '-c', 'stopped', '--', 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`container not running (${ids.stopped})`);
  });

  it('attach -i talks to the main process; closing stdin ends a StdinOnce container and the session', async () => {
    const r = await kubectl(['attach', '-i', 'p', '-c', 'cat'], 'hi there\n');
    expect(r.stdout).toContain('hi there');
    expect(r.code).toBe(0);
    await waitFor(async () => !((await docker.getContainer(ids.cat).inspect()) as { State: { Running: boolean } }).State.Running, 10_000, 'cat container to exit');
  });

  it('a kubectl killed mid-exec ends the session and the exec’d process (nothing left open or running)', async () => {
    const child = spawn(KUBECTL, [...api.kubectlArgs, 'exec', 'p', '-c', 'web', '--', 'sh', '-c', 'echo started; exec sleep 31'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sleeping = async (): Promise<boolean> =>
      ((await docker.getContainer(ids.web).top()) as { Processes?: string[][] }).Processes?.some((p) => p.join(' ').includes('sleep 31')) ?? false;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += String(d)));
    await waitFor(() => out.includes('started'), 15_000, 'the exec to start');
    await waitFor(sleeping, 5_000, 'sleep to run in the container');
    expect(streams.activeSessions()).toBe(1);
    child.kill('SIGKILL');
    await waitFor(() => streams.activeSessions() === 0, 10_000, 'the session to end');
    await waitFor(async () => !(await sleeping()), 10_000, 'the exec’d process to be killed');
  });

  it('port-forward carries HTTP to a 127.0.0.1-only listener; a closed port reports and the others keep working', async () => {
    const pf = spawn(KUBECTL, [...api.kubectlArgs, 'port-forward', 'pod/p', ':8080', ':9'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    pf.stdout.on('data', (d: Buffer) => (out += String(d)));
    pf.stderr.on('data', (d: Buffer) => (err += String(d)));
    try {
      const ports = await waitFor(() => {
        const m = [...out.matchAll(/Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/g)].map((x) => [Number(x[2]), Number(x[1])] as const);
        return m.length === 2 ? new Map(m) : undefined;
      }, 15_000, 'kubectl port-forward to listen');
      expect(await httpGet(ports.get(8080) ?? 0)).toBe('hello\n');
      await new Promise<void>((resolve) => {
        const s = net.connect(ports.get(9) ?? 0, '127.0.0.1', () => s.end('x'));
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        s.resume();
      });
      await waitFor(() => err.includes('error forwarding port 9 to pod'), 10_000, 'the closed-port error');
      expect(err).toMatch(/error forwarding port 9 to pod [0-9a-f]{64}, uid : exit status 1: .*can't connect/);
      expect(await httpGet(ports.get(8080) ?? 0)).toBe('hello\n');
    } finally {
      pf.kill();
    }
    await waitFor(() => nsenterLeft() === '', 10_000, 'no nsenter left behind');
    await waitFor(() => streams.activeSessions() === 0, 10_000, 'sessions to end');
  });
});

function openWs(path: string, protocols: string[]): Promise<{ ws: WebSocket; messages: Buffer[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${api.url.replace('http', 'ws')}${path}`, protocols);
    const messages: Buffer[] = [];
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.on('message', (m: Buffer) => messages.push(m));
    ws.on('open', () => resolve({ ws, messages, closed }));
    ws.on('error', reject);
  });
}
const channelText = (messages: Buffer[], ch: number): string =>
  Buffer.concat(messages.filter((m) => m[0] === ch).map((m) => m.subarray(1))).toString();

describe('WebSocket subprotocols', () => {
  it('v5.channel.k8s.io: stdin, its close message, and the Success status', async () => {
    const q = 'command=sh&command=-c&command=cat%3Becho%20end&container=web&stdin=true&stdout=true&stderr=true';
    const { ws, messages, closed } = await openWs(`/api/v1/namespaces/default/pods/p/exec?${q}`, ['v5.channel.k8s.io']);
    expect(ws.protocol).toBe('v5.channel.k8s.io');
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello\n')]));
    ws.send(Buffer.from([255, 0]));
    await closed;
    expect(channelText(messages, 1)).toBe('hello\nend\n');
    expect(JSON.parse(channelText(messages, 3))).toEqual({ metadata: {}, status: 'Success' });
  });

  it('v4.channel.k8s.io: the exit code travels as NonZeroExitCode', async () => {
    const q = 'command=sh&command=-c&command=echo%20x%3Bexit%207&container=web&stdout=true&stderr=true';
    const { messages, closed } = await openWs(`/api/v1/namespaces/default/pods/p/exec?${q}`, ['v4.channel.k8s.io']);
    await closed;
    expect(channelText(messages, 1)).toBe('x\n');
    expect(JSON.parse(channelText(messages, 3))).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } });
  });

  it('port-forward: port-prefixed channels carry an HTTP exchange', async () => {
    const { ws, messages, closed } = await openWs('/api/v1/namespaces/default/pods/p/portforward?ports=8080', ['v4.channel.k8s.io']);
    await waitFor(() => messages.length >= 2, 5_000, 'port prefixes');
    expect(messages.slice(0, 2).map((m) => m.toString('hex'))).toEqual(['00901f', '01901f']);
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('GET / HTTP/1.0\r\n\r\n')]));
    await waitFor(() => channelText(messages.slice(2), 0).includes('hello'), 10_000, 'the HTTP answer');
    expect(channelText(messages.slice(2), 0)).toMatch(/^HTTP\/1\.[01] 200 OK/);
    await closed; // httpd closes an HTTP/1.0 connection, and with its only port done the session ends
  });

  it('a client that disconnects mid-stream leaves no session and no connector behind', async () => {
    const { ws } = await openWs('/api/v1/namespaces/default/pods/p/portforward?ports=8080', ['v4.channel.k8s.io']);
    await waitFor(() => nsenterLeft() !== '', 10_000, 'the connector to run');
    const q = 'command=sleep&command=30&container=web&stdout=true';
    const exec = await openWs(`/api/v1/namespaces/default/pods/p/exec?${q}`, ['v4.channel.k8s.io']);
    await waitFor(() => streams.activeSessions() === 2, 5_000, 'two sessions');
    ws.terminate();
    exec.ws.terminate();
    await waitFor(() => streams.activeSessions() === 0, 10_000, 'sessions to end');
    await waitFor(() => nsenterLeft() === '', 10_000, 'no nsenter left behind');
  });

  it('refuses an unknown SPDY protocol version with 403 and the versions it accepts', async () => {
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request(`${api.url}/api/v1/namespaces/default/pods/p/exec?command=true&container=web&stdout=true`, {
        method: 'POST',
        headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' },
      });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += String(d)));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
      });
      req.on('upgrade', () => reject(new Error('unexpected upgrade')));
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(403);
    expect(res.body).toContain('unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io]');
    expect(res.headers['x-accepted-stream-protocol-versions']).toContain('v4.channel.k8s.io');
  });
});
