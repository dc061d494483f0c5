// projected volumes (pkg/volume/projected/projected.go collectData): secret, configMap, downwardAPI and
// serviceAccountToken sources merged into one payload, written by the atomic writer on tmpfs. Errors of
// every source are collected (utilerrors.NewAggregate) and reported together.
import type { Pod, ProjectedVolumeSource } from 'kubernetes-types/core/v1';
import type { ConfigDataSource, ConfigValue, NodeAllocatable } from '../runtime/env.ts';
import type { FileProjection } from './atomic-writer.ts';
import { downwardPayload } from './downward-api.ts';
import { configPayload } from './config-payload.ts';
import { fsGroupOf } from '../pod/security-context.ts';

/** SetDefaults_ProjectedVolumeSource / SetDefaults_ServiceAccountTokenProjection. */
export const PROJECTED_DEFAULT_MODE = 0o644;
export const TOKEN_DEFAULT_EXPIRATION_SECONDS = 3600;

/**
 * Issues service-account tokens for pods (the TokenRequest API with the pod as bound object; the
 * implementation caches and refreshes them). Declared here, on the consumer's side.
 * getToken resolves to the token text; it rejects when no token can be had (the message is shown in the
 * FailedMount Event after "failed to fetch token: "). Called on every volume sync of a pod that uses a
 * serviceAccountToken source, so it must answer from its cache when the token is still fresh.
 */
export interface TokenSource {
  getToken(pod: Pod, opts: { serviceAccountName: string; audience?: string; expirationSeconds: number }): Promise<string>;
}

export interface ProjectionDeps {
  data?: ConfigDataSource;
  tokens?: TokenSource;
  nodeAllocatable?: NodeAllocatable;
}

const isNotFound = (err: unknown): boolean => (err as { code?: string } | undefined)?.code === 'NotFound';
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Aggregate error text as utilerrors.NewAggregate prints it. */
export function aggregateMessage(msgs: string[]): string {
  return msgs.length === 1 ? msgs[0]! : `[${msgs.join(', ')}]`;
}

/** The payload of one projected volume; throws Error with the aggregated source errors. */
export async function projectedPayload(pod: Pod, src: ProjectedVolumeSource, deps: ProjectionDeps): Promise<Map<string, FileProjection>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const uid = pod.metadata?.uid;
  const defaultMode = src.defaultMode ?? PROJECTED_DEFAULT_MODE;
  const payload = new Map<string, FileProjection>();
  const errs: string[] = [];
  const merge = (m: Map<string, FileProjection>): void => {
    for (const [k, v] of m) payload.set(k, v);
  };
  for (const s of src.sources ?? []) {
    try {
      if (s.secret || s.configMap) {
        const isCM = !!s.configMap;
        const ref = (s.configMap ?? s.secret)!;
        const optional = ref.optional ?? false;
        let data: Record<string, ConfigValue> = {};
        try {
          if (!deps.data) throw new Error('no API server configured');
          data = await (isCM ? deps.data.configMap(ns, ref.name ?? '', uid) : deps.data.secret(ns, ref.name ?? '', uid));
        } catch (err) {
          if (!(optional && (isNotFound(err) || !deps.data))) throw new Error(`${isCM ? 'configmap' : 'secret'} "${ref.name ?? ''}" not found`, { cause: err });
        }
        merge(configPayload(isCM ? 'configmap' : 'secret', data, ref.items, defaultMode, optional));
      } else if (s.downwardAPI) {
        merge(downwardPayload(pod, s.downwardAPI.items ?? [], defaultMode, deps.nodeAllocatable));
      } else if (s.serviceAccountToken) {
        const tp = s.serviceAccountToken;
        if (!deps.tokens) throw new Error('failed to fetch token: no token source (berth runs without an API server)');
        let token: string;
        try {
          token = await deps.tokens.getToken(pod, {
            serviceAccountName: pod.spec?.serviceAccountName || 'default',
            audience: tp.audience || undefined,
            expirationSeconds: tp.expirationSeconds ?? TOKEN_DEFAULT_EXPIRATION_SECONDS,
          });
        } catch (err) {
          throw new Error(`failed to fetch token: ${messageOf(err)}`, { cause: err });
        }
        // projected.go: with an fsGroup the token is 0600 and SetVolumeOwnership makes it 0640 (group-readable only).
        const tokenMode = typeof fsGroupOf(pod) === 'number' ? 0o600 : defaultMode;
        payload.set(tp.path, { data: Buffer.from(token, 'utf8'), mode: tokenMode });
      }
    } catch (err) {
      errs.push(messageOf(err));
    }
  }
  if (errs.length > 0) throw new Error(aggregateMessage(errs));
  return payload;
}
