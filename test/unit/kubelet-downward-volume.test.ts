// Issue #12: downwardAPI volume items with resourceFieldRef (pkg/volume/downwardapi CollectData with
// ExtractResourceValueByContainerNameAndNodeAllocatable): limits/requests of the named container (app or init),
// divisors rounding up, unset limits from node allocatable — the same values as the env vars — in plain downwardAPI
// volumes and projected downwardAPI sources.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DownwardAPIVolumeFile, Pod } from 'kubernetes-types/core/v1';
import { downwardPayload } from '../../src/kubelet/volumes/downward-api.ts';
import { projectedPayload, setupPodVolumes, teardownPodVolumes } from '../../src/kubelet/volumes/index.ts';
import { makeEnvironment } from '../../src/kubelet/runtime/env.ts';

const ALLOC = { cpuMillis: 3500, memoryBytes: 8 * 1024 ** 3 };

const pod = (): Pod => ({
  metadata: { name: 'p', namespace: 'ns', uid: 'uid-dw' },
  spec: {
    initContainers: [{ name: 'init', image: 'i', resources: { limits: { cpu: '100m', memory: '32Mi' } } }],
    containers: [
      { name: 'app', image: 'i', resources: { limits: { cpu: '1500m', memory: '256Mi' }, requests: { cpu: '250m', memory: '64Mi' } } },
      { name: 'bare', image: 'i' },
    ],
  },
});

const item = (p: string, containerName: string, resource: string, divisor?: string, mode?: number): DownwardAPIVolumeFile => ({
  path: p,
  resourceFieldRef: { containerName, resource, ...(divisor !== undefined ? { divisor } : {}) },
  ...(mode !== undefined ? { mode } : {}),
});

const texts = (m: Map<string, { data: Buffer }>): Record<string, string> => Object.fromEntries([...m].map(([k, v]) => [k, v.data.toString('utf8')]));

describe('downwardPayload resourceFieldRef', () => {
  it('limits and requests with divisors, rounded up', () => {
    const m = downwardPayload(
      pod(),
      [
        item('cpu_limit', 'app', 'limits.cpu'),
        item('cpu_limit_m', 'app', 'limits.cpu', '1m'),
        item('cpu_request_m', 'app', 'requests.cpu', '1m'),
        item('cpu_request', 'app', 'requests.cpu'),
        item('mem_limit', 'app', 'limits.memory'),
        item('mem_limit_mi', 'app', 'limits.memory', '1Mi'),
        item('mem_request_mi', 'app', 'requests.memory', '1Mi'),
        item('mem_limit_g', 'app', 'limits.memory', '1G'),
      ],
      0o644,
      ALLOC,
    );
    expect(texts(m)).toEqual({
      cpu_limit: '2',
      cpu_limit_m: '1500',
      cpu_request_m: '250',
      cpu_request: '1',
      mem_limit: String(256 * 1024 * 1024),
      mem_limit_mi: '256',
      mem_request_mi: '64',
      mem_limit_g: '1',
    });
  });

  it('a container without limits gets node allocatable; without requests 0', () => {
    const m = downwardPayload(
      pod(),
      [item('cpu', 'bare', 'limits.cpu', '1m'), item('mem', 'bare', 'limits.memory', '1Mi'), item('req', 'bare', 'requests.memory'), item('cores', 'bare', 'limits.cpu')],
      0o644,
      ALLOC,
    );
    expect(texts(m)).toEqual({ cpu: '3500', mem: '8192', req: '0', cores: '4' });
  });

  it('an init container is found by name; item mode wins over defaultMode', () => {
    const m = downwardPayload(pod(), [item('init_cpu', 'init', 'limits.cpu', '1m', 0o400), item('x', 'app', 'limits.memory', '1Mi')], 0o640, ALLOC);
    expect(texts(m)).toEqual({ init_cpu: '100', x: '256' });
    expect(m.get('init_cpu')!.mode).toBe(0o400);
    expect(m.get('x')!.mode).toBe(0o640);
  });

  it('the values equal the env vars’ for the same references (one implementation)', async () => {
    const p = pod();
    const refs: [string, string, string | undefined][] = [
      ['app', 'limits.cpu', '1m'],
      ['bare', 'limits.memory', '1Mi'],
      ['app', 'requests.memory', undefined],
      ['bare', 'limits.cpu', undefined],
    ];
    const vol = downwardPayload(p, refs.map(([c, r, d], i) => item(`f${i}`, c, r, d)), 0o644, ALLOC);
    const envs = refs.map(([c, r, d], i) => ({ name: `F${i}`, valueFrom: { resourceFieldRef: { containerName: c, resource: r, ...(d ? { divisor: d } : {}) } } }));
    const container = { ...p.spec!.containers[0]!, env: envs };
    const env = await makeEnvironment({ pod: p, container, hostIP: '', podIP: '', nodeName: 'n', serviceEnv: {}, data: undefined, nodeAllocatable: ALLOC });
    expect(Object.fromEntries(env.map((e) => [e.key.replace('F', 'f'), e.value]))).toEqual(texts(vol));
  });

  it('an unknown container, an unsupported resource, or an unknown allocatable is an error', () => {
    expect(() => downwardPayload(pod(), [item('x', 'nope', 'limits.cpu')], 0o644, ALLOC)).toThrow('container nope not found');
    expect(() => downwardPayload(pod(), [item('x', 'app', 'limits.nvidia.com/gpu')], 0o644, ALLOC)).toThrow('unsupported container resource : limits.nvidia.com/gpu');
    expect(() => downwardPayload(pod(), [item('x', 'bare', 'limits.cpu')], 0o644)).toThrow('downwardAPI item "x": node allocatable is not known');
    // A set limit needs no allocatable.
    expect(texts(downwardPayload(pod(), [item('x', 'app', 'limits.cpu', '1m')], 0o644))).toEqual({ x: '1500' });
  });

  it('a projected downwardAPI source resolves resourceFieldRef with node allocatable too', async () => {
    const m = await projectedPayload(
      pod(),
      { sources: [{ downwardAPI: { items: [item('mem', 'bare', 'limits.memory', '1Gi'), { path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } }] },
      { nodeAllocatable: ALLOC },
    );
    expect(texts(m)).toEqual({ mem: '8', name: 'p' });
  });
});

describe('setupPodVolumes writes resourceFieldRef files', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dwv-'));
  });
  afterEach(async () => {
    await teardownPodVolumes(root, 'uid-dw').catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a downwardAPI volume holds the container’s limit and the allocatable fallback', async () => {
    const p = pod();
    p.spec!.volumes = [{ name: 'res', downwardAPI: { items: [item('app_cpu', 'app', 'limits.cpu', '1m'), item('bare_mem', 'bare', 'limits.memory', '1Mi')] } }];
    const vols = await setupPodVolumes(p, { rootDir: root, nodeAllocatable: ALLOC });
    expect(fs.readFileSync(path.join(vols.get('res')!, 'app_cpu'), 'utf8')).toBe('1500');
    expect(fs.readFileSync(path.join(vols.get('res')!, 'bare_mem'), 'utf8')).toBe('8192');
  });
});
