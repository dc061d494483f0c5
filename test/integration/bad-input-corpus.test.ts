// The bad-input corpus (issue #9 campaign item 8) through the manifest folder of a real berth process on the real
// dockerd: 200+ malformed or hostile manifests (wrong types, huge strings, deep nesting, invalid names and UTF-8,
// path traversal in volume items, subPath and names, symlink tricks, env refs to missing objects, absurd values,
// ports out of range, invalid probe handlers) beside two good pods. berth never crashes, never writes outside its
// directories, every bad pod gets a reason (a manifest error naming its file, or a waiting reason / warning event),
// and the good pods run.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { podManifest, useBerth, waitFor, type BerthPods } from '../helpers/berth.ts';
import { rejectedCorpus, runtimeCorpus } from '../helpers/bad-input-corpus.ts';
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

const GOOD = ['good-a', 'good-b'];

const rejected = rejectedCorpus({ image: BUSYBOX_IMAGE, tmp, canaryDir });
const runtime = runtimeCorpus({ image: BUSYBOX_IMAGE, tmp, canaryDir });

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
