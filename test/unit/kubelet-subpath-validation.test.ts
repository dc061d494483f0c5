// Issue #11: subPath, subPathExpr and volume item paths validated as upstream's ValidatePod
// (validateVolumeMounts, validateLocalDescendingPath, validateKeyToPath), and the kubelet's own checks
// of an expanded subPathExpr (kubelet_pods.go makeMounts, ExpandContainerVolumeMounts).
import { describe, expect, it } from 'vitest';
import type { Pod, Volume, VolumeMount } from 'kubernetes-types/core/v1';
import { validatePod } from '../../src/kubelet/pod/pod-spec.ts';
import { checkSubPath, expandSubPathExpr, resolveMountSubPath, ContainerConfigError } from '../../src/kubelet/volumes/container-mounts.ts';
import { validatePayloadPath } from '../../src/kubelet/volumes/atomic-writer.ts';

const podWith = (mount: Partial<VolumeMount>, volumes: Volume[] = [{ name: 'v', emptyDir: {} }]): Pod =>
  ({
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'c', image: 'busybox:1', volumeMounts: [{ name: 'v', mountPath: '/v', ...mount }] }], volumes },
  }) as Pod;
const errsOf = (p: Pod): string[] => validatePod(p).map((e) => `${e.field}: ${e.detail}`);

describe('validatePod: subPath and subPathExpr (validateVolumeMounts)', () => {
  it.each([
    ['/etc', `spec.containers[0].volumeMounts.subPath: Invalid value: "/etc": must be a relative path`],
    ['..', `spec.containers[0].volumeMounts.subPath: Invalid value: "..": must not contain '..'`],
    ['../../../../etc', `spec.containers[0].volumeMounts.subPath: Invalid value: "../../../../etc": must not contain '..'`],
    ['a/../../b', `spec.containers[0].volumeMounts.subPath: Invalid value: "a/../../b": must not contain '..'`],
    ['a/b/..', `spec.containers[0].volumeMounts.subPath: Invalid value: "a/b/..": must not contain '..'`],
    ['a\0b', `spec.containers[0].volumeMounts.subPath: Invalid value: "a\\u0000b": must not contain a NUL byte`],
  ])('subPath %j is refused', (subPath, msg) => {
    expect(errsOf(podWith({ subPath }))).toEqual([msg]);
  });

  it('an absolute subPath with .. gets both of upstream’s errors', () => {
    expect(errsOf(podWith({ subPath: '/a/../b' }))).toEqual([
      `spec.containers[0].volumeMounts.subPath: Invalid value: "/a/../b": must be a relative path`,
      `spec.containers[0].volumeMounts.subPath: Invalid value: "/a/../b": must not contain '..'`,
    ]);
  });

  it.each(['...', 'a/...', '..a', 'a..', 'a/b.c/d', 'x/./y', 'data'])('subPath %j is accepted', (subPath) => {
    expect(errsOf(podWith({ subPath }))).toEqual([]);
  });

  it('subPathExpr: same rules, and mutually exclusive with subPath', () => {
    expect(errsOf(podWith({ subPathExpr: '$(POD)/../x' }))).toEqual([
      `spec.containers[0].volumeMounts.subPathExpr: Invalid value: "$(POD)/../x": must not contain '..'`,
    ]);
    expect(errsOf(podWith({ subPathExpr: '/$(POD)' }))).toEqual([`spec.containers[0].volumeMounts.subPathExpr: Invalid value: "/$(POD)": must be a relative path`]);
    expect(errsOf(podWith({ subPath: 'a', subPathExpr: '$(POD)' }))).toEqual([
      `spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive`,
    ]);
    expect(errsOf(podWith({ subPathExpr: '$(POD)' }))).toEqual([]);
  });

  it('a subPath of the wrong type is refused, not crashed on', () => {
    expect(errsOf(podWith({ subPath: 7 as unknown as string }))).toEqual([
      'spec.containers[0].volumeMounts[0].subPath: Invalid value: 7: must be of type string, got number',
    ]);
  });
});

