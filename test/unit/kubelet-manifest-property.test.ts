// Property tests for the manifest parser and pod validation/defaulting (issue #9 campaign item 8): berth never throws
// on arbitrary input, every rejected document gets an InvalidManifest error naming it, every accepted pod is valid,
// defaulting is idempotent, and a known defect in an otherwise valid pod is always reported on its field.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import { parseManifest } from '../../src/kubelet/sources/manifest-source.ts';
import { applyPodDefaults, validatePod } from '../../src/kubelet/pod/pod-spec.ts';

const RUNS = { numRuns: 150 };
const NODE = 'node-a';

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?$/);
const image = fc.stringMatching(/^[a-z0-9]+(\/[a-z0-9]+)?(:[a-z0-9.]{1,8})?$/);
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/);
const probe = fc.oneof(
  fc.record({ exec: fc.record({ command: fc.array(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 3 }) }) }),
  fc.record({ httpGet: fc.record({ port: fc.integer({ min: 1, max: 65535 }), path: fc.constantFrom('/', '/healthz') }) }),
  fc.record({ tcpSocket: fc.record({ port: fc.integer({ min: 1, max: 65535 }) }) }),
).chain((h) => fc.record({ periodSeconds: fc.integer({ min: 1, max: 60 }) }, { requiredKeys: [] }).map((t) => ({ ...h, ...t })));

/** A valid pod: unique container names, in-range ports, valid env names, one handler per probe, mounts of declared volumes. */
const validPod: fc.Arbitrary<Pod> = fc
  .record({
    name: label,
    namespace: fc.option(label, { nil: undefined }),
    names: fc.uniqueArray(label, { minLength: 1, maxLength: 3 }),
    volumes: fc.uniqueArray(label, { maxLength: 2 }),
    restartPolicy: fc.option(fc.constantFrom('Always', 'OnFailure', 'Never'), { nil: undefined }),
    hostNetwork: fc.option(fc.boolean(), { nil: undefined }),
  })
  .chain(({ name, namespace, names, volumes, restartPolicy, hostNetwork }) =>
    fc
      .tuple(
        ...names.map((n) =>
          fc.record(
            {
              name: fc.constant(n),
              image,
              command: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
              ports: fc.array(fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom('TCP', 'UDP') }), { maxLength: 2 }),
              env: fc.array(fc.record({ name: envName, value: fc.string({ maxLength: 8 }) }), { maxLength: 3 }),
              livenessProbe: probe,
              volumeMounts: fc.subarray(volumes).map((vs) => vs.map((v) => ({ name: v, mountPath: `/mnt/${v}` }))),
            },
            { requiredKeys: ['name', 'image'] },
          ),
        ),
      )
      .map((containers) => {
        const spec: Pod['spec'] = { containers: containers as Container[] };
        if (restartPolicy) spec.restartPolicy = restartPolicy;
        if (hostNetwork !== undefined) spec.hostNetwork = hostNetwork;
        if (volumes.length) spec.volumes = volumes.map((v) => ({ name: v, emptyDir: {} }));
        return { apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(namespace ? { namespace } : {}) }, spec } satisfies Pod;
      }),
  );

/** A defect and the field its error must name (upstream field paths). */
const defects: fc.Arbitrary<[string, (p: Pod) => void]> = fc.constantFrom<[string, (p: Pod) => void]>(
  ['metadata.name', (p) => (p.metadata!.name = 'Bad_Name')],
  ['metadata.name', (p) => delete p.metadata!.name],
  ['metadata.namespace', (p) => (p.metadata!.namespace = 'no/slash')],
  ['spec.containers', (p) => (p.spec!.containers = [])],
  ['spec.containers[0].image', (p) => delete (p.spec!.containers[0] as Partial<Container>).image],
  ['spec.containers[0].image', (p) => (p.spec!.containers[0]!.image = ' padded ')],
  ['spec.containers[0].name', (p) => (p.spec!.containers[0]!.name = 'UPPER')],
  ['spec.containers[', (p) => p.spec!.containers.push({ ...p.spec!.containers[0]! })],
  ['spec.restartPolicy', (p) => (p.spec!.restartPolicy = 'Sometimes')],
  ['spec.terminationGracePeriodSeconds', (p) => (p.spec!.terminationGracePeriodSeconds = -1)],
  ['spec.containers[0].ports', (p) => (p.spec!.containers[0]!.ports = [{ containerPort: 70000 }])],
  ['spec.containers[0].ports', (p) => (p.spec!.containers[0]!.ports = [{ containerPort: 0 }])],
  ['spec.containers[0].livenessProbe', (p) => (p.spec!.containers[0]!.livenessProbe = {})],
  ['spec.containers[0].command', (p) => ((p.spec!.containers[0] as unknown as Record<string, unknown>).command = 'sh -c x')],
  ['spec.containers[0].volumeMounts', (p) => (p.spec!.containers[0]!.volumeMounts = [{ name: 'undeclared-volume', mountPath: '/x' }])],
  ['spec.volumes[0]', (p) => (p.spec!.volumes = [{ name: 'v', configMap: { name: 'cm', items: [{ key: 'k', path: '../escape' }] } }])],
  ['spec.hostNetwork', (p) => ((p.spec as unknown as Record<string, unknown>).hostNetwork = 'yes')],
);

