// Test fixtures for src/kube: a programmable HTTP server on 127.0.0.1 (ephemeral port), and a small fake API
// server for one resource (pods) with paginated lists and streaming watches whose framing tests control.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path + query as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

export interface Fixture {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted so far (keep-alive checks). */
  connections(): number;
  setHandler(h: Handler): void;
  close(): Promise<void>;
}

export async function startFixture(handler: Handler, port = 0): Promise<Fixture> {
  let h = handler;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        path: u.pathname,
        query: u.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(rec);
      Promise.resolve(h(rec, res)).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(599);
        res.end(String(err));
      });
    });
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    requests,
    connections: () => connections,
    setHandler: (nh) => {
      h = nh;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendFailure(res: http.ServerResponse, fail: number | { code: number }, what: string): void {
  if (typeof fail === 'number') sendJson(res, fail, status(fail, fail === 410 ? 'Expired' : 'InternalError', `${what} failure ${fail}`));
  else sendJson(res, fail.code, fail);
}

/** A free TCP port nobody listens on (for connection-refused tests). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(fn: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------- fake API server for pods

export interface FakePod {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string; labels?: Record<string, string> };
  spec?: { nodeName?: string };
}

export interface OpenWatch {
  res: http.ServerResponse;
  query: URLSearchParams;
  /** Writes raw text into the stream as one chunk. */
  write(text: string): void;
  end(): void;
}

/**
 * Serves /api/v1/pods and /api/v1/namespaces/{ns}/pods: list with limit/continue (continue = offset), watch with
 * events pushed by the test. `silent` mutations change the store without telling watchers (what a lost connection
 * looks like). Queues let a test make the next list/watch answer an error status or misbehave.
 */
export class FakeApiServer {
  fixture!: Fixture;
  rv = 100;
  store = new Map<string, FakePod>();
  watches: OpenWatch[] = [];
  lists: RecordedRequest[] = [];
  watchRequests: RecordedRequest[] = [];
  /** Next list answers: status codes (or whole Status objects) to send instead of the list. */
  listFailures: (number | { code: number; [k: string]: unknown })[] = [];
  /** Next watch answers: status codes (or whole Status objects) instead of a stream. */
  watchFailures: (number | { code: number; [k: string]: unknown })[] = [];
  /** Each event is written in this many chunks (split inside the JSON). */
  splitEvents = 1;

  async start(port = 0): Promise<this> {
    this.fixture = await startFixture((req, res) => this.handle(req, res), port);
    return this;
  }

  get url(): string {
    return this.fixture.url;
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.end();
    await this.fixture.close();
  }

  put(name: string, labels: Record<string, string> = {}, opts: { silent?: boolean; namespace?: string } = {}): FakePod {
    const ns = opts.namespace ?? 'default';
    const key = `${ns}/${name}`;
    const existed = this.store.has(key);
    const pod: FakePod = {
      metadata: { name, namespace: ns, resourceVersion: String(++this.rv), uid: `uid-${name}`, labels },
      spec: { nodeName: 'node-1' },
    };
    this.store.set(key, pod);
    if (!opts.silent) this.broadcast(existed ? 'MODIFIED' : 'ADDED', pod);
    return pod;
  }

  remove(name: string, opts: { silent?: boolean; namespace?: string } = {}): void {
    const key = `${opts.namespace ?? 'default'}/${name}`;
    const pod = this.store.get(key);
    if (!pod) return;
    this.store.delete(key);
    const gone = { ...pod, metadata: { ...pod.metadata, resourceVersion: String(++this.rv) } };
    if (!opts.silent) this.broadcast('DELETED', gone);
  }

  bookmark(): void {
    this.broadcastRaw(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }) + '\n');
  }

  broadcast(type: string, obj: unknown): void {
    this.broadcastRaw(JSON.stringify({ type, object: obj }) + '\n');
  }

  broadcastRaw(text: string): void {
    for (const w of this.watches) {
      if (this.splitEvents <= 1) w.write(text);
      else {
        const n = this.splitEvents;
        const size = Math.ceil(text.length / n);
        for (let i = 0; i < text.length; i += size) w.write(text.slice(i, i + size));
      }
    }
  }

  /** Ends every open watch as a server-side timeout would. */
  endWatches(): void {
    for (const w of this.watches) w.end();
    this.watches = [];
  }

  private handle(req: RecordedRequest, res: http.ServerResponse): void {
    if (!/^\/api\/v1\/(namespaces\/[^/]+\/)?pods$/.test(req.path)) {
      sendJson(res, 404, status(404, 'NotFound', `no route ${req.path}`));
      return;
    }
    if (req.query.get('watch') === 'true') this.handleWatch(req, res);
    else this.handleList(req, res);
  }

  private handleList(req: RecordedRequest, res: http.ServerResponse): void {
    this.lists.push(req);
    const fail = this.listFailures.shift();
    if (fail !== undefined) {
      sendFailure(res, fail, 'list');
      return;
    }
    const all = [...this.store.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const limit = Number(req.query.get('limit') ?? '0');
    const offset = Number(req.query.get('continue') ?? '0');
    const page = limit > 0 ? all.slice(offset, offset + limit) : all;
    const next = limit > 0 && offset + limit < all.length ? String(offset + limit) : undefined;
    sendJson(res, 200, {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) },
      items: page,
    });
  }

  private handleWatch(req: RecordedRequest, res: http.ServerResponse): void {
    this.watchRequests.push(req);
    const fail = this.watchFailures.shift();
    if (fail !== undefined) {
      sendFailure(res, fail, 'watch');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = {
      res,
      query: req.query,
      write: (t) => {
        if (!res.writableEnded) res.write(t);
      },
      end: () => {
        if (!res.writableEnded) res.end();
      },
    };
    this.watches.push(w);
    res.on('close', () => {
      this.watches = this.watches.filter((x) => x !== w);
    });
  }
}
