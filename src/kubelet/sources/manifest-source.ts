// Static pods from a manifest folder (pkg/kubelet/config/file.go + common.go): every *.yaml, *.yml and
// *.json file holds one or more Pod documents; each becomes `<name>-<nodeName>` with a UID derived from
// the content, file and node, so an edit is a new pod (replace) and an unchanged file keeps its pod across
// restarts. The folder is re-read on change (inotify) and at least every `resyncMs` (20 s).
import { readdir, readFile, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Pod } from 'kubernetes-types/core/v1';
import type { Logger } from '../../lib/index.ts';
import { applyPodDefaults, formatFieldErrors, validatePod } from '../pod/pod-spec.ts';
import { stableStringify } from '../pod/pod-actions.ts';

export interface ManifestError {
  file: string;
  /** Document index in the file (0-based), when the error is about one document. */
  document?: number;
  /** Pod name when it could be read. */
  name?: string;
  reason: 'InvalidManifest' | 'DuplicatePod' | 'ReadError';
  message: string;
}

export interface SourceSnapshot {
  pods: Pod[];
  errors: ManifestError[];
}

export const FILE_SOURCE = 'file';

/** Parses one manifest file into static pods (pure apart from hashing). */
export function parseManifest(file: string, text: string, nodeName: string): SourceSnapshot {
  const pods: Pod[] = [];
  const errors: ManifestError[] = [];
  let docs;
  try {
    docs = file.endsWith('.json') ? [{ json: JSON.parse(text) as unknown }] : parseAllDocuments(text).map((d) => ({ doc: d }));
  } catch (err) {
    // Node quotes the start of the text in its message: never echo file content (a symlink may point at a secret).
    const message = (err as Error).message.replace(/"[^"]*"(\.\.\.)?/g, '…');
    return { pods, errors: [{ file, reason: 'InvalidManifest', message: `invalid JSON: ${message}` }] };
  }
  docs.forEach((d, i) => {
    let obj: unknown;
    if ('json' in d) obj = d.json;
    else {
      if (d.doc.errors.length) {
        errors.push({ file, document: i, reason: 'InvalidManifest', message: `invalid YAML: ${d.doc.errors.map((e) => e.message.split('\n')[0]).join('; ')}` });
        return;
      }
      try {
        obj = d.doc.toJSON();
      } catch (err) {
        // e.g. an alias to an anchor never set: one bad document must not fail the whole folder
        errors.push({ file, document: i, reason: 'InvalidManifest', message: `invalid YAML: ${(err as Error).message.split('\n')[0]}` });
        return;
      }
    }
    if (obj === null || obj === undefined) return; // empty document
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      // Not echoed: a scalar document is the whole file (it may be huge, or a secret a symlink points at).
      errors.push({ file, document: i, reason: 'InvalidManifest', message: `expected a Pod object, got ${Array.isArray(obj) ? 'array' : typeof obj}` });
      return;
    }
    const raw = obj as Pod;
    const errs = validatePod(raw);
    const name = typeof raw?.metadata?.name === 'string' ? raw.metadata.name : undefined;
    if (errs.length) {
      errors.push({ file, document: i, name, reason: 'InvalidManifest', message: formatFieldErrors(errs) });
      return;
    }
    const pod = applyPodDefaults(structuredClone(raw));
    // UID: hash of the (defaulted) pod, node and file, as upstream's applyDefaults (md5 of the object + host + file).
    const uid = createHash('md5').update(stableStringify(pod)).update(`host:${nodeName}`).update(`file:${file}`).digest('hex');
    const m = pod.metadata!;
    (m as { uid?: string }).uid = uid;
    m.name = `${m.name}-${nodeName}`;
    m.annotations = { ...(m.annotations ?? {}), 'kubernetes.io/config.hash': uid, 'kubernetes.io/config.source': FILE_SOURCE, 'kubernetes.io/config.seen': new Date().toISOString() };
    pod.spec!.nodeName = nodeName;
    pod.spec!.tolerations = [...(pod.spec!.tolerations ?? []), { operator: 'Exists', effect: 'NoExecute' }];
    const errs2 = validatePod(pod);
    if (errs2.length) {
      errors.push({ file, document: i, name, reason: 'InvalidManifest', message: formatFieldErrors(errs2) });
      return;
    }
    pods.push(pod);
  });
  return { pods, errors };
}

/** Reads every manifest in `dir`; duplicates (same namespace/name) keep the first file in name order. */
export async function readManifestDir(dir: string, nodeName: string): Promise<SourceSnapshot> {
  const out: SourceSnapshot = { pods: [], errors: [] };
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  const seen = new Map<string, string>();
  for (const n of names) {
    if (n.startsWith('.') || !/\.(ya?ml|json)$/.test(n)) continue;
    const file = path.join(dir, n);
    let text: string;
    try {
      const st = await stat(file);
      if (!st.isFile()) continue;
      text = await readFile(file, 'utf8');
    } catch (err) {
      out.errors.push({ file, reason: 'ReadError', message: (err as Error).message });
      continue;
    }
    const r = parseManifest(file, text, nodeName);
    out.errors.push(...r.errors);
    for (const p of r.pods) {
      const key = `${p.metadata!.namespace}/${p.metadata!.name}`;
      const first = seen.get(key);
      if (first) {
        out.errors.push({ file, name: p.metadata!.name, reason: 'DuplicatePod', message: `pod ${key} is already defined in ${first}; ignoring this one` });
        continue;
      }
      seen.set(key, file);
      out.pods.push(p);
    }
  }
  return out;
}

export interface ManifestSourceOptions {
  dir: string;
  nodeName: string;
  log: Logger;
  resyncMs?: number;
  onUpdate: (snap: SourceSnapshot) => void;
}

/** Watches the folder; calls onUpdate with the full set after every read (level-triggered). */
export class ManifestSource {
  private readonly o: ManifestSourceOptions;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reading = false;
  private again = false;
  private stopped = false;
  private lastErrors = '';
  synced = false;

  constructor(o: ManifestSourceOptions) {
    this.o = o;
  }

  start(): void {
    this.armWatch();
    this.timer = setInterval(() => this.kick(), this.o.resyncMs ?? 20_000);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private armWatch(): void {
    try {
      this.watcher?.close();
      this.watcher = watch(this.o.dir, { persistent: false }, () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.kick(), 10);
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // folder missing: the periodic read notices when it appears
      this.watcher = undefined;
    }
  }

  kick(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void (async () => {
      try {
        do {
          this.again = false;
          if (!this.watcher) this.armWatch();
          const snap = await readManifestDir(this.o.dir, this.o.nodeName);
          const errKey = JSON.stringify(snap.errors);
          if (errKey !== this.lastErrors) {
            for (const e of snap.errors) this.o.log.warn({ file: e.file, document: e.document, pod: e.name, reason: e.reason, detail: e.message }, 'invalid static pod manifest');
            this.lastErrors = errKey;
          }
          this.synced = true;
          this.o.onUpdate(snap);
        } while (this.again && !this.stopped);
      } catch (err) {
        this.o.log.error({ err, dir: this.o.dir }, 'reading manifest folder failed');
      } finally {
        this.reading = false;
      }
    })();
  }
}