describe('validatePod and applyPodDefaults (properties)', () => {
  // BigInt is left out: no YAML/JSON parse yields one, and the error messages JSON-quote values.
  it('validatePod never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4, withNullPrototype: true }), (x) => {
        expect(Array.isArray(validatePod(x))).toBe(true);
      }),
      RUNS,
    );
  });

  it('a value that is not an object (null, number, string, boolean, array) gets a field error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(null), fc.double(), fc.string(), fc.boolean(), fc.array(fc.anything({ maxDepth: 1 }))), (x) => {
        expect(validatePod(x).length).toBeGreaterThan(0);
      }),
      RUNS,
    );
  });

  it('generated valid pods validate clean, before and after defaulting', () => {
    fc.assert(
      fc.property(validPod, (p) => {
        expect(validatePod(p)).toEqual([]);
        expect(validatePod(applyPodDefaults(structuredClone(p)))).toEqual([]);
      }),
      RUNS,
    );
  });

  it('defaulting is idempotent', () => {
    fc.assert(
      fc.property(validPod, (p) => {
        const once = applyPodDefaults(structuredClone(p));
        expect(applyPodDefaults(structuredClone(once))).toEqual(once);
      }),
      RUNS,
    );
  });

  it('every injected defect is reported on its field', () => {
    fc.assert(
      fc.property(validPod, defects, (p, [field, mutate]) => {
        const bad = structuredClone(p);
        mutate(bad);
        const errs = validatePod(bad);
        expect(errs.map((e) => e.field).some((f) => f.startsWith(field))).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('parseManifest (properties)', () => {
  const file = (ext: string): string => `/etc/berth/manifests/m.${ext}`;

  it('never throws on arbitrary text, and every error is an InvalidManifest with a message', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('{', ': :', '---\n- [', '\u0000', 'a: *x', 'x: !!binary zz')), fc.constantFrom('yaml', 'json'), (text, ext) => {
        const r = parseManifest(file(ext), text, NODE);
        for (const e of r.errors) {
          expect(e.reason).toBe('InvalidManifest');
          expect(e.message.length).toBeGreaterThan(0);
        }
        for (const p of r.pods) expect(validatePod(p)).toEqual([]);
      }),
      RUNS,
    );
  });

  it('every non-empty JSON document becomes exactly one pod or one error naming its document', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('yaml', 'json'), (v, ext) => {
        const r = parseManifest(file(ext), JSON.stringify(v), NODE);
        if (v === null) {
          expect(r).toEqual({ pods: [], errors: [] });
          return;
        }
        expect(r.pods.length + r.errors.length).toBe(1);
        if (r.errors[0]) expect(r.errors[0].document ?? 0).toBe(0);
      }),
      RUNS,
    );
  });

  it('a valid pod is accepted as a static pod of this node with a stable uid; a defective one is rejected with its field', () => {
    fc.assert(
      fc.property(validPod, fc.option(defects, { nil: undefined }), fc.constantFrom('yaml', 'json'), (p, defect, ext) => {
        const doc = structuredClone(p);
        defect?.[1](doc);
        const text = JSON.stringify(doc);
        const r = parseManifest(file(ext), text, NODE);
        if (!defect) {
          expect(r.errors).toEqual([]);
          const pod = r.pods[0]!;
          expect(pod.metadata!.name).toBe(`${p.metadata!.name}-${NODE}`);
          expect(pod.metadata!.uid).toMatch(/^[0-9a-f]{32}$/);
          expect(pod.spec!.nodeName).toBe(NODE);
          expect(validatePod(pod)).toEqual([]);
          expect(parseManifest(file(ext), text, NODE).pods[0]!.metadata!.uid).toBe(pod.metadata!.uid);
        } else {
          expect(r.pods).toEqual([]);
          expect(r.errors).toHaveLength(1);
          expect(r.errors[0]!.message).toContain(defect[0]);
        }
      }),
      RUNS,
    );
  });

  it('several YAML documents: good ones run, each bad one is reported with its index', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(validPod, fc.option(defects, { nil: undefined })), { minLength: 1, maxLength: 4 }), (docs) => {
        const text = docs
          .map(([p, d], i) => {
            const x = structuredClone(p);
            x.metadata!.name = `${x.metadata!.name}-${i}`.slice(-20).replace(/^-+/, 'p');
            d?.[1](x);
            return JSON.stringify(x);
          })
          .join('\n---\n');
        const r = parseManifest(file('yaml'), text, NODE);
        const badIdx = docs.flatMap(([, d], i) => (d ? [i] : []));
        expect(r.errors.map((e) => e.document)).toEqual(badIdx);
        expect(r.pods).toHaveLength(docs.length - badIdx.length);
      }),
      { numRuns: 60 },
    );
  });
});
