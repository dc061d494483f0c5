// Container logs with the real dockerd and a real standalone berth: the /var/log/pods and /var/log/containers
// links (created with the container, removed with the pod), Docker's rotation options, `berth logs` (plain, --tail,
// --previous after a crash, -f ending when the container exits), and the secure kubelet API on its own port with
// x509 client certificates (standalone: AlwaysAllow for verified users, 401 for everyone else).
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { docker, manifestFiles, podManifest, REPO, shContainer, useBerth, waitFor } from '../helpers/berth.ts';
import { makeCA, signClient, type CertPair } from '../helpers/pki.ts';

const pki = mkdtempSync(path.join(os.tmpdir(), 'berth-logs-pki-'));
const ca = makeCA(pki, 'ca');
const client = signClient(pki, ca, 'alice', '/CN=alice');
const apiPort = 20000 + Math.floor(Math.random() * 20000);
const berth = useBerth({
  extraArgs: [`--port=${apiPort}`, '--address=127.0.0.1', `--client-ca-file=${ca.certFile}`, '--crash-loop-backoff-initial=1s', '--container-log-max-size=50Ki', '--container-log-max-files=3'],
  beforeStart: () => {
    files.write('web.yaml', podManifest('web', { terminationGracePeriodSeconds: 1, containers: [shContainer('c', 'for i in 1 2 3 4 5; do echo line $i; done; sleep 3600')] }));
    files.write('crash.yaml', podManifest('crash', { containers: [shContainer('c', 'echo run $(cat /proc/sys/kernel/random/uuid); exit 1')] }));
    files.write(
      'chatty.yaml',
      podManifest('chatty', { containers: [shContainer('c', 'i=0; while [ $i -lt 3000 ]; do echo "chatty $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done; sleep 3600')] }),
    );
  },
  ready: () => waitFor(async () => (await berth.pod('web'))?.status.containerStatuses?.[0]?.state?.running, 60_000, 'web running'),
  hookTimeoutMs: 120_000,
  afterCleanup: () => rmSync(pki, { recursive: true, force: true }),
});
const files = manifestFiles(berth);
const podName = (n: string): string => `${n}-${berth.nodeName}`;

