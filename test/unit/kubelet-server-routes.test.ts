// Routing of the kubelet API (paths and methods of upstream server.go), the exec/attach/port-forward query
// parsing, the /logs/ directory listing, the generated serving certificate, the stream target resolution, and the
// KubeletConfiguration-style config keys for authentication/authorization.
import { afterAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeStreamFlags, matchRoute, parsePorts, type HttpRoute } from '../../src/kubelet/server/routes.ts';
import { buildDirListing } from '../../src/kubelet/server/node-logs.ts';
import { loadServingCert } from '../../src/kubelet/server/tls.ts';
import { resolveContainer, resolveSandbox } from '../../src/kubelet/server/streaming.ts';
import { legacyLogSymlink } from '../../src/cri/docker/log-links.ts';
import { loadConfig } from '../../src/cli/config.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-routes-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('matchRoute', () => {
  const stats: HttpRoute = { prefix: '/stats/summary', subresource: 'stats', handle: () => undefined };
  const metrics: HttpRoute = { prefix: '/metrics', subresource: 'metrics', handle: () => undefined };
  const cadvisor: HttpRoute = { prefix: '/metrics/cadvisor', subresource: 'metrics', handle: () => undefined };
  const mounted = [stats, metrics, cadvisor];
  it.each([
    ['GET', '/healthz', { kind: 'healthz' }],
    ['GET', '/pods', { kind: 'pods' }],
    ['GET', '/runningpods/', { kind: 'runningpods' }],
    ['GET', '/spec/', { kind: 'spec' }],
    ['GET', '/configz', { kind: 'configz' }],
    ['GET', '/containerLogs/ns/web/c', { kind: 'containerLogs', namespace: 'ns', pod: 'web', container: 'c' }],
    ['GET', '/containerLogs/ns/we%2Db/c', { kind: 'containerLogs', namespace: 'ns', pod: 'we-b', container: 'c' }],
    ['GET', '/containerLogs/ns/web', { kind: 'notFound' }],
    ['POST', '/containerLogs/ns/web/c', { kind: 'methodNotAllowed' }],
    ['GET', '/logs/', { kind: 'logs', path: '/' }],
    ['GET', '/logs/pods/x.log', { kind: 'logs', path: '/pods/x.log' }],
    ['POST', '/exec/ns/web/c', { kind: 'exec', namespace: 'ns', pod: 'web', container: 'c' }],
    ['GET', '/exec/ns/web/uid1/c', { kind: 'exec', namespace: 'ns', pod: 'web', uid: 'uid1', container: 'c' }],
    ['PUT', '/exec/ns/web/c', { kind: 'methodNotAllowed' }],
    ['POST', '/attach/ns/web/c', { kind: 'attach', namespace: 'ns', pod: 'web', container: 'c' }],
    ['GET', '/portForward/ns/web', { kind: 'portForward', namespace: 'ns', pod: 'web' }],
    ['POST', '/portForward/ns/web/uid1', { kind: 'portForward', namespace: 'ns', pod: 'web', uid: 'uid1' }],
    ['POST', '/run/ns/web/c', { kind: 'run', namespace: 'ns', pod: 'web', container: 'c' }],
    ['GET', '/run/ns/web/c', { kind: 'methodNotAllowed' }],
    ['GET', '/nothing', { kind: 'notFound' }],
  ])('%s %s', (method, p, expected) => {
    expect(matchRoute(method, p, mounted)).toEqual(expected);
  });

  it('mounted routes match by the longest prefix', () => {
    expect(matchRoute('GET', '/stats/summary', mounted)).toEqual({ kind: 'mounted', route: stats });
    expect(matchRoute('GET', '/metrics/cadvisor', mounted)).toEqual({ kind: 'mounted', route: cadvisor });
    expect(matchRoute('GET', '/metrics', mounted)).toEqual({ kind: 'mounted', route: metrics });
    expect(matchRoute('GET', '/metricsx', mounted)).toEqual({ kind: 'notFound' });
  });
});

describe('stream parameters', () => {
  it.each([
    ['stdout=1', { stdin: false, stdout: true, stderr: false, tty: false }],
    ['stdin=1&stdout=1&stderr=1', { stdin: true, stdout: true, stderr: true, tty: false }],
    ['stdin=1&stdout=1&stderr=1&tty=1', { stdin: true, stdout: true, stderr: false, tty: true }],
    ['stdout=true&stderr=true', { stdin: false, stdout: true, stderr: true, tty: false }],
    ['tty=1', { error: 'you must specify at least 1 of stdin, stdout, stderr' }],
  ])('%s', (q, expected) => {
    expect(computeStreamFlags(new URLSearchParams(q))).toEqual(expected);
  });

  it('port-forward ports', () => {
    expect(parsePorts(new URLSearchParams('ports=80&ports=8080,9090'))).toEqual([80, 8080, 9090]);
    expect(parsePorts(new URLSearchParams(''))).toEqual([]);
    expect(parsePorts(new URLSearchParams('ports=http'))).toEqual({ error: 'unable to parse "http" as a port: invalid port' });
    expect(parsePorts(new URLSearchParams('ports=70000'))).toEqual({ error: 'unable to parse "70000" as a port: invalid port' });
  });

  const found = {
    pod: { metadata: { name: 'web', namespace: 'ns', uid: 'u1' } },
    seen: {
      uid: 'u1',
      sandboxes: [{ id: 'sb-old', state: 'SANDBOX_NOTREADY' }, { id: 'sb', state: 'SANDBOX_READY' }],
      containers: [
        { id: 'dead', state: 'CONTAINER_EXITED', labels: { 'io.kubernetes.container.name': 'c' }, metadata: { name: 'c' } },
        { id: 'live', state: 'CONTAINER_RUNNING', labels: { 'io.kubernetes.container.name': 'c' }, metadata: { name: 'c' } },
      ],
    },
  } as never;
  it('resolves only a running container, and the ready sandbox', () => {
    expect(resolveContainer(found, undefined, 'c')).toEqual({ ok: true, value: 'live' });
    expect(resolveContainer(found, 'u1', 'c')).toEqual({ ok: true, value: 'live' });
    expect(resolveContainer(found, 'other', 'c')).toEqual({ ok: false, status: 500, message: 'container not found ("c")' });
    expect(resolveContainer(undefined, undefined, 'c')).toEqual({ ok: false, status: 404, message: 'pod does not exist' });
    expect(resolveSandbox(found, undefined)).toEqual({ ok: true, value: { sandboxId: 'sb', podUid: 'u1' } });
    expect(resolveSandbox(found, 'other')).toEqual({ ok: false, status: 404, message: 'pod not found' });
  });
});

