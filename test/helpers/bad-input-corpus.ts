// The bad-input corpus of issue #9 campaign item 8, shared by the manifest-folder test
// (test/integration/bad-input-corpus.test.ts) and the API-server test (test/e2e/bad-input-apiserver.test.ts):
// malformed or hostile Pod documents (wrong types, huge strings, deep nesting, invalid names and UTF-8, path
// traversal in volume items and subPath, symlink tricks, env refs to missing objects, absurd values, ports out of
// range, invalid probe handlers). Pure generators: they return the texts, the caller writes or submits them.
import path from 'node:path';
import { podManifest, shContainer } from './berth.ts';

export interface CorpusOptions {
  /** The image every container uses (pulled Never). */
  image: string;
  /** The test's scratch dir (its basename is used in a traversal, its symlinks link-to-dir / link-to-file in hostPath). */
  tmp: string;
  /** A dir holding a canary file a subPath symlink escape would reach. */
  canaryDir: string;
}

function builders(o: CorpusOptions): {
  c: (over?: Record<string, unknown>) => Record<string, unknown>;
  pod: (name: string, spec: Record<string, unknown>, metadata?: Record<string, unknown>) => string;
  withC: (name: string, over: Record<string, unknown>, spec?: Record<string, unknown>) => string;
  tmp: string;
  canaryDir: string;
} {
  const c = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'c', image: o.image, imagePullPolicy: 'Never', command: ['sleep', '3600'], ...over });
  const pod = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): string => podManifest(name, spec, metadata);
  const withC = (name: string, over: Record<string, unknown>, spec: Record<string, unknown> = {}): string => pod(name, { containers: [c(over)], ...spec });
  return { c, pod, withC, tmp: o.tmp, canaryDir: o.canaryDir };
}

