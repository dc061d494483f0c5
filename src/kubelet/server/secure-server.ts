// The kubelet API on --address:--port (10250) over HTTPS, as upstream's pkg/kubelet/server/server.go serves it:
// every request — plain or an upgrade (SPDY or WebSocket) — is authenticated (401 "Unauthorized"), then authorized
// with the node attributes (403 "Forbidden (user=…, verb=…, resource=…, subresource=…)"), then routed. Streaming
// requests are resolved to runtime ids and handed to the StreamServer; without one they get 501.
import http, { STATUS_CODES } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type stream from 'node:stream';
import type { RuntimeService } from '../../cri/index.ts';
import { errorMessage, type Logger } from '../../lib/index.ts';
import type { PodLookup } from '../logs/index.ts';
import type { Authenticator, UserInfo } from './auth.ts';
import { authorizationErrorMessage, computeRequestAttributes, forbiddenMessage, type Authorizer } from './authz.ts';
import { buildMachineSpec, buildPodList, buildRunningPodList, writeHealthz, writeJson, type HealthCheck, type KubeletView, type MachineFacts } from './handlers.ts';
import { serveContainerLogs, writeText } from './logs.ts';
import { serveNodeLogs } from './node-logs.ts';
import { computeStreamFlags, matchRoute, parsePorts, type HttpRoute, type Route } from './routes.ts';
import { resolveContainer, resolveSandbox, type FoundPod, type StreamRequest, type StreamServer } from './streaming.ts';

export type ApiRuntime = Pick<RuntimeService, 'containerStatus' | 'execSync'>;

export interface SecureServerOptions {
  address: string;
  /** 0 = pick a free port (tests). */
  port: number;
  nodeName: string;
  tls: { cert: string; key: string };
  /** PEM bundle verifying client certificates; without it no client certificate is requested. */
  clientCA?: string;
  authenticator: Authenticator;
  authorizer: Authorizer;
  kubelet: KubeletView;
  runtime: ApiRuntime;
  checks: HealthCheck[];
  machineInfo?: () => Promise<MachineFacts>;
  configz?: () => unknown;
  routes?: HttpRoute[];
  streaming?: StreamServer;
  /** Root of /logs/ (default /var/log). */
  nodeLogDir?: string;
  /** Timeout of /run/ commands (default 5 min). */
  runTimeoutMs?: number;
  log: Logger;
}

type Refusal = { status: number; message: string };

