import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadClientConfig, authHeaderSource, parseKubeconfig, mergeKubeconfigs, SERVICE_ACCOUNT_DIR } from '../../src/kube/index.ts';
import { InvalidConfigError, FakeClock } from '../../src/lib/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-kubeconfig-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Doc {
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
  contexts?: { name: string; context: Record<string, unknown> }[];
  'current-context'?: string;
}

async function write(rel: string, content: string | Doc): Promise<string> {
  const p = path.join(dir, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, typeof content === 'string' ? content : stringify({ apiVersion: 'v1', kind: 'Config', ...content }));
  return p;
}

function simple(server = 'https://10.0.0.1:6443', user: Record<string, unknown> = { token: 'abc' }, cluster: Record<string, unknown> = {}): Doc {
  return {
    clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': b64('CA'), ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'ns1' } }],
    'current-context': 'ctx',
  };
}

async function problemsOf(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
  throw new Error('expected InvalidConfigError');
}

describe('loadClientConfig: sources', () => {
  it('loads an explicit path: server, CA data, token, namespace', async () => {
    const p = await write('kc.yaml', simple());
    const cfg = await loadClientConfig({ kubeconfigPath: p, env: {} });
    expect(cfg.server).toBe('https://10.0.0.1:6443');
    expect(cfg.tls.ca?.toString()).toBe('CA');
    expect(cfg.auth).toEqual({ type: 'token', token: 'abc' });
    expect(cfg.namespace).toBe('ns1');
    expect(cfg.context).toBe('ctx');
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('fails on a missing explicit path', async () => {
    const problems = await problemsOf(loadClientConfig({ kubeconfigPath: path.join(dir, 'nope'), env: {} }));
    expect(problems[0]).toMatch(/file not found/);
  });

  it('explicit path wins over KUBECONFIG', async () => {
    const a = await write('a.yaml', simple('https://a:1'));
    const b = await write('b.yaml', simple('https://b:1'));
    const cfg = await loadClientConfig({ kubeconfigPath: a, env: { KUBECONFIG: b } });
    expect(cfg.server).toBe('https://a:1');
  });

  it('merges KUBECONFIG: first file wins per name and for current-context; missing files skipped', async () => {
    const first = await write('1.yaml', {
      clusters: [{ name: 'c', cluster: { server: 'https://first:1', 'insecure-skip-tls-verify': true } }],
      contexts: [{ name: 'other', context: { cluster: 'c2', user: 'u2' } }],
    });
    const second = await write('2.yaml', {
      clusters: [
        { name: 'c', cluster: { server: 'https://second:1' } },
        { name: 'c2', cluster: { server: 'https://c2:1', 'insecure-skip-tls-verify': true } },
      ],
      users: [
        { name: 'u', user: { token: 't-second' } },
        { name: 'u2', user: { username: 'bob', password: 'pw' } },
      ],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    });
    const third = await write('3.yaml', { 'current-context': 'other' });
    const env = { KUBECONFIG: [path.join(dir, 'missing.yaml'), first, second, third].join(':') };
    const cfg = await loadClientConfig({ env });
    expect(cfg.server).toBe('https://first:1'); // cluster "c" from the first file
    expect(cfg.auth).toEqual({ type: 'token', token: 't-second' });
    expect(cfg.tls.insecureSkipTlsVerify).toBe(true);
    // --context override picks a context defined in the first file, cluster and user from the second
    const other = await loadClientConfig({ env, context: 'other' });
    expect(other.server).toBe('https://c2:1');
    expect(other.auth).toEqual({ type: 'basic', username: 'bob', password: 'pw' });
  });

  it('current-context comes from the first file that sets it', () => {
    const problems: string[] = [];
    const a = parseKubeconfig(stringify({ 'current-context': '' }), { file: 'a', problems });
    const b = parseKubeconfig(stringify({ 'current-context': 'from-b' }), { file: 'b', problems });
    const c = parseKubeconfig(stringify({ 'current-context': 'from-c' }), { file: 'c', problems });
    expect(mergeKubeconfigs([a, b, c]).currentContext).toBe('from-b');
    expect(problems).toEqual([]);
  });

  it('falls back to $HOME/.kube/config', async () => {
    await write('home/.kube/config', simple('https://home:1'));
    const cfg = await loadClientConfig({ env: { HOME: path.join(dir, 'home') } });
    expect(cfg.server).toBe('https://home:1');
  });

  it('falls back to the in-cluster service account', async () => {
    const sa = path.join(dir, SERVICE_ACCOUNT_DIR);
    await mkdir(sa, { recursive: true });
    await writeFile(path.join(sa, 'token'), 'sa-token\n');
    await writeFile(path.join(sa, 'ca.crt'), 'SA-CA');
    await writeFile(path.join(sa, 'namespace'), 'kube-system');
    const cfg = await loadClientConfig({
      env: { HOME: path.join(dir, 'nohome'), KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
      inClusterRoot: dir,
    });
    expect(cfg.server).toBe('https://[fd00::1]:443');
    expect(cfg.source).toBe('in-cluster');
    expect(cfg.tls.ca?.toString()).toBe('SA-CA');
    expect(cfg.namespace).toBe('kube-system');
    expect(cfg.auth).toEqual({ type: 'token', token: 'sa-token', tokenFile: path.join(sa, 'token') });
  });

  it('says where it looked when nothing is found', async () => {
    const problems = await problemsOf(loadClientConfig({ env: { HOME: dir } }));
    expect(problems[0]).toMatch(/no kubeconfig found.*\.kube\/config.*KUBERNETES_SERVICE_HOST/);
  });
});

describe('loadClientConfig: auth and TLS variants', () => {
  it('resolves relative file paths against the kubeconfig directory', async () => {
    await write('sub/pki/ca.crt', 'CA-FILE');
    await write('sub/pki/client.crt', 'CERT');
    await write('sub/pki/client.key', 'KEY');
    const p = await write(
      'sub/kc.yaml',
      simple('https://x:1', { 'client-certificate': 'pki/client.crt', 'client-key': './pki/client.key' }, {
        'certificate-authority-data': undefined,
        'certificate-authority': 'pki/ca.crt',
        'tls-server-name': 'kubernetes.default',
      }),
    );
    // load from another cwd-relative spelling of the path: resolution must not depend on cwd
    const cfg = await loadClientConfig({ kubeconfigPath: path.relative(process.cwd(), p), env: {} });
    expect(cfg.tls.ca?.toString()).toBe('CA-FILE');
    expect(cfg.tls.cert?.toString()).toBe('CERT');
    expect(cfg.tls.key?.toString()).toBe('KEY');
    expect(cfg.tls.serverName).toBe('kubernetes.default');
    expect(cfg.auth).toEqual({ type: 'none' });
  });

  it('decodes client-certificate-data / client-key-data', async () => {
    const p = await write('kc.yaml', simple('https://x:1', { 'client-certificate-data': b64('C'), 'client-key-data': b64('K') }));
    const cfg = await loadClientConfig({ kubeconfigPath: p, env: {} });
    expect(cfg.tls.cert?.toString()).toBe('C');
    expect(cfg.tls.key?.toString()).toBe('K');
  });

  it('reads tokenFile (relative) at load time', async () => {
    await write('tok', 'file-token\n');
    const p = await write('kc.yaml', simple('https://x:1', { tokenFile: 'tok' }));
    const cfg = await loadClientConfig({ kubeconfigPath: p, env: {} });
    expect(cfg.auth).toEqual({ type: 'token', token: 'file-token', tokenFile: path.join(dir, 'tok') });
  });

  it('lists every problem at once', async () => {
    const p = await write('kc.yaml', {
      clusters: [{ name: 'c', cluster: { 'proxy-url': 'http://proxy:3128', 'certificate-authority': 'ca.crt', 'certificate-authority-data': b64('x'), 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 't', username: 'a', password: 'b', 'client-certificate-data': b64('c'), exec: { command: 'x' }, 'auth-provider': { name: 'gcp' } } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    });
    const problems = await problemsOf(loadClientConfig({ kubeconfigPath: p, env: {} }));
    const all = problems.join('\n');
    expect(all).toMatch(/server is not set/);
    expect(all).toMatch(/proxy-url is not supported/);
    expect(all).toMatch(/certificate-authority-data and certificate-authority are both specified/);
    expect(all).toMatch(/certificate-authority and insecure-skip-tls-verify are both specified/);
    expect(all).toMatch(/more than one authentication method/);
    expect(all).toMatch(/client-key-data or client-key must be specified/);
    expect(all).toMatch(/exec credential plugins are not supported/);
    expect(all).toMatch(/auth-provider plugins are not supported/);
    expect(problems.length).toBeGreaterThanOrEqual(8);
    expect(problems.every((x) => x.includes(p))).toBe(true); // each names the file
  });

  it('reports missing context, cluster, user and unreadable files', async () => {
    const p1 = await write('a.yaml', { ...simple(), 'current-context': 'nope' });
    expect(await problemsOf(loadClientConfig({ kubeconfigPath: p1, env: {} }))).toEqual([expect.stringMatching(/context "nope" not found/)]);
    const p2 = await write('b.yaml', {
      contexts: [{ name: 'ctx', context: { cluster: 'missing', user: 'ghost' } }],
      'current-context': 'ctx',
    });
    const problems = await problemsOf(loadClientConfig({ kubeconfigPath: p2, env: {} }));
    expect(problems.join('\n')).toMatch(/cluster "missing".*not found[\s\S]*user "ghost".*not found/);
    const p3 = await write('c.yaml', simple('https://x:1', { 'client-certificate': 'no.crt', 'client-key': 'no.key' }));
    const p3problems = await problemsOf(loadClientConfig({ kubeconfigPath: p3, env: {} }));
    expect(p3problems).toHaveLength(2);
    expect(p3problems[0]).toMatch(/unable to read .*client-certificate .*no\.crt/);
  });

  it('rejects bad YAML and a non-URL server', async () => {
    const p = await write('bad.yaml', 'clusters: [\n');
    expect((await problemsOf(loadClientConfig({ kubeconfigPath: p, env: {} })))[0]).toMatch(/not valid YAML/);
    const p2 = await write('bad2.yaml', simple('ftp://x'));
    expect((await problemsOf(loadClientConfig({ kubeconfigPath: p2, env: {} })))[0]).toMatch(/scheme must be https or http/);
  });
});

describe('authHeaderSource', () => {
  it('builds bearer and basic headers', async () => {
    expect(await authHeaderSource({ type: 'token', token: 't' })()).toBe('Bearer t');
    expect(await authHeaderSource({ type: 'basic', username: 'a', password: 'b:c' })()).toBe(`Basic ${b64('a:b:c')}`);
    expect(await authHeaderSource({ type: 'none' })()).toBeUndefined();
  });

  it('re-reads a tokenFile after the refresh period and keeps the last good token on errors', async () => {
    const file = await write('token', 'one');
    const clock = new FakeClock();
    const header = authHeaderSource({ type: 'token', token: 'one', tokenFile: file }, { clock, tokenRefreshMs: 60_000 });
    expect(await header()).toBe('Bearer one');
    await writeFile(file, 'two\n');
    expect(await header()).toBe('Bearer one'); // not yet
    clock.advance(60_000);
    expect(await header()).toBe('Bearer two');
    await rm(file);
    clock.advance(60_000);
    expect(await header()).toBe('Bearer two'); // unreadable: keep the previous one
  });
});
