// The kubelet API's routes (pkg/kubelet/server/server.go InstallDefaultHandlers / InstallDebuggingHandlers),
// matched purely from method and path. Mounted routes (stats and metrics from the stats room) are matched by the
// longest prefix. Path segments are URL-decoded, as go-restful's path parameters are.
import type http from 'node:http';

/**
 * A route another room mounts on the kubelet API (e.g. /stats/summary, /metrics/cadvisor). It is served behind the
 * same authentication and authorization; `subresource` is what the authorizer checks (stats, metrics…).
 * `handle` writes the whole response; a rejection becomes a 500.
 */
export interface HttpRoute {
  prefix: string;
  subresource: string;
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void | Promise<void>;
}

export type StreamKind = 'exec' | 'attach' | 'portForward' | 'run';

export type Route =
  | { kind: 'healthz' | 'pods' | 'runningpods' | 'spec' | 'configz' }
  | { kind: 'containerLogs'; namespace: string; pod: string; container: string }
  | { kind: 'logs'; path: string }
  | { kind: 'exec'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'attach'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'run'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string; uid?: string }
  | { kind: 'mounted'; route: HttpRoute }
  | { kind: 'notFound' }
  | { kind: 'methodNotAllowed' };

function segments(rest: string): string[] | undefined {
  try {
    return rest.split('/').filter((s, i, all) => s !== '' || i < all.length - 1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Pure: method + path → route. */
export function matchRoute(method: string, pathname: string, mounted: readonly HttpRoute[] = []): Route {
  const m = method.toUpperCase();
  const get = m === 'GET' || m === 'HEAD';
  const only = (ok: boolean, r: Route): Route => (ok ? r : { kind: 'methodNotAllowed' });
  if (pathname === '/healthz') return only(get, { kind: 'healthz' });
  if (pathname === '/pods' || pathname === '/pods/') return only(get, { kind: 'pods' });
  if (pathname === '/runningpods/') return only(get, { kind: 'runningpods' });
  if (pathname === '/spec/' || pathname === '/spec') return only(get, { kind: 'spec' });
  if (pathname === '/configz') return only(get, { kind: 'configz' });
  if (pathname === '/logs' || pathname.startsWith('/logs/')) return only(get, { kind: 'logs', path: pathname.slice('/logs'.length) });
  const [, head, ...restParts] = pathname.split('/');
  const rest = segments(restParts.join('/'));
  if (rest) {
    if (head === 'containerLogs' && rest.length === 3) return only(get, { kind: 'containerLogs', namespace: rest[0]!, pod: rest[1]!, container: rest[2]! });
    if (head === 'exec' || head === 'attach' || head === 'run') {
      const ok = head === 'run' ? m === 'POST' : m === 'POST' || m === 'GET';
      if (rest.length === 3) return only(ok, { kind: head, namespace: rest[0]!, pod: rest[1]!, container: rest[2]! });
      if (rest.length === 4) return only(ok, { kind: head, namespace: rest[0]!, pod: rest[1]!, uid: rest[2]!, container: rest[3]! });
    }
    if (head === 'portForward') {
      const ok = m === 'POST' || m === 'GET';
      if (rest.length === 2) return only(ok, { kind: 'portForward', namespace: rest[0]!, pod: rest[1]! });
      if (rest.length === 3) return only(ok, { kind: 'portForward', namespace: rest[0]!, pod: rest[1]!, uid: rest[2]! });
    }
  }
  let best: HttpRoute | undefined;
  for (const r of mounted) {
    const p = r.prefix.replace(/\/$/, '');
    const hit = pathname === p || pathname === `${p}/` || pathname.startsWith(`${p}/`);
    if (hit && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  if (best) return { kind: 'mounted', route: best };
  return { kind: 'notFound' };
}

/** Pure: exec/attach stream flags from the query (remotecommand NewOptions: "1" means on; tty turns stderr off). */
export function computeStreamFlags(q: URLSearchParams): { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean } | { error: string } {
  // The kubelet's names are core/v1 ExecStdinParam etc.: input, output, error, tty (what the API server sends);
  // stdin/stdout/stderr (kubectl's names towards the API server) are accepted too.
  const on = (...ks: string[]): boolean => ks.some((k) => q.get(k) === '1' || q.get(k) === 'true');
  const tty = on('tty');
  const flags = { stdin: on('input', 'stdin'), stdout: on('output', 'stdout'), stderr: on('error', 'stderr') && !tty, tty };
  if (!flags.stdin && !flags.stdout && !flags.stderr) return { error: 'you must specify at least 1 of stdin, stdout, stderr' };
  return flags;
}

/** Pure: the `ports` query of a WebSocket port-forward (portforward.NewV4Options); SPDY sends ports per stream. */
export function parsePorts(q: URLSearchParams): number[] | { error: string } {
  const out: number[] = [];
  for (const raw of q.getAll('ports').flatMap((v) => v.split(','))) {
    const s = raw.trim();
    if (!s) continue;
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 65535) return { error: `unable to parse "${s}" as a port: invalid port` };
    out.push(n);
  }
  return out;
}
