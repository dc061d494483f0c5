// Pins the container hash (the io.kubernetes.container.hash annotation berth stamps on every container and compares
// to decide SpecChanged restarts). If a refactor changes these values, every container on every node restarts on
// upgrade: change them only on purpose, with a migration story. Upstream: kubecontainer.HashContainer.
import { describe, expect, it } from 'vitest';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import { containerHash } from '../../src/kubelet/pod/pod-actions.ts';
import { applyPodDefaults } from '../../src/kubelet/pod/pod-spec.ts';

const minimal: Container = { name: 'app', image: 'berth-test/busybox:latest' };
const withDefaults: Container = {
  name: 'app',
  image: 'berth-test/busybox:latest',
  command: ['sh', '-c', 'sleep 3600'],
  args: [],
  imagePullPolicy: 'IfNotPresent',
  terminationMessagePath: '/dev/termination-log',
  terminationMessagePolicy: 'File',
};
const full: Container = {
  name: 'web',
  image: 'nginx:1.19',
  ports: [{ containerPort: 80, protocol: 'TCP', name: 'http' }],
  env: [
    { name: 'A', value: '1' },
    { name: 'B', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  ],
  resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '100m' } },
  volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }],
  livenessProbe: { httpGet: { path: '/', port: 80 }, periodSeconds: 10 },
  securityContext: { runAsUser: 1000 },
  workingDir: '/w',
  tty: false,
};

describe('container hash is pinned', () => {
  it.each([
    ['minimal container', minimal, 'dbd50ff2'],
    ['container with the defaulted fields spelled out', withDefaults, '42480007'],
    ['container with ports, env, resources, mounts, probe, security context', full, '34afbb4e'],
  ])('%s hashes to its pinned value', (_name, c, want) => {
    expect(containerHash(c)).toBe(want);
  });

  it('a manifest container after defaulting hashes to its pinned value', () => {
    const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'app', image: 'berth-test/busybox:latest', command: ['sleep', '3600'] }] } };
    expect(containerHash(applyPodDefaults(pod).spec!.containers[0]!)).toBe('1b9762c2');
  });

  it('key order and undefined fields do not change the hash', () => {
    const reordered = Object.fromEntries(Object.entries(full).reverse()) as Container;
    expect(containerHash(reordered)).toBe('34afbb4e');
    expect(containerHash({ ...minimal, workingDir: undefined, command: undefined })).toBe('dbd50ff2');
  });

  it('any change to the spec changes the hash', () => {
    expect(containerHash({ ...minimal, image: 'berth-test/busybox:1' })).not.toBe('dbd50ff2');
    expect(containerHash({ ...full, ports: [{ containerPort: 81, protocol: 'TCP', name: 'http' }] })).not.toBe('34afbb4e');
  });
});
