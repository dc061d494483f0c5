// kubectl exec / attach / port-forward through the rig's real kube-apiserver (1.20.2, which proxies kubectl's SPDY
// upgrade to the node's kubelet API on :10250 with its kubelet client certificate) to berth as node `vm`, and
// `berth exec` for the same pod without the API server. Runs berth as the e2e node: wrap by hand in
// `flock /tmp/berth-e2e.lock` (scripts/test.sh runs suites one at a time).
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BerthProcess, docker, execCode, httpGet, REPO } from '../helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../integration/helpers/docker-images.ts';
import { e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;

/** kubectl as the admin user, keeping the exit code (the helper's kubectl rejects on non-zero). */
const kubectlRun = (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> =>
  execCode(paths.kubectl, ['--kubeconfig', paths.adminKubeconfig, ...args], input, 60_000);

describe.skipIf(!up)('kubectl exec, attach and port-forward through the API server to berth', () => {
  const NS = uniqueName('exec');
  const berth = new BerthProcess({
    nodeName: NODE,
    extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(NODE)}`, '--node-ip=127.0.0.1', '--port=10250'],
  });
  const pod = (name: string, container: Record<string, unknown>): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, containers: [{ name, image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', ...container }] },
    });

  beforeAll(async () => {
    await ensureTestImages(docker);
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']);
    await kubectl(['create', 'namespace', NS]);
    berth.start();
    await kubectl(['apply', '-f', '-'], { input: pod('web', { command: ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www'] }) });
    await kubectl(['apply', '-f', '-'], { input: pod('cat', { command: ['cat'], stdin: true, stdinOnce: true }) });
    for (const name of ['web', 'cat']) {
      await waitFor(async () => (await kubectl(['-n', NS, 'get', 'pod', name, '-o', 'jsonpath={.status.phase}'])) === 'Running', 90_000, `pod ${name} Running`);
    }
  }, 180_000);

  afterAll(async () => {
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']).catch(() => undefined);
    await berth.cleanup();
    await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }, 120_000);

  it('exec shows the output and exits with the command’s exit code', async () => {
    const r = await kubectlRun(['-n', NS, 'exec', 'web', '--', 'sh', '-c', 'echo ok; exit 3']);
    expect(r.stdout).toBe('ok\n');
    expect(r.stderr).toContain('command terminated with exit code 3');
    expect(r.code).toBe(3);
  });

  it('exec -i passes stdin, and its end reaches the process', async () => {
    const r = await kubectlRun(['-n', NS, 'exec', '-i', 'web', '--', 'sh', '-c', 'cat; echo done'], 'from stdin\n');
    expect(r).toMatchObject({ code: 0, stdout: 'from stdin\ndone\n' });
  });

  it('exec -it gets a terminal of the client’s size', async () => {
    const cmd = `stty cols 101 rows 33; ${paths.kubectl} --kubeconfig ${paths.adminKubeconfig} -n ${NS} exec -it web -- sh -c 'sleep 0.5; tty; stty size'`;
    const out = await new Promise<string>((resolve) => execFile('script', ['-qec', cmd, '/dev/null'], { timeout: 60_000 }, (_e, stdout) => resolve(stdout)));
    expect(out).toMatch(/\/dev\/pts\/\d+/);
    expect(out).toContain('33 101');
  });

  it('attach -i reaches the main process; closing stdin ends a stdinOnce container', async () => {
    const r = await kubectlRun(['-n', NS, 'attach', '-i', 'cat'], 'attached\n');
    expect(r.stdout).toContain('attached');
    expect(r.code).toBe(0);
  });

  it('port-forward carries HTTP to the pod; a closed port gets upstream’s error and the connection stays usable', async () => {
    const pf = spawn(paths.kubectl, ['--kubeconfig', paths.adminKubeconfig, '-n', NS, 'port-forward', 'pod/web', ':8080', ':9'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    pf.stdout.on('data', (d: Buffer) => (out += String(d)));
    pf.stderr.on('data', (d: Buffer) => (err += String(d)));
    try {
      const portOf = (remote: number): number => Number(new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remote}\\b`).exec(out)?.[1] ?? 0);
      await waitFor(() => (portOf(8080) && portOf(9)) || undefined, 30_000, 'kubectl port-forward to listen');
      expect(await httpGet(portOf(8080))).toBe('hello\n');
      await httpGet(portOf(9)).catch(() => undefined);
      await waitFor(() => err.includes('error forwarding port 9 to pod'), 15_000, 'the closed-port error');
      expect(await httpGet(portOf(8080))).toBe('hello\n');
    } finally {
      pf.kill();
    }
  });

  it('a WebSocket client (v5.channel.k8s.io) execs on the kubelet API directly, as the API server’s client cert', async () => {
    const url = `wss://127.0.0.1:10250/exec/${NS}/web/web?command=sh&command=-c&command=cat%3Bexit%205&input=1&output=1`;
    const ws = new WebSocket(url, ['v5.channel.k8s.io'], {
      cert: readFileSync(path.join(paths.dir, 'pki', 'apiserver-kubelet-client.crt')),
      key: readFileSync(path.join(paths.dir, 'pki', 'apiserver-kubelet-client.key')),
      rejectUnauthorized: false,
    });
    const messages: Buffer[] = [];
    ws.on('message', (m: Buffer) => messages.push(m));
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('over ws\n')]));
    ws.send(Buffer.from([255, 0]));
    await closed;
    const text = (ch: number): string => Buffer.concat(messages.filter((m) => m[0] === ch).map((m) => m.subarray(1))).toString();
    expect(text(1)).toBe('over ws\n');
    expect(JSON.parse(text(3))).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '5' }] } });
  });

  it('berth exec runs the same exec locally, without the API server', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'exec', `--hostname-override=${NODE}`, '-n', NS, '-i', 'web', '--', 'sh', '-c', 'cat; exit 4'],
        { timeout: 30_000 },
        (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout }),
      );
      child.stdin?.end('local\n');
    });
    expect(r).toEqual({ code: 4, stdout: 'local\n' });
  });
});
