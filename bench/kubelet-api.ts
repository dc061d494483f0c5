// bench/kubelet-api: the kubelet API's streaming paths through the rig's real kube-apiserver, each next to its floor
// measured in the same run: `kubectl exec -- true` round trips (floor: `docker exec <id> true`, and `kubectl get pod`
// for kubectl + API server alone) and port-forward throughput (floor: the same download straight from the pod IP).
// Runs berth as the e2e node:  flock /tmp/berth-e2e.lock node bench/kubelet-api.ts [--runs 50] [--mb 64]  → JSON.
// To add a measurement (e.g. log streaming), append an entry to SECTIONS: it gets the running pod and returns JSON.
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { BerthProcess, docker } from '../test/helpers/berth.ts';
import { ensureTestImages, BUSYBOX_IMAGE } from '../test/integration/helpers/docker-images.ts';
import { e2eNodeName, kubectl, paths, requireCluster, uniqueName, waitFor } from '../test/e2e/helpers/cluster.ts';
import { argOpt, median, percentile } from './lib.ts';

const runs = Number(argOpt('runs', '50'));
const mb = Number(argOpt('mb', '64'));

export interface BenchContext {
  ns: string;
  /** The pod `web`: busybox httpd on :8080 serving /big (`mb` MiB) and /index.html. */
  pod: string;
  containerId: string;
  podIP: string;
}

function timed(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(cmd, args, { timeout: 30_000 }, (err) => (err ? reject(err) : resolve(performance.now() - t0)));
  });
}

function stats(xs: number[]): { p50: number; p99: number; runs: number } {
  return { p50: Math.round(median(xs)), p99: Math.round(percentile(xs, 99)), runs: xs.length };
}

/** Downloads `path` from host:port; resolves with MB/s (MiB) and the byte count. */
function download(port: number, host: string, path: string): Promise<{ mbPerS: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    http
      .get({ host, port, path, agent: false }, (res) => {
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => resolve({ mbPerS: Number((bytes / 1048576 / ((performance.now() - t0) / 1000)).toFixed(1)), bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const SECTIONS: Record<string, (ctx: BenchContext) => Promise<unknown>> = {
  async execRoundTrip(ctx) {
    const kube = ['--kubeconfig', paths.adminKubeconfig, '-n', ctx.ns];
    for (let i = 0; i < 3; i++) await timed(paths.kubectl, [...kube, 'exec', ctx.pod, '--', 'true']); // warm-up
    const viaApi: number[] = [];
    const dockerExec: number[] = [];
    const kubectlGet: number[] = [];
    for (let i = 0; i < runs; i++) {
      viaApi.push(await timed(paths.kubectl, [...kube, 'exec', ctx.pod, '--', 'true']));
      dockerExec.push(await timed('docker', ['exec', ctx.containerId, 'true']));
      kubectlGet.push(await timed(paths.kubectl, [...kube, 'get', 'pod', ctx.pod, '-o', 'name']));
    }
    return { kubectlExecMs: stats(viaApi), floorDockerExecMs: stats(dockerExec), floorKubectlGetMs: stats(kubectlGet), targetP50Ms: 150 };
  },

  async portForwardThroughput(ctx) {
    const pf = spawn(paths.kubectl, ['--kubeconfig', paths.adminKubeconfig, '-n', ctx.ns, 'port-forward', `pod/${ctx.pod}`, ':8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    pf.stdout.on('data', (d: Buffer) => (out += String(d)));
    try {
      const port = await waitFor(() => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1] ?? 0) || undefined, 30_000, 'port-forward');
      await download(port, '127.0.0.1', '/index.html');
      const through: number[] = [];
      const direct: number[] = [];
      for (let i = 0; i < 3; i++) {
        through.push((await download(port, '127.0.0.1', '/big')).mbPerS);
        direct.push((await download(8080, ctx.podIP, '/big')).mbPerS);
      }
      return { sizeMiB: mb, portForwardMBps: median(through), floorPodIpMBps: median(direct), all: { through, direct } };
    } finally {
      pf.kill();
    }
  },
};

async function main(): Promise<void> {
  if (!(await requireCluster())) throw new Error('the e2e API server is not up (bash test/e2e/apiserver.sh start)');
  await ensureTestImages(docker);
  const node = e2eNodeName;
  const ns = uniqueName('bench-api');
  const berth = new BerthProcess({ nodeName: node, extraArgs: [`--kubeconfig=${paths.nodeKubeconfig(node)}`, '--node-ip=127.0.0.1', '--port=10250', '--log-level=warn'] });
  await kubectl(['delete', 'node', node, '--ignore-not-found', '--wait=false']);
  await kubectl(['create', 'namespace', ns]);
  berth.start();
  const results: Record<string, unknown> = {};
  try {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: ns },
      spec: {
        nodeName: node,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'web',
            image: BUSYBOX_IMAGE,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', `mkdir -p /www && echo hello > /www/index.html && dd if=/dev/zero of=/www/big bs=1048576 count=${mb} 2>/dev/null && exec httpd -f -p 8080 -h /www`],
          },
        ],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    await waitFor(async () => (await kubectl(['-n', ns, 'get', 'pod', 'web', '-o', 'jsonpath={.status.phase}'])) === 'Running', 120_000, 'pod Running');
    const podIP = await kubectl(['-n', ns, 'get', 'pod', 'web', '-o', 'jsonpath={.status.podIP}']);
    const containerId = (await kubectl(['-n', ns, 'get', 'pod', 'web', '-o', 'jsonpath={.status.containerStatuses[0].containerID}'])).replace('docker://', '');
    await waitFor(() => download(8080, podIP, '/index.html').then(() => true), 30_000, 'httpd up');
    const ctx: BenchContext = { ns, pod: 'web', containerId, podIP };
    for (const [name, fn] of Object.entries(SECTIONS)) results[name] = await fn(ctx);
  } finally {
    await kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
    await berth.cleanup();
    await kubectl(['delete', 'node', node, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }
  process.stdout.write(JSON.stringify({ bench: 'kubelet-api', node: process.version, runs, results }, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
