// The secure kubelet API end to end in-process: a real HTTPS listener on loopback with a generated serving
// certificate, client certificates signed with openssl, a fake kubelet view and runtime. Proves 401/403/404/400 as
// upstream, the endpoints, the stream hand-off (plain HTTP upgrade, as SPDY and WebSocket arrive) and mounted routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { ContainerStatus } from '../../src/cri/index.ts';
import { createLogger } from '../../src/lib/index.ts';
import { buildAuthenticator } from '../../src/kubelet/server/auth.ts';
import type { Authorizer, RequestAttributes } from '../../src/kubelet/server/authz.ts';
import { KubeletApiServer } from '../../src/kubelet/server/secure-server.ts';
import type { StreamRequest } from '../../src/kubelet/server/streaming.ts';
import { generateSelfSigned } from '../../src/kubelet/server/tls.ts';
import { makeCA, signClient } from '../helpers/pki.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-api-unit-'));
const line = (log: string, s: number): string => `${JSON.stringify({ log, stream: 'stdout', time: `2024-05-01T00:00:0${s}.5Z` })}\n`;
const logFile = path.join(dir, 'cid-json.log');
writeFileSync(logFile, line('hello\n', 1) + line('world\n', 2));
const nodeLogs = path.join(dir, 'varlog');
mkdirSync(path.join(nodeLogs, 'pods'), { recursive: true });
writeFileSync(path.join(nodeLogs, 'syslog'), 'kernel: hi\n');

const cs = (id: string, state: ContainerStatus['state']): ContainerStatus =>
  ({ id, podSandboxId: 'sb', metadata: { name: 'c', attempt: 0 }, image: 'busybox', imageRef: '', state, createdAt: 1, labels: { 'io.kubernetes.container.name': 'c' }, annotations: {}, startedAt: 1, finishedAt: 0, exitCode: 0, reason: '', message: '', mounts: [], logPath: logFile, pid: 1 }) as ContainerStatus;
const pod = { metadata: { name: 'web', namespace: 'default', uid: 'u1' }, spec: { containers: [{ name: 'c' }] } };
const status = { phase: 'Running', containerStatuses: [{ name: 'c', image: 'busybox', imageID: '', ready: true, restartCount: 0, containerID: 'docker://cid', state: { running: {} } }] };
const seen = { uid: 'u1', sandboxes: [{ id: 'sb', state: 'SANDBOX_READY', metadata: { name: 'web', namespace: 'default', uid: 'u1', attempt: 0 }, createdAt: 1, labels: {}, annotations: {} }], containers: [cs('cid', 'CONTAINER_RUNNING')] };

const seenAttrs: RequestAttributes[] = [];
const authorizer: Authorizer = {
  authorize: async (a) => {
    seenAttrs.push(a);
    return { allowed: a.user.name !== 'bob' };
  },
};
const targets: StreamRequest[] = [];
let server: KubeletApiServer;
let port = 0;
let serving = '';
let alice: { cert: string; key: string };
let bob: { cert: string; key: string };
let mallory: { cert: string; key: string };

beforeAll(async () => {
  const ca = makeCA(dir, 'ca');
  const evil = makeCA(dir, 'evil');
  alice = signClient(dir, ca, 'alice', '/CN=alice/O=dev');
  bob = signClient(dir, ca, 'bob', '/CN=bob');
  mallory = signClient(dir, evil, 'mallory', '/CN=alice/O=system:masters');
  const tls = await generateSelfSigned('localhost', ['127.0.0.1'], new Date());
  serving = tls.cert;
  server = new KubeletApiServer({
    address: '127.0.0.1',
    port: 0,
    nodeName: 'node1',
    tls,
    clientCA: readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    authenticator: buildAuthenticator({ x509: true, anonymous: false }),
    authorizer,
    kubelet: { pods: () => [{ pod, status }] as never, observed: () => seen as never, observedUids: () => ['u1'] },
    runtime: {
      containerStatus: async (id) => cs(id, 'CONTAINER_EXITED'),
      execSync: async (_id, cmd) => ({ exitCode: cmd[0] === 'false' ? 1 : 0, stdout: `ran ${cmd.join('+')}\n`, stderr: cmd[0] === 'false' ? 'boom' : '' }),
    },
    checks: [{ name: 'pleg', healthy: () => true }],
    configz: () => ({ kubeletconfig: { port: 10250 } }),
    routes: [{ prefix: '/stats/', subresource: 'stats', handle: (_req, res) => void res.end('stats!') }],
    streaming: {
      handleUpgrade: (_req, socket, _head, target) => {
        targets.push(target);
        socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      },
    },
    nodeLogDir: nodeLogs,
    log: createLogger({ level: 'silent' }),
  });
  port = await server.start();
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}
function call(p: string, o: { who?: { cert: string; key: string }; method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method: o.method ?? 'GET', ca: serving, servername: 'localhost', headers: o.headers, ...(o.who ?? {}) });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, body: '', headers: res.headers });
    });
    req.on('error', reject);
    req.end();
  });
}
const upgrade = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' };