/** Manifests berth must reject while parsing: file name → content. Each must show up in berth's manifest errors. */
export function rejectedCorpus(o: CorpusOptions): Map<string, string | Buffer> {
  const { c, pod, withC, tmp } = builders(o);
  const m = new Map<string, string | Buffer>();
  let n = 0;
  const add = (text: string | Buffer, ext = 'yaml'): void => void m.set(`bad-${String(n++).padStart(3, '0')}.${ext}`, text);

  // wrong types, field by field
  const wrong: unknown[] = [42, 'str', true, ['a'], { a: 1 }, null];
  const containerFields = ['name', 'image', 'command', 'args', 'env', 'ports', 'volumeMounts', 'livenessProbe', 'imagePullPolicy', 'workingDir'];
  for (const f of containerFields)
    for (const v of wrong) {
      const expected = { name: 'string', image: 'string', command: 'array', args: 'array', env: 'array', ports: 'array', volumeMounts: 'array', livenessProbe: 'object', imagePullPolicy: 'string', workingDir: 'string' }[f];
      const isRightType = (expected === 'array' && Array.isArray(v)) || (expected === 'object' && typeof v === 'object' && v !== null && !Array.isArray(v)) || typeof v === expected;
      if (isRightType || v === null) continue;
      add(withC(`wt-${f.toLowerCase()}-${n}`, { [f]: v }));
    }
  for (const [k, v] of [['containers', 'c'], ['containers', {}], ['volumes', 'v'], ['restartPolicy', 7], ['hostNetwork', 'yes'], ['terminationGracePeriodSeconds', 'long'], ['nodeSelector', ['x']], ['initContainers', 3]] as const)
    add(pod(`wt-spec-${n}`, { containers: [c()], [k]: v }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: 'meta', spec: { containers: [c()] } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', labels: 'l' }, spec: { containers: [c()] } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', annotations: [1] }, spec: { containers: [c()] } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: 'spec' }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { containers: [c()] } }));
  add(JSON.stringify({ apiVersion: 'v2', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [c()] } }));
  add('[1, 2, 3]');
  add('"just a string"');
  add('42', 'json');
  add('true');

  // syntax
  for (const t of ['{', 'a: [1, 2', ': :', 'key: "unterminated', 'a: *undefined-alias', '\t- tab', 'x: !!binary ###', '---\n- [\n---']) add(t);
  add('{"apiVersion": "v1",', 'json');
  add("{'single': 'quotes'}", 'json');

  // invalid names
  for (const name of ['UPPER', 'under_score', 'dot.end.', '-lead', 'trail-', 'a'.repeat(254), 'sp ace', 'ünï', '../escape', 'a/b', '..', '.', 'new\nline', 'nul\u0000byte', ''])
    add(pod(name, { containers: [c()] }));
  for (const ns of ['UPPER', 'a.b', '../x', 'x'.repeat(64), ' '])
    add(pod('ns-bad', { containers: [c()] }, { namespace: ns }));
  for (const cname of ['UPPER', 'a_b', '../x', 'x'.repeat(64), ''])
    add(pod(`cn-${n}`, { containers: [c({ name: cname })] }));
  add(pod('dup-containers', { containers: [c(), c()] }));
  add(pod('dup-init-app', { containers: [c()], initContainers: [c()] }));
  add(pod('dup-volumes', { containers: [c()], volumes: [{ name: 'v', emptyDir: {} }, { name: 'v', emptyDir: {} }] }));

  // huge strings and deep nesting
  add(pod(`huge-name-${'x'.repeat(100_000)}`, { containers: [c()] }));
  add(pod('huge-image', { containers: [c({ image: ` ${'i'.repeat(200_000)} ` })] }));
  add(pod('huge-label', { containers: [c()], restartPolicy: 'R'.repeat(100_000) }));
  add(pod('big-file', { containers: [c({ image: '' })] }) + '\n# ' + 'z'.repeat(3_000_000));
  let deep: unknown = 'leaf';
  for (let i = 0; i < 2000; i++) deep = { d: deep };
  add(pod('deep-nesting', { containers: [c({ env: deep })] }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'deep-json' }, spec: { containers: [c({ workingDir: deep })] } }), 'json');
  add('a:\n' + Array.from({ length: 500 }, (_, i) => ' '.repeat(i + 1) + `- k${i}:`).join('\n'));
  add(Array(400).fill('[').join('') + Array(400).fill(']').join(''), 'json');

  // invalid UTF-8 and control bytes
  add(Buffer.concat([Buffer.from('apiVersion: v1\nkind: Pod\nmetadata:\n  name: "'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"\nspec:\n  containers: []\n')]));
  add(Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0x00, 0x01, 0x02]), 'json');
  add(Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xaf]));

  // ports, probes, absurd values
  for (const p of [0, -1, 65536, 1e9, 1.5, '80x'])
    add(withC(`port-${n}`, { ports: [{ containerPort: p }] }));
  for (const probe of [{}, { exec: { command: ['true'] }, httpGet: { port: 80 } }, { httpGet: { port: 0 } }, { tcpSocket: { port: 70000 } }, { exec: { command: ['x'] }, periodSeconds: -5 }, { exec: { command: ['x'] }, failureThreshold: 1.5 }, { grpc: { port: 1 }, tcpSocket: { port: 1 } }])
    for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'])
      add(withC(`probe-${n}`, { [kind]: probe }));
  for (const q of ['lots', '1.5.5', '-1', '-500m', '10Xi', ''])
    add(withC(`res-${n}`, { resources: { limits: { memory: q } } }));
  add(pod('neg-grace', { containers: [c()], terminationGracePeriodSeconds: -1 }));
  add(pod('zero-deadline', { containers: [c()], activeDeadlineSeconds: 0 }));
  add(pod('bad-restart', { containers: [c()], restartPolicy: 'Sometimes' }));
  add(withC('bad-pull', { imagePullPolicy: 'Maybe' }));
  for (const e of [{ name: '' }, { name: '1abc' }, { name: 'A=B' }, { name: 'x', valueFrom: {} }, { name: 'x', value: 'v', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }])
    add(withC(`env-${n}`, { env: [e] }));

  // path traversal in volume items, subPath, mounts; undeclared volumes
  for (const p of ['../escape', '../../../../../../tmp/escape', '/abs/path', 'a/../../b', '..data', '..', 'nul\u0000', ''])
    for (const kind of ['configMap', 'secret'])
      add(pod(`items-${n}`, { containers: [c({ volumeMounts: [{ name: 'v', mountPath: '/v' }] })], volumes: [{ name: 'v', [kind]: { [kind === 'secret' ? 'secretName' : 'name']: 'x', items: [{ key: 'k', path: p }] } }] }));
  for (const p of ['../escape', '../../../../../../etc', '/abs', 'a/../../b'])
    add(pod(`dapi-${n}`, { containers: [c({ volumeMounts: [{ name: 'v', mountPath: '/v' }] })], volumes: [{ name: 'v', downwardAPI: { items: [{ path: p, fieldRef: { fieldPath: 'metadata.name' } }] } }] }));
  for (const sp of ['../escape', '../../../../../../../', '/abs', 'a/../../b', `../../../${path.basename(tmp)}/canary`])
    add(pod(`subpath-${n}`, { containers: [c({ volumeMounts: [{ name: 'v', mountPath: '/v', subPath: sp }] })], volumes: [{ name: 'v', emptyDir: {} }] }));
  add(pod('subpath-both', { containers: [c({ volumeMounts: [{ name: 'v', mountPath: '/v', subPath: 'a', subPathExpr: 'b' }] })], volumes: [{ name: 'v', emptyDir: {} }] }));
  add(pod('undeclared-vol', { containers: [c({ volumeMounts: [{ name: 'nope', mountPath: '/v' }] })] }));
  add(pod('no-mountpath', { containers: [c({ volumeMounts: [{ name: 'v' }] })], volumes: [{ name: 'v', emptyDir: {} }] }));
  add(pod('hostpath-empty', { containers: [c()], volumes: [{ name: 'v', hostPath: { path: '' } }] }));
  add(pod('mode-bad', { containers: [c()], volumes: [{ name: 'v', secret: { secretName: 's', defaultMode: 0o1777 } }] }));

  // more field checks
  for (const hp of [70000, -5]) add(withC(`hostport-${n}`, { ports: [{ containerPort: 80, hostPort: hp }] }));
  for (const pr of ['ICMP', 'tcp']) add(withC(`proto-${n}`, { ports: [{ containerPort: 80, protocol: pr }] }));
  add(withC('pull-empty', { imagePullPolicy: '' }));
  for (const v of ['V', 'a_b', '']) add(pod(`volname-${n}`, { containers: [c()], volumes: [{ name: v, emptyDir: {} }] }));
  for (const v of [1, 'str']) add(pod(`volnotobj-${n}`, { containers: [c()], volumes: [v] }));
  add(pod('ctr-array', { containers: [[1]] }));
  add(withC('env-name-num', { env: [{ name: 5, value: 'x' }] }));
  add(withC('probe-neg-fail', { livenessProbe: { exec: { command: ['x'] }, failureThreshold: -1 } }));
  add(withC('probe-soon', { readinessProbe: { exec: { command: ['x'] }, initialDelaySeconds: 'soon' } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 5 }, spec: { containers: [c()] } }));
  add(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: {} }, spec: { containers: [c()] } }));
  add(pod('lower-restart', { containers: [c()], restartPolicy: 'always' }));
  add(JSON.stringify({ apiVersion: 'apps/v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [c()] } }));
  add(pod('null-containers', { containers: null }));
  add(pod('neg-deadline', { containers: [c()], activeDeadlineSeconds: -5 }));
  add(withC('env-two-sources', { env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'metadata.name' }, secretKeyRef: { name: 's', key: 'k' } } }] }));
  add(withC('grpc-named', { livenessProbe: { grpc: { port: 'grpc' } } }));

  // several documents in one file: one bad among good-looking ones would still be reported (the good one runs: see below)
  add(['---', pod('multi-bad-1', { containers: [] }), '---', pod('multi-bad-2', { containers: [c({ image: '' })] })].join('\n'));
  return m;
}

