// The kubelet's HTTP servers. local-server.ts: healthz (10248) and the read-only API (10255) on loopback, for
// `berth pods`. secure-server.ts: the node's API on --address:--port (10250) over HTTPS with the kubelet's
// authentication and authorization (auth.ts, authz.ts), its endpoints (handlers.ts, logs.ts, node-logs.ts), the
// routes other rooms mount (routes.ts: stats, metrics) and the hand-off of exec/attach/port-forward to the
// streaming protocols (streaming.ts). tls.ts provides its serving certificate. startKubeletApi decides whether the
// secure port may be served at all and wires the pieces.
import os from 'node:os';
import { readFile } from 'node:fs/promises';
import type { KubeApi } from '../../kube/index.ts';
import type { Kubelet } from '../kubelet.ts';
import { buildAuthenticator, WebhookTokenAuthenticator } from './auth.ts';
import { alwaysAllow, WebhookAuthorizer } from './authz.ts';
import { KubeletApiServer, type ApiRuntime, type SecureServerOptions } from './secure-server.ts';
import { loadServingCert } from './tls.ts';

export { KubeletServer, type ServerOptions } from './local-server.ts';
export { KubeletApiServer, type SecureServerOptions, type ApiRuntime } from './secure-server.ts';
export type { HealthCheck, KubeletView, MachineFacts } from './handlers.ts';
export type { HttpRoute } from './routes.ts';
export type { StreamRequest, StreamServer } from './streaming.ts';
export type { Authenticator, UserInfo } from './auth.ts';
export type { Authorizer, RequestAttributes } from './authz.ts';

export interface ApiAuthSettings {
  port: number;
  /** Cluster mode (an API server for TokenReview / SubjectAccessReview). */
  hasApiServer: boolean;
  /** A client CA is available (--client-ca-file, or the kubeconfig's CA in cluster mode). */
  hasClientCA: boolean;
  anonymousAuth: boolean;
  authenticationTokenWebhook?: boolean;
  authorizationMode?: string;
}

export type ApiServingPlan =
  | { serve: false; reason: string }
  | { serve: true; x509: boolean; tokenWebhook: boolean; anonymous: boolean; authorization: 'Webhook' | 'AlwaysAllow' };

/**
 * Pure: whether the secure port may be served, and with which authenticators. It is never served without a way to
 * authenticate, nor with anonymous access and AlwaysAllow together (that would be an open node API).
 */
export function computeApiServingPlan(s: ApiAuthSettings): ApiServingPlan {
  if (s.port <= 0) return { serve: false, reason: '--port is 0' };
  const tokenWebhook = (s.authenticationTokenWebhook ?? s.hasApiServer) && s.hasApiServer;
  const authorization = (s.authorizationMode ?? (s.hasApiServer ? 'Webhook' : 'AlwaysAllow')) as 'Webhook' | 'AlwaysAllow';
  if (authorization === 'Webhook' && !s.hasApiServer) return { serve: false, reason: 'authorization mode Webhook needs an API server (--kubeconfig)' };
  if (!s.hasClientCA && !tokenWebhook && !s.anonymousAuth)
    return { serve: false, reason: 'no way to authenticate clients: give --client-ca-file (or --kubeconfig for TokenReview)' };
  if (s.anonymousAuth && authorization === 'AlwaysAllow')
    return { serve: false, reason: '--anonymous-auth with authorization mode AlwaysAllow would open the node API to anyone' };
  return { serve: true, x509: s.hasClientCA, tokenWebhook, anonymous: s.anonymousAuth, authorization };
}

/** What the secure server takes as it is (passed through unchanged). */
type PassedThrough = Pick<SecureServerOptions, 'address' | 'port' | 'nodeName' | 'runtime' | 'checks' | 'machineInfo' | 'configz' | 'routes' | 'streaming' | 'nodeLogDir' | 'log'>;

export interface StartKubeletApiOptions extends PassedThrough {
  hostIPs: string[];
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  certDir: string;
  clientCAFile?: string;
  /** The cluster CA from the kubeconfig: the client CA when --client-ca-file is not given. */
  fallbackClientCA?: Buffer;
  anonymousAuth: boolean;
  authenticationTokenWebhook?: boolean;
  authenticationTokenWebhookCacheTtlMs: number;
  authorizationMode?: string;
  authorizationWebhookCacheAuthorizedTtlMs: number;
  authorizationWebhookCacheUnauthorizedTtlMs: number;
  api?: Pick<KubeApi, 'request'>;
  kubelet: Pick<Kubelet, 'pods' | 'pleg'>;
}

/** Starts the secure kubelet API when the plan allows it; resolves undefined (after logging why) when it is off. */
export async function startKubeletApi(o: StartKubeletApiOptions): Promise<KubeletApiServer | undefined> {
  const clientCA = o.clientCAFile ? await readFile(o.clientCAFile, 'utf8') : o.fallbackClientCA?.toString('utf8');
  const plan = computeApiServingPlan({
    port: o.port,
    hasApiServer: !!o.api,
    hasClientCA: !!clientCA,
    anonymousAuth: o.anonymousAuth,
    authenticationTokenWebhook: o.authenticationTokenWebhook,
    authorizationMode: o.authorizationMode,
  });
  if (!plan.serve) {
    o.log.info({ reason: plan.reason }, 'kubelet api (secure port) off');
    return undefined;
  }
  const cert = await loadServingCert({ certFile: o.tlsCertFile, keyFile: o.tlsPrivateKeyFile, certDir: o.certDir, hostname: os.hostname(), ips: o.hostIPs });
  if (cert.generated) o.log.info({ certFile: cert.certFile }, 'generated a self-signed serving certificate');
  const server = new KubeletApiServer({
    address: o.address,
    port: o.port,
    nodeName: o.nodeName,
    tls: { cert: cert.cert, key: cert.key },
    clientCA: plan.x509 ? clientCA : undefined,
    authenticator: buildAuthenticator({
      x509: plan.x509,
      tokens: plan.tokenWebhook && o.api ? new WebhookTokenAuthenticator({ api: o.api, cacheTtlMs: o.authenticationTokenWebhookCacheTtlMs }) : undefined,
      anonymous: plan.anonymous,
    }),
    authorizer:
      plan.authorization === 'Webhook' && o.api
        ? new WebhookAuthorizer({ api: o.api, allowedTtlMs: o.authorizationWebhookCacheAuthorizedTtlMs, deniedTtlMs: o.authorizationWebhookCacheUnauthorizedTtlMs })
        : alwaysAllow,
    kubelet: { pods: () => o.kubelet.pods(), observed: (uid) => o.kubelet.pleg.get(uid), observedUids: () => o.kubelet.pleg.uids() },
    runtime: o.runtime,
    checks: o.checks,
    machineInfo: o.machineInfo,
    configz: o.configz,
    routes: o.routes,
    streaming: o.streaming,
    nodeLogDir: o.nodeLogDir,
    log: o.log,
  });
  await server.start();
  o.log.info(
    { x509: plan.x509, clientCA: o.clientCAFile ?? (plan.x509 ? 'kubeconfig' : undefined), tokenWebhook: plan.tokenWebhook, anonymous: plan.anonymous, authorization: plan.authorization },
    'kubelet api authentication and authorization',
  );
  return server;
}