describe('node log listing and log links', () => {
  it('lists like Go http.FileServer: sorted, directories with a slash, names escaped', () => {
    expect(buildDirListing([{ name: 'syslog', dir: false }, { name: 'pods', dir: true }, { name: 'a<b>', dir: false }])).toBe(
      '<pre>\n<a href="a%3Cb%3E">a&lt;b&gt;</a>\n<a href="pods/">pods/</a>\n<a href="syslog">syslog</a>\n</pre>\n',
    );
  });

  it('puts the legacy link in the containers folder beside the pod log root', () => {
    const labels = { 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.container.name': 'app' };
    expect(legacyLogSymlink('/var/log/pods/default_web_u1/app/0.log', labels, 'abc')).toBe('/var/log/containers/web_default_app-abc.log');
    expect(legacyLogSymlink('/var/log/pods/default_web_u1/app/0.log', {}, 'abc')).toBeUndefined();
    const long = legacyLogSymlink('/var/log/pods/x/app/0.log', { ...labels, 'io.kubernetes.pod.name': 'p'.repeat(300) }, 'abc')!;
    expect(path.basename(long)).toHaveLength(255);
  });
});

describe('serving certificate', () => {
  it('is generated once for the host name and IPs, key 0600, and reused', async () => {
    const dir = path.join(tmp, 'pki');
    const first = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: ['10.1.2.3', 'fd00::1', 'not-an-ip'] });
    expect(first.generated).toBe(true);
    const x = new X509Certificate(first.cert);
    expect(x.subjectAltName).toBe('DNS:node-a, DNS:localhost, IP Address:10.1.2.3, IP Address:FD00:0:0:0:0:0:0:1, IP Address:127.0.0.1');
    expect(x.subject).toMatch(/^CN=node-a@\d+$/);
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(first.key))).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(statSync(first.keyFile).mode & 0o777).toBe(0o600);
    const again = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    expect(again).toMatchObject({ generated: false, cert: first.cert });
  });
});

describe('config: kubelet API flags and KubeletConfiguration sections', () => {
  const file = `
authentication:
  x509: { clientCAFile: /etc/ca.crt }
  anonymous: { enabled: true }
  webhook: { enabled: true, cacheTTL: 1m }
authorization:
  mode: Webhook
  webhook: { cacheAuthorizedTTL: 10m, cacheUnauthorizedTTL: 5s }
tlsCertFile: /etc/k.crt
tlsPrivateKeyFile: /etc/k.key
containerLogMaxSize: 20Mi
containerLogMaxFiles: 3
`;
  it('reads nested sections from the --config file', () => {
    const cfg = loadConfig({ argv: ['--config=/x.yaml', '--kubeconfig=/k'], env: {}, readFile: () => file, hostname: 'h' });
    expect(cfg).toMatchObject({
      clientCAFile: '/etc/ca.crt',
      anonymousAuth: true,
      authenticationTokenWebhook: true,
      authenticationTokenWebhookCacheTtlMs: 60_000,
      authorizationMode: 'Webhook',
      authorizationWebhookCacheAuthorizedTtlMs: 600_000,
      authorizationWebhookCacheUnauthorizedTtlMs: 5_000,
      tlsCertFile: '/etc/k.crt',
      tlsPrivateKeyFile: '/etc/k.key',
      containerLogMaxSize: '20Mi',
      containerLogMaxFiles: 3,
    });
  });

  it('defaults and refusals', () => {
    expect(loadConfig({ argv: [], env: {}, hostname: 'h' })).toMatchObject({ port: 10250, anonymousAuth: false, containerLogMaxSize: '10Mi', containerLogMaxFiles: 5 });
    expect(() => loadConfig({ argv: ['--authorization-mode=Webhook'], env: {}, hostname: 'h' })).toThrow(/needs --kubeconfig/);
    expect(() => loadConfig({ argv: ['--authorization-mode=RBAC'], env: {}, hostname: 'h' })).toThrow(/is not Webhook or AlwaysAllow/);
    expect(() => loadConfig({ argv: ['--tls-cert-file=/a'], env: {}, hostname: 'h' })).toThrow(/go together/);
  });
});
