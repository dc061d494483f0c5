// Authorization of kubelet API requests: the request attributes of upstream's nodeAuthorizerAttributesGetter
// (pkg/kubelet/server/auth.go) — verb from the HTTP method, resource `nodes`, name = this node, subresource from the
// path (stats, metrics, log, spec, checkpoint; proxy for everything else) — checked with a SubjectAccessReview
// (authorization.k8s.io/v1, allowed answers cached 5 min, denied ones 30 s), or AlwaysAllow.
import type { KubeApi } from '../../kube/index.ts';
import { TtlCache, type UserInfo } from './auth.ts';

export interface RequestAttributes {
  user: UserInfo;
  verb: string;
  resource: 'nodes';
  subresource: string;
  name: string;
  apiVersion: 'v1';
  path: string;
}

export interface Decision {
  allowed: boolean;
  reason?: string;
}

export interface Authorizer {
  /** Whether the user may do this. Rejects when the decision could not be made (the server answers 500). */
  authorize(a: RequestAttributes): Promise<Decision>;
}

/** True when `path` is `prefix` or lies under it (upstream's isSubpath). */
export function isSubpath(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/$/, '');
  return path === p || (path.startsWith(p) && path[p.length] === '/');
}

const STREAMING = ['/exec/', '/attach/', '/portForward/', '/run/'];

/** Pure: upstream's GetRequestAttributes for one request. */
export function computeRequestAttributes(input: { user: UserInfo; method: string; path: string; nodeName: string; upgrade?: boolean }): RequestAttributes {
  const verbs: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  let verb = verbs[input.method.toUpperCase()] ?? '';
  // A WebSocket exec/attach/port-forward arrives as a GET upgrade; it creates a session as the SPDY POST does, so it
  // needs `create` as well (the check upstream added with AuthorizePodWebsocketUpgradeCreatePermission).
  if (input.upgrade && verb === 'get' && STREAMING.some((s) => isSubpath(input.path, s))) verb = 'create';
  const p = input.path;
  let subresource = 'proxy';
  if (isSubpath(p, '/stats/')) subresource = 'stats';
  else if (isSubpath(p, '/metrics')) subresource = 'metrics';
  else if (isSubpath(p, '/logs/')) subresource = 'log';
  else if (isSubpath(p, '/spec/')) subresource = 'spec';
  else if (isSubpath(p, '/checkpoint/')) subresource = 'checkpoint';
  return { user: input.user, verb, resource: 'nodes', subresource, name: input.nodeName, apiVersion: 'v1', path: p };
}

/** The 403 body upstream writes (pkg/kubelet/server/server.go InstallAuthFilter). */
export function forbiddenMessage(a: RequestAttributes): string {
  return `Forbidden (user=${a.user.name}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})`;
}

export function authorizationErrorMessage(a: RequestAttributes): string {
  return `Authorization error (user=${a.user.name}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})`;
}

export const alwaysAllow: Authorizer = { authorize: async () => ({ allowed: true }) };

export type SubjectAccessReviewApi = Pick<KubeApi, 'request'>;

/** Pure: the SubjectAccessReview body for a request. */
export function buildSubjectAccessReview(a: RequestAttributes): Record<string, unknown> {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      resourceAttributes: { namespace: '', verb: a.verb, group: '', version: a.apiVersion, resource: a.resource, subresource: a.subresource, name: a.name },
      user: a.user.name,
      ...(a.user.uid ? { uid: a.user.uid } : {}),
      groups: a.user.groups,
      ...(a.user.extra ? { extra: a.user.extra } : {}),
    },
  };
}

/** The Webhook mode (k8s.io/apiserver's webhook authorizer with its decision cache). */
export class WebhookAuthorizer implements Authorizer {
  private readonly cache: TtlCache<Decision>;
  private readonly o: { api: SubjectAccessReviewApi; allowedTtlMs: number; deniedTtlMs: number; now?: () => number };
  constructor(o: { api: SubjectAccessReviewApi; allowedTtlMs: number; deniedTtlMs: number; now?: () => number }) {
    this.o = o;
    this.cache = new TtlCache<Decision>(4096, o.now);
  }

  async authorize(a: RequestAttributes): Promise<Decision> {
    const body = buildSubjectAccessReview(a);
    const key = JSON.stringify(body.spec);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const res = await this.o.api.request<{ status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      body,
    });
    const d: Decision = { allowed: res?.status?.allowed === true && res.status.denied !== true, reason: res?.status?.reason };
    this.cache.set(key, d, d.allowed ? this.o.allowedTtlMs : this.o.deniedTtlMs);
    return d;
  }
}