function berthLogs(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'logs', `--hostname-override=${berth.nodeName}`, ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function api(p: string, who?: CertPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: apiPort, path: p, rejectUnauthorized: false, ...(who ? { cert: who.cert, key: who.key } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe('container logs on a standalone berth', () => {
  it('links the kubelet log path and the /var/log/containers name to Docker json-file logs with rotation options', async () => {
    const pod = (await berth.pod('web'))!;
    const id = pod.status.containerStatuses![0]!.containerID!.replace('docker://', '');
    const podDir = path.join(berth.rootDir, 'logs', `default_${podName('web')}_${pod.metadata!.uid}`);
    const kubeletPath = path.join(podDir, 'c', '0.log');
    const legacy = path.join(berth.rootDir, 'containers', `${podName('web')}_default_c-${id}.log`);
    const inspect = await docker.getContainer(id).inspect();
    expect(readlinkSync(kubeletPath)).toBe(inspect.LogPath);
    expect(readlinkSync(legacy)).toBe(kubeletPath);
    expect(inspect.HostConfig.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '50Ki', 'max-file': '3' } });
  });

  it('berth logs prints the log, the last lines with --tail, and with timestamps', async () => {
    expect((await berthLogs([podName('web')])).stdout).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    expect((await berthLogs(['--tail', '2', 'web'])).stdout).toBe('line 4\nline 5\n');
    expect((await berthLogs(['--timestamps', '--tail=1', 'web'])).stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line 5\n$/);
    const missing = await berthLogs(['nope']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('pod "nope" does not exist');
  }, 60_000);

  it('--previous shows the last terminated instance after a crash, and the upstream error when there is none', async () => {
    await waitFor(async () => ((await berth.pod('crash'))?.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000, 'crash restarted');
    const prev = await berthLogs(['--previous', 'crash']);
    expect(prev.stdout, `exit ${prev.code}: ${prev.stderr}`).toMatch(/^run [0-9a-f-]{36}\n$/);
    expect((await berthLogs(['crash'])).stdout).toMatch(/^run [0-9a-f-]{36}\n$/);
    const none = await berthLogs(['--previous', 'web']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain(`previous terminated container "c" in pod "${podName('web')}" not found`);
  }, 90_000);

  /** Polls previous=true through the secure API for 15 s from the first crash of pod flap; every answer must be a log. */
  async function pollPrevious(): Promise<void> {
    // Right after the first crash: the first status that shows an instance that is not running (whatever its shape).
    await waitFor(
      async () => {
        const s = (await berth.pod('flap'))?.status.containerStatuses?.[0];
        return !!s && (!!s.state?.terminated || !!s.lastState?.terminated || (s.restartCount ?? 0) > 0);
      },
      60_000,
      { intervalMs: 20, what: 'first crash of flap' },
    );
    const failures: string[] = [];
    const seenRuns = new Set<string>();
    // 15 s span the restarts at back-off 1 s, 2 s, 4 s, 8 s: every answer must be a previous instance's log.
    for (const end = Date.now() + 15_000; Date.now() < end; ) {
      const r = await api(`/containerLogs/default/${podName('flap')}/c?previous=true`, client);
      if (r.status === 200 && /^run [0-9a-f-]{36}\n$/.test(r.body)) seenRuns.add(r.body);
      else failures.push(`${r.status} ${r.body.slice(0, 160)}`);
      await new Promise((res) => setTimeout(res, 30));
    }
    expect(failures).toEqual([]);
    expect(seenRuns.size).toBeGreaterThanOrEqual(3);
  }

  it('previous=true answers from the first crash on, across restarts, without waiting for lastState', async () => {
    files.write('flap.yaml', podManifest('flap', { containers: [shContainer('c', 'echo run $(cat /proc/sys/kernel/random/uuid); sleep 0.2; exit 1')] }));
    try {
      await pollPrevious();
    } finally {
      files.remove('flap.yaml');
    }
  }, 120_000);

  it('reads across rotated files', async () => {
    const pod = await waitFor(async () => berth.pod('chatty'), 30_000, 'chatty pod');
    const id = await waitFor(() => pod.status.containerStatuses?.[0]?.containerID?.replace('docker://', ''), 30_000);
    const logPath = (await docker.getContainer(id).inspect()).LogPath;
    await waitFor(async () => (await berthLogs(['--tail=1', 'chatty'])).stdout.startsWith('chatty 2999 '), 30_000, 'all lines written');
    expect(readdirSync(path.dirname(logPath)).filter((f) => f.startsWith(`${id}-json.log.`)).length).toBeGreaterThan(0);
    const all = (await berthLogs(['chatty'])).stdout.trim().split('\n');
    // Docker keeps at most 3 files of 50 KiB: the oldest lines are gone, the rest is contiguous and in order.
    const first = Number(all[0]!.split(' ')[1]);
    expect(all.length).toBe(3000 - first);
    expect(all.map((l) => Number(l.split(' ')[1]))).toEqual(Array.from({ length: all.length }, (_, i) => first + i));
    // 500 lines span more than one 50 KiB file (about 390 records each).
    expect((await berthLogs(['--tail=500', 'chatty'])).stdout.trim().split('\n')).toEqual(all.slice(-500));
  }, 60_000);

  it('-f follows until the container exits', async () => {
    files.write('count.yaml', podManifest('count', { restartPolicy: 'Never', containers: [shContainer('c', 'for i in 1 2 3; do echo tick $i; sleep 1; done')] }));
    await waitFor(async () => (await berth.pod('count'))?.status.containerStatuses?.[0]?.containerID, 30_000, 'count started');
    const t0 = Date.now();
    const r = await berthLogs(['-f', 'count'], 30_000);
    expect(r.stdout).toBe('tick 1\ntick 2\ntick 3\n');
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 60_000);

  it('the secure API serves logs to a verified client and 401 to anyone else', async () => {
    expect(await api(`/containerLogs/default/${podName('web')}/c?tailLines=1`, client)).toEqual({ status: 200, body: 'line 5\n' });
    expect(await api(`/containerLogs/default/${podName('web')}/c`)).toEqual({ status: 401, body: 'Unauthorized' });
    expect((await api(`/containerLogs/default/${podName('crash')}/c?previous=true`, client)).body).toMatch(/^run /);
    expect((await api('/pods', client)).status).toBe(200);
  });

  it('removes the links with the pod', async () => {
    const pod = (await berth.pod('web'))!;
    const id = pod.status.containerStatuses![0]!.containerID!.replace('docker://', '');
    const legacy = path.join(berth.rootDir, 'containers', `${podName('web')}_default_c-${id}.log`);
    const kubeletPath = path.join(berth.rootDir, 'logs', `default_${podName('web')}_${pod.metadata!.uid}`, 'c', '0.log');
    expect(lstatSync(legacy).isSymbolicLink()).toBe(true);
    files.remove('web.yaml');
    await waitFor(() => !existsSync(legacy) && !existsSync(kubeletPath), 60_000, 'links removed');
  }, 90_000);
});
