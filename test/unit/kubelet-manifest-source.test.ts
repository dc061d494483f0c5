// Static pods from a manifest folder, against pkg/kubelet/config/file.go + common.go (applyDefaults: name
// `<name>-<node>`, namespace default, UID = md5 of the object + host + file, config annotations, the
// NoExecute toleration) and config.go (duplicate names within a source are rejected).
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseManifest, readManifestDir } from '../../src/kubelet/sources/manifest-source.ts';

const NODE = 'node-1';
const podYaml = (name: string, image = 'nginx:1.25', extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  containers:
    - name: app
      image: ${image}${extra}
`;

describe('parseManifest', () => {
  it('multi-document YAML: every pod, renamed <name>-<node>, namespace default, bound to the node', () => {
    const r = parseManifest('/etc/berth/manifests/web.yaml', `${podYaml('web')}---\n${podYaml('db', 'postgres:16')}`, NODE);
    expect(r.errors).toEqual([]);
    expect(r.pods.map((p) => [p.metadata?.name, p.metadata?.namespace, p.spec?.nodeName])).toEqual([
      ['web-node-1', 'default', NODE],
      ['db-node-1', 'default', NODE],
    ]);
  });

  it('keeps an explicit namespace', () => {
    const r = parseManifest('/m/a.yaml', podYaml('web').replace('  name: web', '  name: web\n  namespace: kube-system'), NODE);
    expect(r.pods[0]?.metadata?.namespace).toBe('kube-system');
  });

  it('JSON manifests', () => {
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api' }, spec: { containers: [{ name: 'app', image: 'nginx:1' }] } });
    const r = parseManifest('/m/api.json', json, NODE);
    expect(r.errors).toEqual([]);
    expect(r.pods.map((p) => p.metadata?.name)).toEqual(['api-node-1']);
  });

  it('config annotations: source file, hash = UID, seen; the static pod tolerates NoExecute; defaults applied', () => {
    const [p] = parseManifest('/m/web.yaml', podYaml('web'), NODE).pods;
    const uid = p!.metadata!.uid!;
    expect(uid).toMatch(/^[0-9a-f]{32}$/);
    expect(p!.metadata!.annotations).toMatchObject({ 'kubernetes.io/config.source': 'file', 'kubernetes.io/config.hash': uid });
    expect(Date.parse(p!.metadata!.annotations!['kubernetes.io/config.seen']!)).not.toBeNaN();
    expect(p!.spec!.tolerations).toContainEqual({ operator: 'Exists', effect: 'NoExecute' });
    expect(p!.spec).toMatchObject({ restartPolicy: 'Always', terminationGracePeriodSeconds: 30 });
    expect(p!.spec!.containers[0]!.imagePullPolicy).toBe('IfNotPresent');
  });

  it('UID is stable for the same content and changes with content, file and node', () => {
    const uid = (file: string, text: string, node: string): string => parseManifest(file, text, node).pods[0]!.metadata!.uid!;
    const base = uid('/m/web.yaml', podYaml('web'), NODE);
    expect(uid('/m/web.yaml', podYaml('web'), NODE)).toBe(base);
    // Formatting alone (key order, comments) is not content.
    expect(uid('/m/web.yaml', `# comment\nkind: Pod\napiVersion: v1\n${podYaml('web').split('\n').slice(2).join('\n')}`, NODE)).toBe(base);
    expect(uid('/m/web.yaml', podYaml('web', 'nginx:1.26'), NODE)).not.toBe(base);
    expect(uid('/m/other.yaml', podYaml('web'), NODE)).not.toBe(base);
    expect(uid('/m/web.yaml', podYaml('web'), 'node-2')).not.toBe(base);
  });

  it('bad YAML in one document: reported with file and document index, the other documents still load', () => {
    const text = `${podYaml('a')}---\nmetadata: { name: [unclosed\n---\n${podYaml('c')}`;
    const r = parseManifest('/m/mixed.yaml', text, NODE);
    expect(r.pods.map((p) => p.metadata?.name)).toEqual(['a-node-1', 'c-node-1']);
    expect(r.errors).toEqual([{ file: '/m/mixed.yaml', document: 1, reason: 'InvalidManifest', message: expect.stringMatching(/^invalid YAML: /) }]);
  });

  it('an invalid pod is reported with file, document index, name and the field errors, and not returned', () => {
    const bad = podYaml('broken').replace('      image: nginx:1.25\n', '');
    const r = parseManifest('/m/x.yaml', `${podYaml('ok')}---\n${bad}`, NODE);
    expect(r.pods.map((p) => p.metadata?.name)).toEqual(['ok-node-1']);
    expect(r.errors).toEqual([
      { file: '/m/x.yaml', document: 1, name: 'broken', reason: 'InvalidManifest', message: 'spec.containers[0].image: Required value' },
    ]);
  });

  it('several problems in one pod are all in the message', () => {
    const bad = `metadata:\n  name: Bad_Name\nspec:\n  restartPolicy: Sometimes\n  containers:\n    - name: app\n`;
    const [e] = parseManifest('/m/x.yaml', bad, NODE).errors;
    expect(e?.message).toContain('metadata.name: Invalid value: "Bad_Name"');
    expect(e?.message).toContain('spec.containers[0].image: Required value');
    expect(e?.message).toContain('spec.restartPolicy: Unsupported value: "Sometimes"');
  });

  it('empty documents are skipped silently', () => {
    const r = parseManifest('/m/x.yaml', `---\n---\n${podYaml('a')}---\n`, NODE);
    expect(r.errors).toEqual([]);
    expect(r.pods).toHaveLength(1);
  });

  it('invalid JSON → one error for the file, no pods', () => {
    const r = parseManifest('/m/x.json', '{"metadata": ', NODE);
    expect(r.pods).toEqual([]);
    expect(r.errors).toEqual([{ file: '/m/x.json', reason: 'InvalidManifest', message: expect.stringMatching(/^invalid JSON: /) }]);
  });

  it('a document that is not a Pod is rejected', () => {
    const r = parseManifest('/m/x.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  containers: []\n', NODE);
    expect(r.pods).toEqual([]);
    expect(r.errors[0]?.message).toContain('kind: Invalid value: "Deployment": expected "Pod"');
  });
});

