// The subPath half of upstream's makeMounts (pkg/kubelet/kubelet_pods.go): expand subPathExpr from the
// container's environment (kubecontainer.ExpandContainerVolumeMounts), check the result as upstream does,
// create a missing subPath directory inside the volume and bind the safely opened target. Failures carry
// upstream's user-facing message; the detail (host paths) goes to the log only, as upstream.
import type { Container } from 'kubernetes-types/core/v1';
import { expand } from '../runtime/env.ts';
import type { Logger } from '../../lib/index.ts';
import { prepareSubPath } from './subpath.ts';

/** The container cannot be configured: CreateContainerConfigError with this message. */
export class ContainerConfigError extends Error {
  readonly code = 'CreateContainerConfigError';
}

/** ExpandContainerVolumeMounts: `$(VAR)` from the env; a missing or empty variable is an error. */
export function expandSubPathExpr(expr: string, envs: ReadonlyMap<string, string>): string {
  const missing = new Set<string>();
  const out = expand(expr, (name) => {
    const v = envs.get(name);
    if (!v) missing.add(name);
    return v ?? '';
  });
  if (missing.size > 0) throw new ContainerConfigError(`missing value for ${[...missing].sort().join(', ')}`);
  return out;
}

/** The kubelet's own check of a (possibly expanded) subPath; undefined when it is acceptable. */
export function checkSubPath(subPath: string): string | undefined {
  if (subPath.startsWith('/')) return `error SubPath \`${subPath}\` must not be an absolute path`;
  if (subPath.split('/').includes('..')) return `unable to provision SubPath \`${subPath}\`: must not contain '..'`;
  if (subPath.includes('\0')) return `unable to provision SubPath \`${subPath.replace(/\0/g, '\\x00')}\`: must not contain a NUL byte`;
  return undefined;
}

/** The subPath a mount uses after expansion ('' = none). Throws ContainerConfigError. */
export function resolveMountSubPath(m: { subPath?: string; subPathExpr?: string }, envs: ReadonlyMap<string, string>): string {
  let sub = m.subPath ?? '';
  if (m.subPathExpr) sub = expandSubPathExpr(m.subPathExpr, envs);
  if (!sub) return '';
  const bad = checkSubPath(sub);
  if (bad) throw new ContainerConfigError(bad);
  return sub;
}

export interface ContainerMountsInput {
  container: Container;
  /** Volume name → host path (setupPodVolumes). */
  volumes: ReadonlyMap<string, string>;
  podDir: string;
  envs: { key: string; value: string }[];
  log: Logger;
}

/**
 * Prepares every subPath/subPathExpr mount of the container; returns volumeMounts index → berth-owned
 * bind target to hand to the runtime. Throws ContainerConfigError with upstream's message.
 */
export async function prepareContainerSubPaths(input: ContainerMountsInput): Promise<Map<number, string>> {
  const envs = new Map(input.envs.map((e) => [e.key, e.value]));
  const out = new Map<number, string>();
  const mounts = input.container.volumeMounts ?? [];
  for (let i = 0; i < mounts.length; i++) {
    const m = mounts[i]!;
    const volumePath = input.volumes.get(m.name);
    if (!volumePath) continue;
    const sub = resolveMountSubPath(m, envs);
    if (!sub) continue;
    try {
      out.set(i, await prepareSubPath({ podDir: input.podDir, volumeName: m.name, volumePath, containerName: input.container.name, index: i, subPath: sub }));
    } catch (err) {
      // Don't pass the detail back to the user: it could give information about the host's file system.
      input.log.warn({ err, volume: m.name, container: input.container.name }, 'failed to prepare subPath');
      throw new ContainerConfigError(`failed to prepare subPath for volumeMount "${m.name}" of container "${input.container.name}"`, { cause: err });
    }
  }
  return out;
}
