// The bad-input corpus (issue #9 campaign item 8) through the manifest folder of a real berth process on the real
// dockerd: 200+ malformed or hostile manifests (wrong types, huge strings, deep nesting, invalid names and UTF-8,
// path traversal in volume items, subPath and names, symlink tricks, env refs to missing objects, absurd values,
// ports out of range, invalid probe handlers) beside two good pods. berth never crashes, never writes outside its
// directories, every bad pod gets a reason (a manifest error naming its file, or a waiting reason / warning event),
// and the good pods run.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { podManifest, shContainer, useBerth, waitFor, type BerthPods } from '../helpers/berth.ts';
import { BUSYBOX_IMAGE } from './helpers/docker-images.ts';

const berth = useBerth({
  beforeStart: () => {
    mkdirSync(canaryDir, { recursive: true });
    writeFileSync(canaryFile, CANARY_TEXT);
    symlinkSync(canaryDir, path.join(tmp, 'link-to-dir'));
    symlinkSync(canaryFile, path.join(tmp, 'link-to-file'));
    for (const [f, text] of rejected) writeFileSync(path.join(berth.manifestDir, f), text);
    for (const [f, { text }] of runtime) writeFileSync(path.join(berth.manifestDir, f), text);
    // symlink tricks on the manifest files themselves: to the canary (not a manifest), to a directory, dangling
    symlinkSync(canaryFile, path.join(berth.manifestDir, 'link-secret.yaml'));
    symlinkSync(canaryFile, path.join(berth.manifestDir, 'link-secret.json'));
    symlinkSync(canaryDir, path.join(berth.manifestDir, 'link-dir.yaml'));
    symlinkSync('/nonexistent/berth', path.join(berth.manifestDir, 'link-dangling.yaml'));
    for (const g of GOOD) writeFileSync(path.join(berth.manifestDir, `${g}.yaml`), pod(g, { containers: [c()] }));
  },
  readyTimeoutMs: 30_000,
  hookTimeoutMs: 120_000,
});
const tmp = path.dirname(berth.rootDir);
/** Where an escape would land: siblings of berth's own dirs, and a canary dir of its own. */
const canaryDir = path.join(tmp, 'canary');
const canaryFile = path.join(canaryDir, 'secret.txt');
const CANARY_TEXT = 'canary-secret-value-7f3a';

const c = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'c', image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'], ...over });
const pod = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): string => podManifest(name, spec, metadata);
const withC = (name: string, over: Record<string, unknown>, spec: Record<string, unknown> = {}): string => pod(name, { containers: [c(over)], ...spec });

/** Manifests berth must reject while parsing: file name → content. Each must show up in berth's manifest errors. */
function rejectedCorpus(): Map<string, string | Buffer> {
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
function runtimeCorpus(): Map<string, { text: string; name: string }> {
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

const GOOD = ['good-a', 'good-b'];

const rejected = rejectedCorpus();
const runtime = runtimeCorpus();

describe('bad-input corpus through the manifest folder (real berth, real Docker)', () => {
  let last: BerthPods | undefined;

  it(`has at least 200 hostile manifests`, () => {
    expect(rejected.size + runtime.size + 4).toBeGreaterThanOrEqual(200);
  }, 180_000);

  it('the good pods beside them run', async () => {
    await waitFor(async () => {
      last = await berth.pods();
      return GOOD.every((g) => last!.items.find((p) => p.metadata?.name === `${g}-${berth.nodeName}`)?.status.phase === 'Running');
    }, 90_000, 'good pods Running');
  }, 180_000);

  it('every malformed manifest is reported with an InvalidManifest reason naming its file and document', async () => {
    let missing: string[] = [];
    last = await waitFor(async () => {
      const p = await berth.pods();
      const files = new Set(p.errors.map((e) => path.basename(e.file)));
      missing = [...rejected.keys()].filter((f) => !files.has(f));
      return missing.length === 0 && p;
    }, 60_000, 'an error for every rejected file').catch(() => undefined);
    expect(missing).toEqual([]);
    if (!last) return;
    for (const e of last.errors) {
      if (!rejected.has(path.basename(e.file))) continue;
      expect(e.reason).toBe('InvalidManifest');
      expect(e.message.length).toBeGreaterThan(0);
      expect(e.message.length).toBeLessThan(1_000_000);
    }
    // none of them became a pod
    const podNames = new Set(last.items.map((p) => p.metadata?.name));
    for (const name of ['UPPER', 'dup-containers', 'subpath-both', 'undeclared-vol']) expect(podNames.has(`${name}-${berth.nodeName}`)).toBe(false);
    // a manifest symlinked to a non-manifest file: reported, and its content never echoed
    const linkErrs = last.errors.filter((e) => path.basename(e.file).startsWith('link-secret'));
    expect(linkErrs.length).toBeGreaterThanOrEqual(1);
    for (const e of linkErrs) expect(e.message).not.toContain(CANARY_TEXT);
  }, 180_000);

  it('every runtime-hostile pod ends with a waiting reason or a warning event, never Running', async () => {
    const reasonOf = (p: BerthPods['items'][number]): string | undefined => {
      const st = [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])];
      return st.map((s) => s.state?.waiting?.reason ?? s.state?.terminated?.reason).find((r) => r && r !== 'ContainerCreating' && r !== 'PodInitializing');
    };
    const warned = (pods: BerthPods, name: string): boolean => pods.events.some((e) => e.object.name === name && e.type === 'Warning');
    const names = [...runtime.values()].map((r) => `${r.name}-${berth.nodeName}`);
    let missing: string[] = [];
    last = await waitFor(async () => {
      const p = await berth.pods();
      missing = names.filter((n) => {
        const it = p.items.find((x) => x.metadata?.name === n);
        return !(it && (reasonOf(it) !== undefined || warned(p, n)));
      });
      return missing.length === 0 && p;
    }, 90_000, 'a reason for every runtime-hostile pod').catch(() => undefined);
    expect(missing).toEqual([]);
    if (!last) return;
    for (const n of names) {
      const it = last.items.find((x) => x.metadata?.name === n)!;
      const running = (it.status.containerStatuses ?? []).some((s) => s.state?.running);
      expect({ pod: n, running }).toEqual({ pod: n, running: false });
    }
    const reasons = Object.fromEntries(names.map((n) => [n.replace(`-${berth.nodeName}`, ''), reasonOf(last!.items.find((x) => x.metadata?.name === n)!)]));
    expect(reasons['missing-cm']).toBe('CreateContainerConfigError');
    expect(reasons['missing-secret']).toBe('CreateContainerConfigError');
    expect(reasons['never-pull']).toBe('ErrImageNeverPull');
  }, 180_000);

  it('berth is still alive and nothing was written outside its directories', async () => {
    expect(berth.alive()).toBe(true);
    expect((await berth.pods()).node).toBe(berth.nodeName);
    // the canary dir holds only the canary; the tmp dir only berth's own dirs, the canary and the two symlinks
    expect(readdirSync(canaryDir)).toEqual(['secret.txt']);
    expect(readdirSync(tmp).sort()).toEqual(['berth.log', 'canary', 'link-to-dir', 'link-to-file', 'manifests', 'root'].sort());
    for (const p of ['/tmp/escape', '/abs', '/abs/path', path.join(path.dirname(tmp), 'escape')]) expect(existsSync(p)).toBe(false);
    expect(berth.logs()).not.toContain(CANARY_TEXT);
  }, 180_000);
});