describe('validatePod: volume item paths (validateKeyToPath, downwardAPI, projected)', () => {
  const vol = (v: Omit<Volume, 'name'>): Pod => podWith({}, [{ name: 'v', ...v } as Volume]);
  it.each([
    ['/abs', `Invalid value: "/abs": must be a relative path`],
    ['../x', `Invalid value: "../x": must not contain '..'`],
    ['a/../x', `Invalid value: "a/../x": must not contain '..'`],
    ['a/..', `Invalid value: "a/..": must not contain '..'`],
    ['..data', `Invalid value: "..data": must not start with '..'`],
    // Unlike subPath, an item may not start with '..' at all: `..data` and friends belong to the atomic writer.
    ['...', `Invalid value: "...": must not start with '..'`],
    ['a\0', `Invalid value: "a\\u0000": must not contain a NUL byte`],
  ])('item path %j', (p, detail) => {
    expect(errsOf(vol({ configMap: { name: 'cm', items: [{ key: 'k', path: p }] } }))).toEqual([`spec.volumes[0].configMap.items[0].path: ${detail}`]);
    expect(errsOf(vol({ secret: { secretName: 's', items: [{ key: 'k', path: p }] } }))).toEqual([`spec.volumes[0].secret.items[0].path: ${detail}`]);
    expect(errsOf(vol({ downwardAPI: { items: [{ path: p, fieldRef: { fieldPath: 'metadata.name' } }] } }))).toEqual([
      `spec.volumes[0].downwardAPI.items[0].path: ${detail}`,
    ]);
    expect(errsOf(vol({ projected: { sources: [{ secret: { name: 's', items: [{ key: 'k', path: p }] } }] } }))).toEqual([
      `spec.volumes[0].projected.sources[0].secret.items[0].path: ${detail}`,
    ]);
    expect(errsOf(vol({ projected: { sources: [{ serviceAccountToken: { path: p } }] } }))).toEqual([
      `spec.volumes[0].projected.sources[0].serviceAccountToken.path: ${detail}`,
    ]);
  });

  it('empty item path and key are required; modes above 0777 refused', () => {
    expect(errsOf(vol({ configMap: { name: 'cm', items: [{ key: '', path: '' }] } }))).toEqual([
      'spec.volumes[0].configMap.items[0].key: Required value',
      'spec.volumes[0].configMap.items[0].path: Required value',
    ]);
    expect(errsOf(vol({ secret: { secretName: 's', defaultMode: 0o1777, items: [{ key: 'k', path: 'p', mode: -1 }] } }))).toEqual([
      'spec.volumes[0].secret.items[0].mode: Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive',
      'spec.volumes[0].secret.defaultMode: Invalid value: 1023: must be a number between 0 and 0777 (octal), both inclusive',
    ]);
  });

  it.each(['a/...', 'a/..b', 'x.conf', 'dir/file'])('item path %j is accepted', (p) => {
    expect(errsOf(vol({ configMap: { name: 'cm', items: [{ key: 'k', path: p }] } }))).toEqual([]);
  });

  it('a volume name that is not a DNS label is refused (it names a directory on the node)', () => {
    const p = podWith({}, [{ name: '../x', emptyDir: {} }]);
    p.spec!.containers[0]!.volumeMounts = [];
    expect(errsOf(p)[0]).toMatch(/^spec\.volumes\[0\]\.name: Invalid value: "\.\.\/x": a lowercase RFC 1123 label/);
  });
});

describe('the kubelet’s checks of an expanded subPathExpr (makeMounts)', () => {
  const envs = new Map([
    ['POD', 'web-0'],
    ['UP', '..'],
    ['ABS', '/etc'],
    ['EMPTY', ''],
  ]);
  it.each([
    ['$(POD)', 'web-0'],
    ['logs/$(POD)', 'logs/web-0'],
    ['$$(POD)', '$(POD)'],
  ])('%j expands to %j', (expr, out) => {
    expect(resolveMountSubPath({ subPathExpr: expr }, envs)).toBe(out);
  });

  it.each([
    ['$(UP)', "unable to provision SubPath `..`: must not contain '..'"],
    ['$(UP)/x', "unable to provision SubPath `../x`: must not contain '..'"],
    ['a/$(UP)', "unable to provision SubPath `a/..`: must not contain '..'"],
    ['$(ABS)', 'error SubPath `/etc` must not be an absolute path'],
    ['$(NOPE)/$(EMPTY)', 'missing value for EMPTY, NOPE'],
  ])('%j fails with upstream’s message', (expr, msg) => {
    expect(() => resolveMountSubPath({ subPathExpr: expr }, envs)).toThrow(ContainerConfigError);
    expect(() => resolveMountSubPath({ subPathExpr: expr }, envs)).toThrow(msg);
  });

  it('checkSubPath accepts names that merely contain dots', () => {
    expect(checkSubPath('...')).toBeUndefined();
    expect(checkSubPath('a..b/c')).toBeUndefined();
    expect(expandSubPathExpr('x', new Map())).toBe('x');
  });
});

describe('atomic writer path check (atomic_writer.go validatePath)', () => {
  it.each([
    ['', 'invalid path: must not be empty: ""'],
    ['/etc/passwd', 'invalid path: must be relative path: /etc/passwd'],
    ['../x', "invalid path: must not contain '..': ../x"],
    ['a/../../x', "invalid path: must not contain '..': a/../../x"],
    ['..data/x', "invalid path: must not start with '..': ..data/x"],
    ['...', "invalid path: must not start with '..': ..."],
    ['a'.repeat(256), 'invalid path: filenames must be less than or equal to 255 characters'],
    ['x\0', 'invalid path: must not contain a NUL byte: "x\\u0000"'],
  ])('%j → %s', (p, msg) => {
    expect(validatePayloadPath(p)).toBe(msg);
  });
  it.each(['a', 'a/b', 'a/...', 'a/..b'])('%j is fine', (p) => {
    expect(validatePayloadPath(p)).toBeUndefined();
  });
});
