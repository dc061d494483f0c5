// A minimal stand-in for the API server in front of the streaming server, so that real kubectl (its SPDY client is
// the one the API server proxies) can drive exec/attach/port-forward without an API server or kubelet API:
// discovery for pods, GET of any pod (Running, with the given containers), and every pod subresource upgrade handed
// to `route`, which returns the StreamRequest (or undefined for a 404).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StreamRequest, StreamServer } from '../../src/kubelet/streaming/index.ts';

export interface FakeKubeApi {
  url: string;
  /** kubectl arguments that point at this server (no kubeconfig needed). */
  kubectlArgs: string[];
  close(): Promise<void>;
}

const discovery: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      { name: 'pods', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
      { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
      { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
    ],
  },
};

/** The exec/attach flags of a kubectl request URL (kubectl sends `true`; the kubelet API also takes `1`). */
export function streamFlags(u: URL): { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean } {
  const on = (k: string): boolean => ['true', '1'].includes(u.searchParams.get(k) ?? '');
  return { stdin: on('stdin'), stdout: on('stdout'), stderr: on('stderr'), tty: on('tty') };
}

export function startFakeKubeApi(opts: {
  streams: StreamServer;
  containers: string[];
  route: (kind: 'exec' | 'attach' | 'portforward', url: URL) => StreamRequest | undefined;
  onUpgrade?: (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void;
}): Promise<FakeKubeApi> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const podMatch = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
    const body = podMatch
      ? {
          kind: 'Pod',
          apiVersion: 'v1',
          metadata: { name: podMatch[2], namespace: podMatch[1], uid: 'fake-uid' },
          spec: { containers: opts.containers.map((name) => ({ name, image: 'busybox' })) },
          status: { phase: 'Running' },
        }
      : discovery[path];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
    opts.onUpgrade?.(req, socket, head);
    const u = new URL(req.url ?? '/', 'http://x');
    const kind = u.pathname.endsWith('/portforward') ? 'portforward' : u.pathname.endsWith('/attach') ? 'attach' : 'exec';
    const target = opts.route(kind, u);
    if (!target) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    opts.streams.handleUpgrade(req, socket, head, target);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({
        url,
        kubectlArgs: ['--server', url, '-n', 'default'],
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