export class KubeletApiServer {
  private server: https.Server | undefined;
  private readonly o: SecureServerOptions;
  constructor(o: SecureServerOptions) {
    this.o = o;
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const s = https.createServer({
      cert: this.o.tls.cert,
      key: this.o.tls.key,
      ...(this.o.clientCA ? { ca: this.o.clientCA, requestCert: true, rejectUnauthorized: false } : {}),
      minVersion: 'TLSv1.2',
    });
    s.on('request', (req, res) => void this.onRequest(req, res));
    s.on('upgrade', (req: http.IncomingMessage, socket: stream.Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    s.on('tlsClientError', (err) => this.o.log.debug({ err }, 'tls handshake failed'));
    this.server = s;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(this.o.port, this.o.address, () => resolve());
    });
    const port = (s.address() as AddressInfo).port;
    this.o.log.info({ address: this.o.address, port }, 'kubelet api listening');
    return port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private readonly lookupFound = (namespace: string, name: string): FoundPod | undefined => {
    const r = this.o.kubelet.pods().find((p) => p.pod.metadata?.namespace === namespace && p.pod.metadata?.name === name);
    return r ? { pod: r.pod, seen: this.o.kubelet.observed(r.pod.metadata?.uid ?? '') } : undefined;
  };

  /** Whether a container still runs, from the PLEG cache of its pod (relisted every second). */
  private isRunning(route: { namespace: string; pod: string }): (containerId: string) => Promise<boolean> {
    return async (id) => {
      const found = this.lookupFound(route.namespace, route.pod);
      return !!found?.seen.containers.some((c) => c.id === id && c.state === 'CONTAINER_RUNNING');
    };
  }

  private readonly lookup: PodLookup = (namespace, name) =>
    this.o.kubelet.pods().find((p) => p.pod.metadata?.namespace === namespace && p.pod.metadata?.name === name);

  /** Authentication + authorization; a refusal carries upstream's status and body. */
  private async admit(req: http.IncomingMessage, path: string, route: Route, upgrade: boolean): Promise<UserInfo | Refusal> {
    let user: UserInfo | undefined;
    try {
      user = await this.o.authenticator.authenticate(req);
    } catch (err) {
      this.o.log.warn({ err }, 'unable to authenticate the request due to an error');
    }
    if (!user) return { status: 401, message: 'Unauthorized' };
    const attrs = computeRequestAttributes({ user, method: req.method ?? 'GET', path, nodeName: this.o.nodeName, upgrade });
    if (route.kind === 'mounted') attrs.subresource = route.route.subresource;
    try {
      const d = await this.o.authorizer.authorize(attrs);
      if (!d.allowed) return { status: 403, message: forbiddenMessage(attrs) };
    } catch (err) {
      this.o.log.warn({ err, user: user.name, verb: attrs.verb, subresource: attrs.subresource }, 'authorization error');
      return { status: 500, message: authorizationErrorMessage(attrs) };
    }
    return user;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'https://localhost');
      const route = matchRoute(req.method ?? 'GET', url.pathname, this.o.routes ?? []);
      const admitted = await this.admit(req, url.pathname, route, false);
      if ('status' in admitted) return writeText(res, admitted.status, admitted.message);
      await this.serve(route, req, res, url);
    } catch (err) {
      this.o.log.warn({ err, path: req.url }, 'kubelet api request failed');
      if (!res.headersSent) writeText(res, 500, errorMessage(err));
      else res.destroy();
    }
  }

  private async serve(route: Route, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const k = this.o.kubelet;
    switch (route.kind) {
      case 'healthz':
        return writeHealthz(res, this.o.checks, url.searchParams.has('verbose'));
      case 'pods':
        return writeJson(res, 200, buildPodList(k));
      case 'runningpods':
        return writeJson(res, 200, buildRunningPodList(k.observedUids().map((uid) => k.observed(uid))));
      case 'spec':
        if (!this.o.machineInfo) return writeText(res, 404, '404 page not found\n');
        return writeJson(res, 200, buildMachineSpec(await this.o.machineInfo()));
      case 'configz':
        return writeJson(res, 200, this.o.configz?.() ?? {});
      case 'containerLogs':
        return serveContainerLogs({ lookup: this.lookup, runtime: this.o.runtime, isRunning: this.isRunning(route), log: this.o.log }, route, url, res);
      case 'logs':
        return serveNodeLogs(this.o.nodeLogDir ?? '/var/log', route.path, req, res);
      case 'run':
        return this.serveRun(route, url, res);
      case 'exec':
      case 'attach':
      case 'portForward': {
        const target = this.resolveStream(route, url);
        if ('status' in target) return writeText(res, target.status, target.message);
        if (!this.o.streaming) return writeText(res, 501, 'streaming is not available on this node');
        if (this.o.streaming.handleRequest) return this.o.streaming.handleRequest(req, res, target);
        return writeText(res, 400, 'Unable to upgrade: missing upgrade headers in request');
      }
      case 'mounted':
        return route.route.handle(req, res, url);
      case 'methodNotAllowed':
        return writeText(res, 405, '405: Method Not Allowed');
      case 'notFound':
        return writeText(res, 404, '404 page not found\n');
    }
  }

  /** POST /run/{ns}/{pod}[/{uid}]/{container}?cmd=…: combined output, 500 on a non-zero exit (upstream getRun). */
  private async serveRun(route: Extract<Route, { kind: 'run' }>, url: URL, res: http.ServerResponse): Promise<void> {
    const found = this.lookupFound(route.namespace, route.pod);
    const c = resolveContainer(found, route.uid, route.container);
    if (!c.ok) return writeText(res, c.status, c.message);
    const cmd = (url.searchParams.get('cmd') ?? '').split(' ');
    const r = await this.o.runtime.execSync(c.value, cmd, this.o.runTimeoutMs ?? 300_000).catch((err: unknown) => err as Error);
    if (r instanceof Error) return writeText(res, 500, r.message);
    if (r.exitCode !== 0) return writeText(res, 500, `command '${cmd.join(' ')}' exited with ${r.exitCode}: ${r.stderr}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(r.stdout + r.stderr);
  }

  private resolveStream(route: Extract<Route, { kind: 'exec' | 'attach' | 'portForward' }>, url: URL): StreamRequest | Refusal {
    const q = url.searchParams;
    if (route.kind === 'portForward') {
      const ports = parsePorts(q);
      if (!Array.isArray(ports)) return { status: 400, message: ports.error };
      const sb = resolveSandbox(this.lookupFound(route.namespace, route.pod), route.uid);
      if (!sb.ok) return { status: sb.status, message: sb.message };
      return { kind: 'portforward', sandboxId: sb.value.sandboxId, podUid: sb.value.podUid, ports };
    }
    const flags = computeStreamFlags(q);
    if ('error' in flags) return { status: 400, message: flags.error };
    const c = resolveContainer(this.lookupFound(route.namespace, route.pod), route.uid, route.container);
    if (!c.ok) return { status: c.status, message: c.message };
    if (route.kind === 'attach') return { kind: 'attach', containerId: c.value, ...flags };
    return { kind: 'exec', containerId: c.value, command: q.getAll('command'), ...flags };
  }

  private async onUpgrade(req: http.IncomingMessage, socket: stream.Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    try {
      const url = new URL(req.url ?? '/', 'https://localhost');
      const route = matchRoute(req.method ?? 'GET', url.pathname, this.o.routes ?? []);
      const admitted = await this.admit(req, url.pathname, route, true);
      if ('status' in admitted) return rejectUpgrade(socket, admitted.status, admitted.message);
      if (route.kind !== 'exec' && route.kind !== 'attach' && route.kind !== 'portForward')
        return rejectUpgrade(socket, route.kind === 'notFound' ? 404 : 400, route.kind === 'notFound' ? '404 page not found\n' : 'upgrade is not supported here');
      const target = this.resolveStream(route, url);
      if ('status' in target) return rejectUpgrade(socket, target.status, target.message);
      if (!this.o.streaming) return rejectUpgrade(socket, 501, 'streaming is not available on this node');
      this.o.streaming.handleUpgrade(req, socket, head, target);
    } catch (err) {
      this.o.log.warn({ err, path: req.url }, 'kubelet api upgrade failed');
      rejectUpgrade(socket, 500, errorMessage(err));
    }
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
function rejectUpgrade(socket: stream.Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`,
  );
}