/** Valid manifests that are hostile at run time: each must end with a reason, not Running, and nothing escapes. */
export function runtimeCorpus(o: CorpusOptions): Map<string, { text: string; name: string }> {
  const { c, pod, withC, tmp, canaryDir } = builders(o);
  const m = new Map<string, { text: string; name: string }>();
  const add = (name: string, text: string): void => void m.set(`rt-${name}.yaml`, { name, text });
  add('missing-cm', withC('missing-cm', { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }] }));
  add('missing-secret', withC('missing-secret', { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] }));
  add('never-pull', withC('never-pull', { image: 'berth-test/does-not-exist:1' }));
  add('tiny-memory', withC('tiny-memory', { resources: { limits: { memory: '1Ki' } } }));
  // hostPath type checks on symlinks (the symlinks are made in beforeAll)
  add('hp-file-on-dir', pod('hp-file-on-dir', { containers: [c({ volumeMounts: [{ name: 'h', mountPath: '/h' }] })], volumes: [{ name: 'h', hostPath: { path: path.join(tmp, 'link-to-dir'), type: 'File' } }] }));
  add('hp-dir-on-file', pod('hp-dir-on-file', { containers: [c({ volumeMounts: [{ name: 'h', mountPath: '/h' }] })], volumes: [{ name: 'h', hostPath: { path: path.join(tmp, 'link-to-file'), type: 'Directory' } }] }));
  // subPath through a symlink an init container planted in the volume (CVE-2017-1002101)
  add(
    'subpath-symlink',
    pod('subpath-symlink', {
      restartPolicy: 'Never',
      initContainers: [shContainer('plant', `ln -s ${canaryDir} /v/escape && ln -s / /v/root`, { volumeMounts: [{ name: 'v', mountPath: '/v' }] })],
      containers: [shContainer('use', `echo pwned > /x/pwned; sleep 3600`, { volumeMounts: [{ name: 'v', mountPath: '/x', subPath: 'escape' }] })],
      volumes: [{ name: 'v', emptyDir: {} }],
    }),
  );
  return m;
}