describe('authentication and authorization', () => {
  it('401 without a client certificate or with one from another CA', async () => {
    expect(await call('/pods')).toMatchObject({ status: 401, body: 'Unauthorized' });
    expect(await call('/pods', { who: mallory })).toMatchObject({ status: 401, body: 'Unauthorized' });
  });

  it('403 with upstream message for a user the authorizer refuses', async () => {
    expect(await call('/containerLogs/default/web/c', { who: bob })).toMatchObject({ status: 403, body: 'Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)' });
  });

  it('authorizes a verified user with the node attributes', async () => {
    seenAttrs.length = 0;
    const r = await call('/pods', { who: alice });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'PodList', apiVersion: 'v1', items: [{ metadata: { name: 'web' }, status: { phase: 'Running' } }] });
    expect(seenAttrs[0]).toMatchObject({ user: { name: 'alice', groups: ['dev'] }, verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'node1' });
  });
});

describe('endpoints', () => {
  it('healthz, runningpods, configz, 404 and 405', async () => {
    expect(await call('/healthz', { who: alice })).toMatchObject({ status: 200, body: 'ok' });
    expect(JSON.parse((await call('/runningpods/', { who: alice })).body)).toMatchObject({ kind: 'PodList', items: [{ metadata: { name: 'web', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }] });
    expect(JSON.parse((await call('/configz', { who: alice })).body)).toEqual({ kubeletconfig: { port: 10250 } });
    expect((await call('/nope', { who: alice })).status).toBe(404);
    expect((await call('/pods', { who: alice, method: 'DELETE' })).status).toBe(405);
  });

  it('containerLogs: content, tail, timestamps and upstream refusals', async () => {
    expect(await call('/containerLogs/default/web/c?tailLines=2', { who: alice })).toMatchObject({ status: 200, body: 'hello\nworld\n' });
    expect((await call('/containerLogs/default/web/c?tailLines=1&timestamps=true', { who: alice })).body).toBe('2024-05-01T00:00:02.5Z world\n');
    // The records are from 2024: nothing is newer than a second.
    expect((await call('/containerLogs/default/web/c?sinceSeconds=1', { who: alice })).body).toBe('');
    expect(await call('/containerLogs/default/nope/c', { who: alice })).toMatchObject({ status: 404, body: 'pod "nope" does not exist' });
    expect(await call('/containerLogs/default/web/x', { who: alice })).toMatchObject({ status: 404, body: 'container "x" not found in pod "web"' });
    expect(await call('/containerLogs/default/web/c?previous=true', { who: alice })).toMatchObject({ status: 400, body: 'previous terminated container "c" in pod "web" not found' });
    expect(await call('/containerLogs/default/web/c?tailLines=abc', { who: alice })).toMatchObject({ status: 400, body: '{"message": "Unable to decode query."}' });
    expect(await call('/containerLogs/default/web/c?limitBytes=0', { who: alice })).toMatchObject({ status: 422, body: '{"message": "Invalid request."}' });
  });

  it('containerLogs?follow streams appended lines and ends when the PLEG sees the container stop', async () => {
    const pending = call('/containerLogs/default/web/c?follow=true&tailLines=0', { who: alice });
    await new Promise((r) => setTimeout(r, 300));
    appendFileSync(logFile, line('more\n', 3));
    await new Promise((r) => setTimeout(r, 300));
    (seen.containers[0] as { state: string }).state = 'CONTAINER_EXITED';
    expect(await pending).toMatchObject({ status: 200, body: 'more\n' });
    (seen.containers[0] as { state: string }).state = 'CONTAINER_RUNNING';
  });

  it('/logs/ lists and serves the node log folder and never leaves it', async () => {
    const list = await call('/logs/', { who: alice });
    expect(list.status).toBe(200);
    expect(list.body).toBe('<pre>\n<a href="pods/">pods/</a>\n<a href="syslog">syslog</a>\n</pre>\n');
    expect(await call('/logs/syslog', { who: alice })).toMatchObject({ status: 200, body: 'kernel: hi\n' });
    expect(seenAttrs.at(-1)).toMatchObject({ subresource: 'log' });
    expect(await call('/logs/pods', { who: alice })).toMatchObject({ status: 301, headers: { location: 'pods/' } });
    expect(await call('/logs', { who: alice })).toMatchObject({ status: 301, headers: { location: 'logs/' } });
    expect((await call('/logs/../../../etc/passwd', { who: alice })).status).toBe(404);
    expect((await call('/logs/..%2f..%2f..%2fetc%2fpasswd', { who: alice })).status).toBe(404);
  });

  it('mounted routes are served behind the same authorizer with their subresource', async () => {
    expect(await call('/stats/summary', { who: alice })).toMatchObject({ status: 200, body: 'stats!' });
    expect(seenAttrs.at(-1)).toMatchObject({ subresource: 'stats', verb: 'get' });
    expect((await call('/stats/summary', { who: bob })).status).toBe(403);
  });

  it('/run executes in the running container; a non-zero exit is a 500 with the command', async () => {
    expect(await call('/run/default/web/c?cmd=echo%20hi', { who: alice, method: 'POST' })).toMatchObject({ status: 200, body: 'ran echo+hi\n' });
    expect(await call('/run/default/web/c?cmd=false', { who: alice, method: 'POST' })).toMatchObject({ status: 500, body: "command 'false' exited with 1: boom" });
    expect(await call('/run/default/web/zzz?cmd=ls', { who: alice, method: 'POST' })).toMatchObject({ status: 500, body: 'container not found ("zzz")' });
  });
});

describe('streaming hand-off', () => {
  it('an authorized exec upgrade reaches the stream server with runtime ids and flags', async () => {
    targets.length = 0;
    const r = await call('/exec/default/web/c?command=ls&command=-l&stdin=1&stdout=1&tty=1&stderr=1', { who: alice, method: 'POST', headers: upgrade });
    expect(r.status).toBe(101);
    expect(targets).toEqual([{ kind: 'exec', containerId: 'cid', command: ['ls', '-l'], stdin: true, stdout: true, stderr: false, tty: true }]);
    expect(seenAttrs.at(-1)).toMatchObject({ verb: 'create', subresource: 'proxy' });
  });

  it('port-forward resolves the sandbox; a WebSocket GET upgrade needs create', async () => {
    targets.length = 0;
    const r = await call('/portForward/default/web?ports=8080', { who: alice, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    expect(r.status).toBe(101);
    expect(targets).toEqual([{ kind: 'portforward', sandboxId: 'sb', podUid: 'u1', ports: [8080] }]);
    expect(seenAttrs.at(-1)).toMatchObject({ verb: 'create', path: '/portForward/default/web' });
  });

  it('refuses upgrades as upstream: 401 anonymous, 403, 404 pod, 500 container, 400 flags', async () => {
    targets.length = 0;
    expect((await call('/exec/default/web/c?command=ls&stdout=1', { method: 'POST', headers: upgrade })).status).toBe(401);
    expect(await call('/exec/default/web/c?command=ls&stdout=1', { who: bob, method: 'POST', headers: upgrade })).toMatchObject({ status: 403, body: 'Forbidden (user=bob, verb=create, resource=nodes, subresource=proxy)' });
    expect(await call('/exec/default/nope/c?command=ls&stdout=1', { who: alice, method: 'POST', headers: upgrade })).toMatchObject({ status: 404, body: 'pod does not exist' });
    expect(await call('/attach/default/web/zzz?stdout=1', { who: alice, method: 'POST', headers: upgrade })).toMatchObject({ status: 500, body: 'container not found ("zzz")' });
    expect(await call('/exec/default/web/c?command=ls', { who: alice, method: 'POST', headers: upgrade })).toMatchObject({ status: 400, body: 'you must specify at least 1 of stdin, stdout, stderr' });
    expect(await call('/portForward/default/web/other-uid', { who: alice, method: 'POST', headers: upgrade })).toMatchObject({ status: 404, body: 'pod not found' });
    expect(targets).toEqual([]);
  });
});