describe('readManifestDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-manifests-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads *.yaml, *.yml and *.json; ignores dotfiles, other extensions and folders', async () => {
    await writeFile(path.join(dir, 'a.yaml'), podYaml('a'));
    await writeFile(path.join(dir, 'b.yml'), podYaml('b'));
    await writeFile(path.join(dir, 'c.json'), JSON.stringify({ metadata: { name: 'c' }, spec: { containers: [{ name: 'app', image: 'nginx:1' }] } }));
    await writeFile(path.join(dir, '.d.yaml.swp'), podYaml('swp'));
    await writeFile(path.join(dir, '.hidden.yaml'), podYaml('hidden'));
    await writeFile(path.join(dir, 'notes.txt'), podYaml('txt'));
    await mkdir(path.join(dir, 'sub.yaml'));
    const snap = await readManifestDir(dir, NODE);
    expect(snap.errors).toEqual([]);
    expect(snap.pods.map((p) => p.metadata?.name)).toEqual(['a-node-1', 'b-node-1', 'c-node-1']);
  });

  it('duplicate pod names across files: the first file (name order) wins, the other is reported', async () => {
    await writeFile(path.join(dir, '10-web.yaml'), podYaml('web', 'nginx:1'));
    await writeFile(path.join(dir, '20-web.yaml'), podYaml('web', 'nginx:2'));
    const snap = await readManifestDir(dir, NODE);
    expect(snap.pods).toHaveLength(1);
    expect(snap.pods[0]?.spec?.containers[0]?.image).toBe('nginx:1');
    expect(snap.errors).toEqual([
      {
        file: path.join(dir, '20-web.yaml'),
        name: 'web-node-1',
        reason: 'DuplicatePod',
        message: `pod default/web-node-1 is already defined in ${path.join(dir, '10-web.yaml')}; ignoring this one`,
      },
    ]);
  });

  it('the same name in different namespaces is not a duplicate', async () => {
    await writeFile(path.join(dir, 'a.yaml'), podYaml('web'));
    await writeFile(path.join(dir, 'b.yaml'), podYaml('web').replace('  name: web', '  name: web\n  namespace: other'));
    const snap = await readManifestDir(dir, NODE);
    expect(snap.errors).toEqual([]);
    expect(snap.pods.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['default/web-node-1', 'other/web-node-1']);
  });

  it('errors carry the full file path; good files still load', async () => {
    await writeFile(path.join(dir, 'bad.yaml'), podYaml('bad').replace('      image: nginx:1.25\n', ''));
    await writeFile(path.join(dir, 'good.yaml'), podYaml('good'));
    const snap = await readManifestDir(dir, NODE);
    expect(snap.pods.map((p) => p.metadata?.name)).toEqual(['good-node-1']);
    expect(snap.errors).toEqual([expect.objectContaining({ file: path.join(dir, 'bad.yaml'), document: 0, name: 'bad', reason: 'InvalidManifest' })]);
  });

  it('UID is stable across reads of an unchanged folder', async () => {
    await writeFile(path.join(dir, 'a.yaml'), podYaml('a'));
    const one = await readManifestDir(dir, NODE);
    const two = await readManifestDir(dir, NODE);
    expect(two.pods[0]?.metadata?.uid).toBe(one.pods[0]?.metadata?.uid);
  });

  it('a missing folder is an empty source', async () => {
    expect(await readManifestDir(path.join(dir, 'nope'), NODE)).toEqual({ pods: [], errors: [] });
  });
});
