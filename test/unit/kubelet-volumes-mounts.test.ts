// Mounts handed to the runtime: secret/configMap/downwardAPI/projected always read-only (CVE-2017-1002102,
// kubelet_pods.go makeMounts), and a subPath is never joined lexically: only a prepared bind target is used.
import { describe, expect, it } from 'vitest';
import type { Container, Pod, Volume } from 'kubernetes-types/core/v1';
import { buildContainerConfig, type NodeFacts } from '../../src/kubelet/runtime/container-config.ts';

const NODE: NodeFacts = { nodeName: 'n', hostname: 'n', memoryCapacityBytes: 1 << 30, clusterDNS: [], clusterDomain: 'cluster.local', rootDir: '/r', podLogsDir: '/l' };
const build = (c: Container, volumes: Volume[], subPaths?: Map<number, string>) => {
  const pod: Pod = { metadata: { name: 'p', namespace: 'ns', uid: 'u' }, spec: { containers: [c], volumes } };
  return buildContainerConfig({
    pod,
    start: { spec: c, kind: 'app', restartCount: 0 },
    envs: [],
    volumes: new Map(volumes.map((v) => [v.name, `/r/pods/u/volumes/${v.name}`])),
    subPaths,
    node: NODE,
  });
};

describe('container mounts', () => {
  it('secret, configMap, downwardAPI and projected volumes are read-only even when the mount asks for rw', () => {
    const c: Container = {
      name: 'c',
      image: 'i',
      volumeMounts: ['s', 'cm', 'd', 'p', 'e'].map((n) => ({ name: n, mountPath: `/${n}`, readOnly: false })),
    };
    const cfg = build(c, [
      { name: 's', secret: { secretName: 's' } },
      { name: 'cm', configMap: { name: 'cm' } },
      { name: 'd', downwardAPI: { items: [] } },
      { name: 'p', projected: { sources: [] } },
      { name: 'e', emptyDir: {} },
    ]);
    expect(cfg.mounts.map((m) => [m.containerPath, m.readonly])).toEqual([
      ['/s', true],
      ['/cm', true],
      ['/d', true],
      ['/p', true],
      ['/e', false],
    ]);
  });

  it('a subPath or subPathExpr mount without a prepared target is an error, never a joined path', () => {
    for (const m of [{ subPath: '../../etc' }, { subPathExpr: '$(X)' }]) {
      const c: Container = { name: 'c', image: 'i', volumeMounts: [{ name: 'e', mountPath: '/e', ...m }] };
      expect(() => build(c, [{ name: 'e', emptyDir: {} }])).toThrow('subPath of volumeMount "e" of container "c" was not prepared');
    }
    const c: Container = { name: 'c', image: 'i', volumeMounts: [{ name: 'e', mountPath: '/e', subPath: 'a' }] };
    expect(build(c, [{ name: 'e', emptyDir: {} }], new Map([[0, '/r/pods/u/volume-subpaths/e/c/0']])).mounts[0]?.hostPath).toBe('/r/pods/u/volume-subpaths/e/c/0');
  });
});
