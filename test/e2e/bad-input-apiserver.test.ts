// The bad-input corpus (issue #9 campaign item 8, the API-server half) through the rig's real kube-apiserver, with
// berth as the node. Every document of the manifest corpus (test/helpers/bad-input-corpus.ts) plus API-only hostile
// pods is POSTed with the admin token. Many are refused by kube-apiserver's own validation (upstream's kubelet never
// sees those either: they are counted, with the server's message). The ones it stores reach berth, and each must end
// with an upstream-style reason in pod status (CreateContainerConfigError, ErrImageNeverPull, OutOfcpu, …) or a
// Warning Event, or run when it is legal-but-odd; berth stays up, a well-formed pod beside them stays Running with no
// restart, and nothing appears outside berth's directories. Objects the API can hold that are hostile to a kubelet
// (an orphaned mirror-pod annotation, a finalizer that blocks deletion, a status an admin overwrote) are tried too.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Event, Pod } from 'kubernetes-types/core/v1';
import { parse as parseYaml } from 'yaml';
import { shContainer } from '../helpers/berth.ts';
import { rejectedCorpus, runtimeCorpus } from '../helpers/bad-input-corpus.ts';
import { apiServerUrl, e2eNodeName, kubectl, paths, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const RUN = uniqueName('badin');
const NS = RUN;
const IMAGE = process.env.BERTH_TEST_IMAGE ?? 'berth-test/busybox:latest';
/** Marks every file a hostile container tries to write, so a search of the host can find an escape. */
const MARK = `pwned-${RUN}`;

// ---- the REST client (admin token from the rig's kubeconfig) ----
const adminToken = (): string => {
  const doc = parseYaml(readFileSync(paths.adminKubeconfig, 'utf8')) as { users?: { user?: { token?: string } }[] };
  const t = doc.users?.[0]?.user?.token;
  if (!t) throw new Error('admin kubeconfig has no token');
  return t;
};
interface ApiAnswer {
  status: number;
  body: string;
}
function api(method: string, urlPath: string, body?: string | Buffer, contentType = 'application/json'): Promise<ApiAnswer> {
  const url = new URL(urlPath, apiServerUrl());
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: readFileSync(paths.caCert),
        headers: { authorization: `Bearer ${adminToken()}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
const messageOf = (a: ApiAnswer): string => {
  try {
    return String((JSON.parse(a.body) as { message?: string }).message ?? a.body).slice(0, 300);
  } catch {
    return a.body.slice(0, 300);
  }
};

// ---- the corpus ----
type Expect = 'runs' | 'ready' | 'any' | 'refused' | RegExp;
interface Submission {
  id: string;
  body: string | Buffer;
  contentType: string;
  /** What the pod must show when the API server stores it ('any': a reason or Running; 'refused': the server must refuse it). */
  expect: Expect;
  /** Set once submitted. */
  accepted?: { name: string; uid: string };
  refused?: string;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A corpus document made submittable to this run: bound to NODE (spec.nodeName), labelled berth-e2e=RUN, and a
 * valid name made unique; invalid names, namespaces and types are left as they are (that is what is being tested).
 * Text that is not JSON (YAML syntax errors, invalid UTF-8, several documents) goes as application/yaml.
 */
function adapt(id: string, text: string | Buffer, expect: Expect, n: number): Submission {
  let doc: unknown;
  try {
    doc = typeof text === 'string' ? JSON.parse(text) : undefined;
  } catch {
    doc = undefined;
  }
  if (!isPlain(doc)) return { id, body: text, contentType: 'application/yaml', expect };
  if (isPlain(doc.metadata)) {
    const m = doc.metadata;
    if (typeof m.name === 'string' && DNS1123_SUBDOMAIN.test(m.name) && m.name.length <= 200) m.name = `${m.name.slice(0, 40)}-${n}`;
    if (m.namespace === 'default') m.namespace = NS;
    if (m.labels === undefined) m.labels = {};
    if (isPlain(m.labels)) m.labels['berth-e2e'] = RUN;
  }
  if (isPlain(doc.spec)) {
    doc.spec.nodeName = NODE;
    doc.spec.terminationGracePeriodSeconds ??= 1;
    // no pull from a registry: the server would default an empty policy to Always for :latest (loopback traffic only)
    for (const k of ['containers', 'initContainers'])
      for (const ctr of Array.isArray(doc.spec[k]) ? (doc.spec[k] as unknown[]) : []) if (isPlain(ctr) && !ctr.imagePullPolicy) ctr.imagePullPolicy = 'Never';
  }
  return { id, body: JSON.stringify(doc), contentType: 'application/json', expect };
}

const c = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'c', image: IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'], ...over });
const podDoc = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, ...metadata, labels: { 'berth-e2e': RUN, ...((metadata.labels as object | undefined) ?? {}) } },
  spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, ...spec },
});
const withC = (name: string, over: Record<string, unknown>, spec: Record<string, unknown> = {}): Record<string, unknown> => podDoc(name, { containers: [c(over)], ...spec });
const vol = (name: string, volume: Record<string, unknown>, mount: Record<string, unknown> = {}): Record<string, unknown> =>
  podDoc(name, { containers: [c({ volumeMounts: [{ name: 'v', mountPath: '/v', ...mount }] })], volumes: [{ name: 'v', ...volume }] });

/** Runtime-hostile pods only an API server can carry (and legal-but-odd ones that must run). */
function apiCorpus(tmp: string, canaryDir: string): [string, Record<string, unknown>, Expect][] {
  const CCE = /^CreateContainerConfigError$/;
  const refKey = (kind: 'configMapKeyRef' | 'secretKeyRef', name: string, key = 'k', optional?: boolean): Record<string, unknown> => ({
    env: [{ name: 'X', valueFrom: { [kind]: { name, key, ...(optional ? { optional } : {}) } } }],
  });
  const probeCtr = (kind: string, probe: Record<string, unknown>): Record<string, unknown> => ({ [kind]: { periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 1, ...probe } });
  const big = 'a'.repeat(1000);
  return [
    // env and volume references to objects that are missing
    ['env-missing-cm', withC('env-missing-cm', refKey('configMapKeyRef', 'nope')), CCE],
    ['env-missing-secret', withC('env-missing-secret', refKey('secretKeyRef', 'nope')), CCE],
    ['env-missing-key', withC('env-missing-key', refKey('configMapKeyRef', `${RUN}-cm`, 'nope')), CCE],
    ['env-missing-secret-key', withC('env-missing-secret-key', refKey('secretKeyRef', `${RUN}-secret`, 'nope')), CCE],
    ['envfrom-missing-cm', withC('envfrom-missing-cm', { envFrom: [{ configMapRef: { name: 'nope' } }] }), CCE],
    ['envfrom-missing-secret', withC('envfrom-missing-secret', { envFrom: [{ secretRef: { name: 'nope' } }] }), CCE],
    ['env-optional-missing', withC('env-optional-missing', { ...refKey('configMapKeyRef', 'nope', 'k', true), envFrom: [{ secretRef: { name: 'nope', optional: true } }] }), 'runs'],
    ['vol-missing-cm', vol('vol-missing-cm', { configMap: { name: 'nope' } }), /^FailedMount$/],
    ['vol-missing-secret', vol('vol-missing-secret', { secret: { secretName: 'nope' } }), /^FailedMount$/],
    ['vol-missing-item-key', vol('vol-missing-item-key', { configMap: { name: `${RUN}-cm`, items: [{ key: 'nope', path: 'x' }] } }), /^FailedMount$/],
    // volume item paths a kubelet's atomic writer must not write (..data is its own link): 1.20 refuses them already
    ['items-dotdot-prefix', vol('items-dotdot-prefix', { configMap: { name: `${RUN}-cm`, items: [{ key: 'k', path: '..data/x' }] } }), 'refused'],
    ['dapi-dotdot-prefix', vol('dapi-dotdot-prefix', { downwardAPI: { items: [{ path: '..x', fieldRef: { fieldPath: 'metadata.name' } }] } }), 'refused'],
    // images
    ['image-never-pull', withC('image-never-pull', { image: `berth-test/does-not-exist-${RUN}:1` }), /^ErrImageNeverPull$/],
    ['image-unreachable', withC('image-unreachable', { image: '127.0.0.1:1/berth/nope:1', imagePullPolicy: 'IfNotPresent' }), /^(ErrImagePull|ImagePullBackOff)$/],
    ['image-invalid-name', withC('image-invalid-name', { image: 'UPPER/Case:@@' }), /^InvalidImageName$/],
    // absurd-but-valid resources: the kubelet's admission rejects them (pod Failed, upstream reason)
    ['res-cpu', withC('res-cpu', { resources: { requests: { cpu: '1000' } } }), /^OutOfcpu$/],
    ['res-memory', withC('res-memory', { resources: { requests: { memory: '1Ei' } } }), /^OutOfmemory$/],
    ['res-ephemeral', withC('res-ephemeral', { resources: { requests: { 'ephemeral-storage': '1Ei' } } }), /^OutOfephemeral-storage$/],
    // upstream's predicate admission drops extended resources the node does not know (removeMissingExtendedResources)
    ['res-extended', withC('res-extended', { resources: { requests: { 'example.com/widget': '1' }, limits: { 'example.com/widget': '1' } } }), 'runs'],
    ['res-tiny-memory-limit', withC('res-tiny-memory-limit', { resources: { limits: { memory: '1Ki' } } }), /Error|BackOff|OOMKilled/],
    ['res-tiny-cpu-limit', withC('res-tiny-cpu-limit', { resources: { limits: { cpu: '1m' } } }), 'runs'],
    // hostPath type checks through symlinks (made before berth starts)
    ['hp-file-on-dir', vol('hp-file-on-dir', { hostPath: { path: path.join(tmp, 'link-to-dir'), type: 'File' } }), /^FailedMount$/],
    ['hp-dir-on-file', vol('hp-dir-on-file', { hostPath: { path: path.join(tmp, 'link-to-file'), type: 'Directory' } }), /^FailedMount$/],
    ['hp-socket-on-file', vol('hp-socket-on-file', { hostPath: { path: path.join(tmp, 'link-to-file'), type: 'Socket' } }), /^FailedMount$/],
    ['hp-chardev-on-dir', vol('hp-chardev-on-dir', { hostPath: { path: path.join(tmp, 'link-to-dir'), type: 'CharDevice' } }), /^FailedMount$/],
    // subPathExpr that expands to a traversal; subPath through a symlink planted by an init container
    ['subpathexpr-up', podDoc('subpathexpr-up', { containers: [c({ env: [{ name: 'UP', value: '..' }], volumeMounts: [{ name: 'v', mountPath: '/v', subPathExpr: '$(UP)' }] })], volumes: [{ name: 'v', emptyDir: {} }] }), CCE],
    ['subpathexpr-unset', vol('subpathexpr-unset', { emptyDir: {} }, { subPathExpr: '$(UNSET)' }), CCE],
    [
      'subpathexpr-up-up',
      podDoc('subpathexpr-up-up', {
        containers: [c({ env: [{ name: 'UP', value: '..' }], volumeMounts: [{ name: 'v', mountPath: '/v', subPathExpr: `$(UP)/$(UP)/${MARK}` }] })],
        volumes: [{ name: 'v', emptyDir: {} }],
      }),
      CCE,
    ],
    [
      'subpath-symlink-escape',
      podDoc('subpath-symlink-escape', {
        restartPolicy: 'Never',
        initContainers: [shContainer('plant', `ln -s ${canaryDir} /v/escape && ln -s / /v/root`, { volumeMounts: [{ name: 'v', mountPath: '/v' }] })],
        containers: [
          shContainer('use', `echo x > /x/${MARK}; echo x > /r/tmp/${MARK}; sleep 3600`, {
            volumeMounts: [
              { name: 'v', mountPath: '/x', subPath: 'escape' },
              { name: 'v', mountPath: '/r', subPath: 'root' },
            ],
          }),
        ],
        volumes: [{ name: 'v', emptyDir: {} }],
      }),
      CCE,
    ],
    // probes and hooks that fail, some with handlers a careless HTTP client would throw on
    ['probe-tcp-closed', withC('probe-tcp-closed', probeCtr('livenessProbe', { tcpSocket: { port: 1 } })), /^(Unhealthy|BackOff)$/],
    ['probe-http-closed', withC('probe-http-closed', probeCtr('readinessProbe', { httpGet: { port: 1, path: '/' } })), /^Unhealthy$/],
    ['probe-exec-missing', withC('probe-exec-missing', probeCtr('readinessProbe', { exec: { command: ['/no/such/probe'] } })), /^Unhealthy$/],
    ['probe-http-crlf-header', withC('probe-http-crlf-header', probeCtr('readinessProbe', { httpGet: { port: 1, httpHeaders: [{ name: 'X-A', value: 'a\r\nInjected: 1' }] } })), /^Unhealthy$/],
    ['probe-http-bad-path', withC('probe-http-bad-path', probeCtr('readinessProbe', { httpGet: { port: 1, path: '/a b\r\nHost: evil' } })), /^Unhealthy$/],
    // a server on a port fetch() refuses (WHATWG "bad port"): upstream's Go client probes it like any other
    ['probe-http-fetch-bad-port', withC('probe-http-fetch-bad-port', { command: ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 6666 -h /www'], ...probeCtr('readinessProbe', { httpGet: { port: 6666, path: '/' }, failureThreshold: 3 }) }), 'ready'],
    ['probe-http-bad-host', withC('probe-http-bad-host', probeCtr('readinessProbe', { httpGet: { port: 1, host: 'no such host..' } })), /^Unhealthy$/],
    ['hook-poststart-fails', withC('hook-poststart-fails', { lifecycle: { postStart: { exec: { command: ['false'] } } } }), /^(FailedPostStartHook|BackOff|CrashLoopBackOff)$/],
    // commands the runtime cannot start
    ['cmd-missing', withC('cmd-missing', { command: ['/no/such/binary'] }), /Error|BackOff/],
    ['cmd-empty-string', withC('cmd-empty-string', { command: [''] }), /Error|BackOff/],
    ['cmd-nul-arg', withC('cmd-nul-arg', { command: ['sleep', '3600\u0000;rm -rf /'] }), /Error|BackOff/],
    ['workdir-is-file', withC('workdir-is-file', { workingDir: '/bin/busybox' }), /Error|BackOff/],
    ['env-over-argmax', withC('env-over-argmax', { env: [{ name: 'BIG', value: 'b'.repeat(200_000) }] }), /Error|BackOff/],
    ['env-expansion-bomb', withC('env-expansion-bomb', { env: [{ name: 'A', value: big }, { name: 'B', value: '$(A)'.repeat(1000) }] }), /Error|BackOff/],
    // node admission
    ['node-selector', withC('node-selector', {}, { nodeSelector: { [`berth-e2e/${RUN}`]: 'nope' } }), /^NodeAffinity$/],
    [
      'node-affinity',
      withC('node-affinity', {}, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['elsewhere'] }] }] } } } }),
      /^NodeAffinity$/,
    ],
    ['unsafe-sysctl', withC('unsafe-sysctl', {}, { securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] } }), /^SysctlForbidden$/],
    ['run-as-non-root', withC('run-as-non-root', { securityContext: { runAsNonRoot: true } }), CCE],
    ['deadline', withC('deadline', {}, { activeDeadlineSeconds: 2 }), /^DeadlineExceeded$/],
    // legal but odd: these must run
    ['env-many', withC('env-many', { env: Array.from({ length: 3000 }, (_, i) => ({ name: `E${i}`, value: `v${i}` })) }), 'runs'],
    ['env-unicode', withC('env-unicode', { env: [{ name: 'U', value: 'ünïcødé ✓ 日本語 🚀 \u202e\u200b' }, { name: 'LOOP_A', value: '$(LOOP_B)' }, { name: 'LOOP_B', value: '$(LOOP_A)' }] }), 'runs'],
    ['annotation-huge', podDoc('annotation-huge', { containers: [c()] }, { annotations: { big: 'x'.repeat(200_000), uni: '🚀'.repeat(1000) } }), 'runs'],
    // <ns>_<name>_<uid> is longer than NAME_MAX: the pod's log directory cannot exist (as with containerd's CRI)
    ['name-253', podDoc(`n${'x'.repeat(200)}-${'y'.repeat(40)}`, { containers: [c()] }), /^FailedCreatePodSandBox$/],
    ['dapi-missing-annotation', vol('dapi-missing-annotation', { downwardAPI: { items: [{ path: 'a', fieldRef: { fieldPath: "metadata.annotations['nope']" } }] } }), 'runs'],
    ['emptydir-tiny-tmpfs', vol('emptydir-tiny-tmpfs', { emptyDir: { medium: 'Memory', sizeLimit: '1' } }), 'runs'],
  ];
}

const GOOD = 'good';
/** The manifest corpus's runtime-hostile documents: what each must show through the API server too. */
const RUNTIME_EXPECT: Record<string, Expect> = {
  'rt-missing-cm.yaml': /^CreateContainerConfigError$/,
  'rt-missing-secret.yaml': /^CreateContainerConfigError$/,
  'rt-never-pull.yaml': /^ErrImageNeverPull$/,
  'rt-tiny-memory.yaml': /Error|BackOff|OOMKilled/,
  'rt-hp-file-on-dir.yaml': /^FailedMount$/,
  'rt-hp-dir-on-file.yaml': /^FailedMount$/,
  'rt-subpath-symlink.yaml': /^CreateContainerConfigError$/,
};

describe.skipIf(!up)('bad-input corpus through the API server (berth as the node)', () => {
  const subs: Submission[] = [];
  const before = new Map<string, string[]>();
  let tmp = '';
  let canaryDir = '';
  const CANARY_TEXT = `canary-${RUN}`;
  const LISTED = ['/', '/etc', '/root', '/var/tmp'];
  const ls = (d: string): string[] => (existsSync(d) ? readdirSync(d).sort() : []);

  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', '--sync-frequency=3s', '--node-status-update-frequency=2s'],
    replaceNode: true,
    hookTimeoutMs: 90_000,
    beforeStart: async () => {
      tmp = path.dirname(berth.rootDir);
      canaryDir = path.join(tmp, 'canary');
      mkdirSync(canaryDir, { recursive: true });
      writeFileSync(path.join(canaryDir, 'secret.txt'), CANARY_TEXT);
      symlinkSync(canaryDir, path.join(tmp, 'link-to-dir'));
      symlinkSync(path.join(canaryDir, 'secret.txt'), path.join(tmp, 'link-to-file'));
      for (const d of [...LISTED, '/tmp']) before.set(d, ls(d));
      await kubectl(['create', 'namespace', NS]);
      await kubectl(['create', 'configmap', '-n', NS, `${RUN}-cm`, '--from-literal=k=v']);
      await kubectl(['create', 'secret', 'generic', '-n', NS, `${RUN}-secret`, '--from-literal=k=v']);
    },
    // The API objects go first and without waiting (a pod left bound to this node would reach the next suite's berth),
    // then berth and its containers, then the Node.
    beforeCleanup: async () => {
      await kubectl(['patch', 'pod', '-n', NS, 'finalized', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
      await kubectl(['delete', 'pods', '-n', NS, '--all', '--grace-period=0', '--force', '--wait=false'], { timeoutMs: 60_000 }).catch(() => undefined);
      await kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => undefined);
    },
    afterCleanup: () => kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined),
    cleanupTimeoutMs: 240_000,
  });

  const listPods = async (): Promise<Pod[]> => (JSON.parse((await api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=berth-e2e%3D${RUN}`)).body) as { items: Pod[] }).items;
  const listEvents = async (): Promise<Event[]> => (JSON.parse((await api('GET', `/api/v1/namespaces/${NS}/events`)).body) as { items: Event[] }).items;
  /** Every reason a pod shows: pod-level, container waiting/terminated (not the transient ones), Warning Events. */
  const reasonsOf = (p: Pod, events: Event[]): string[] => {
    const st = p.status ?? {};
    const ctr = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])].flatMap((s) => [s.state?.waiting?.reason, s.state?.terminated?.reason, s.lastState?.terminated?.reason]);
    const ev = events.filter((e) => e.involvedObject.uid === p.metadata?.uid && e.type === 'Warning').map((e) => e.reason);
    // MissingClusterDNS is about the node's flags (no --cluster-dns here), not the pod: it does not count
    return [st.reason, ...ctr, ...ev].filter((r): r is string => !!r && !['ContainerCreating', 'PodInitializing', 'Completed', 'MissingClusterDNS'].includes(r));
  };
  const isReady = (p: Pod): boolean => p.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True';
  const isRunning = (p: Pod): boolean => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((s) => !!s.state?.running);

  it('a well-formed pod runs before the corpus arrives', async () => {
    const r = await api('POST', `/api/v1/namespaces/${NS}/pods`, JSON.stringify(podDoc(GOOD, { containers: [c()] })));
    expect(r.status).toBe(201);
    await waitFor(async () => (await listPods()).find((p) => p.metadata?.name === GOOD && isRunning(p)), 60_000, { what: 'good pod Running', intervalMs: 500 });
  }, 90_000);

  it('submits at least 200 hostile pods: each is refused by the API server with its message, or stored', async () => {
    const opts = { image: IMAGE, tmp, canaryDir };
    let n = 0;
    for (const [f, text] of rejectedCorpus(opts)) subs.push(adapt(`manifest:${f}`, text, 'any', n++));
    for (const [f, { text }] of runtimeCorpus(opts)) subs.push(adapt(`manifest:${f}`, text, RUNTIME_EXPECT[f] ?? 'any', n++));
    for (const [id, doc, exp] of apiCorpus(tmp, canaryDir)) subs.push(adapt(`api:${id}`, JSON.stringify(doc), exp, n++));
    // raw invalid UTF-8 inside a JSON string: the server's decoder replaces it, the pod must run
    subs.push({
      id: 'api:invalid-utf8-annotation',
      body: Buffer.concat([Buffer.from(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"utf8-${n}","namespace":"${NS}","labels":{"berth-e2e":"${RUN}"},"annotations":{"bad":"`), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from(`"}},"spec":${JSON.stringify({ nodeName: NODE, terminationGracePeriodSeconds: 1, containers: [c({ env: [{ name: 'B', value: 'x' }] })] })}}`)]),
      contentType: 'application/json',
      expect: 'runs',
    });
    expect(subs.length).toBeGreaterThanOrEqual(200);
    for (let i = 0; i < subs.length; i += 4)
      await Promise.all(
        subs.slice(i, i + 4).map(async (s) => {
          const r = await api('POST', `/api/v1/namespaces/${NS}/pods`, s.body, s.contentType);
          if (r.status === 201) {
            const p = JSON.parse(r.body) as Pod;
            s.accepted = { name: p.metadata!.name!, uid: p.metadata!.uid! };
          } else {
            expect(r.status, `${s.id}: ${r.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
            expect(r.status, `${s.id}: ${r.body.slice(0, 200)}`).toBeLessThan(500);
            s.refused = `${r.status} ${messageOf(r)}`;
          }
        }),
      );
    const accepted = subs.filter((s) => s.accepted);
    console.log(`bad-input corpus through the API server: ${subs.length} submitted, ${accepted.length} stored and sent to berth, ${subs.length - accepted.length} refused by the API server`);
    console.log(`stored: ${accepted.map((s) => s.id).join(', ')}`);
    // every API-only pod is stored or refused as expected (a pod meant to reach berth that did not would prove nothing)
    expect(subs.filter((s) => s.id.startsWith('api:') && !s.accepted !== (s.expect === 'refused')).map((s) => `${s.id}: ${s.refused ?? 'stored'}`)).toEqual([]);
  }, 120_000);

  it('every stored pod reaches berth and shows an upstream reason or runs, as expected', async () => {
    const accepted = subs.filter((s) => s.accepted);
    let problems: string[] = [];
    const verdict = (pods: Pod[], events: Event[]): string[] =>
      accepted.flatMap((s) => {
        const p = pods.find((x) => x.metadata?.uid === s.accepted!.uid);
        if (!p) return [`${s.id}: gone from the API server`];
        const reasons = reasonsOf(p, events);
        if (s.expect === 'runs') return isRunning(p) ? [] : [`${s.id}: expected Running, got ${p.status?.phase} [${reasons.join(',')}]`];
        if (s.expect === 'ready') return isRunning(p) && isReady(p) ? [] : [`${s.id}: expected Ready, got ${p.status?.phase} [${reasons.join(',')}]`];
        if (s.expect === 'any') return isRunning(p) || reasons.length ? [] : [`${s.id}: no reason yet (${p.status?.phase})`];
        return reasons.some((r) => (s.expect as RegExp).test(r)) ? [] : [`${s.id}: expected ${String(s.expect)}, got ${p.status?.phase} [${reasons.join(',')}]`];
      });
    await waitFor(
      async () => {
        problems = verdict(await listPods(), await listEvents());
        return problems.length === 0;
      },
      60_000,
      { what: 'a reason for every stored pod', intervalMs: 1000 },
    ).catch(() => undefined);
    const pods = await listPods();
    const events = await listEvents();
    const table = accepted.map((s) => {
      const p = pods.find((x) => x.metadata?.uid === s.accepted!.uid);
      const msgs = events.filter((e) => e.involvedObject.uid === s.accepted!.uid && e.type === 'Warning' && e.reason !== 'MissingClusterDNS').map((e) => e.message);
      const waiting = [...(p?.status?.initContainerStatuses ?? []), ...(p?.status?.containerStatuses ?? [])].map((x) => x.state?.waiting?.message ?? x.state?.terminated?.message).filter(Boolean);
      return `${s.id} -> ${p && isRunning(p) ? 'Running ' : ''}${p ? reasonsOf(p, events).slice(0, 3).join(',') : 'gone'} | ${[p?.status?.message, ...waiting, ...msgs].filter(Boolean).join(' | ').slice(0, 240)}`;
    });
    console.log(table.join('\n'));
    expect(problems).toEqual([]);
  }, 90_000);

  it('objects a kubelet must not trust: an orphaned mirror-pod annotation, a blocking finalizer, an overwritten status', async () => {
    // a pod that claims to mirror a static pod that does not exist: the kubelet deletes it (as upstream does)
    const mirror = await api('POST', `/api/v1/namespaces/${NS}/pods`, JSON.stringify(podDoc('fake-mirror', { containers: [c()] }, { annotations: { 'kubernetes.io/config.mirror': 'bogus-hash' } })));
    expect(mirror.status).toBe(201);
    // a pod whose deletion a finalizer holds: berth stops its containers and carries on
    const fin = await api('POST', `/api/v1/namespaces/${NS}/pods`, JSON.stringify(podDoc('finalized', { containers: [c()] }, { finalizers: ['example.com/hold'] })));
    expect(fin.status).toBe(201);
    const tampered = await api('POST', `/api/v1/namespaces/${NS}/pods`, JSON.stringify(podDoc('tampered', { containers: [c()] })));
    expect(tampered.status).toBe(201);
    await waitFor(async () => (await listPods()).filter((p) => ['finalized', 'tampered'].includes(p.metadata!.name!) && isRunning(p)).length === 2, 60_000, { what: 'finalized and tampered Running', intervalMs: 500 });
    await waitFor(async () => !(await listPods()).some((p) => p.metadata?.name === 'fake-mirror'), 60_000, { what: 'the orphaned mirror pod deleted', intervalMs: 500 });

    // an admin overwrites the status with nonsense: berth puts the truth back
    const patch = await api(
      'PATCH',
      `/api/v1/namespaces/${NS}/pods/tampered/status`,
      JSON.stringify({ status: { phase: 'Succeeded', reason: 'Tampered', message: 'x'.repeat(10_000), containerStatuses: [{ name: 'ghost', image: 'x', imageID: '', ready: true, restartCount: -5, state: { running: {} } }] } }),
      'application/merge-patch+json',
    );
    expect(patch.status).toBe(200);
    await waitFor(
      async () => {
        const p = (await listPods()).find((x) => x.metadata?.name === 'tampered');
        return p && isRunning(p) && p.status?.reason === undefined && p.status?.containerStatuses?.map((s) => s.name).join() === 'c';
      },
      45_000,
      { what: 'the tampered status corrected', intervalMs: 1000 },
    );

    const del = await api('DELETE', `/api/v1/namespaces/${NS}/pods/finalized`, JSON.stringify({ gracePeriodSeconds: 1 }));
    expect(del.status).toBe(200);
    await waitFor(
      async () => {
        const p = (await listPods()).find((x) => x.metadata?.name === 'finalized');
        return p?.metadata?.deletionTimestamp && (p.status?.containerStatuses ?? []).every((s) => !s.state?.running);
      },
      45_000,
      { what: 'the finalized pod stopped', intervalMs: 1000 },
    );
    expect(berth.alive()).toBe(true);
  }, 180_000);

  it('berth stays up, the good pod never restarted, and nothing was written outside berth directories', async () => {
    expect(berth.alive()).toBe(true);
    const good = (await listPods()).find((p) => p.metadata?.name === GOOD);
    expect(good && isRunning(good)).toBe(true);
    expect(good?.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    expect(good?.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    // the canary dir still holds only the canary; the listed dirs are unchanged; /tmp got nothing of ours
    expect(readdirSync(canaryDir)).toEqual(['secret.txt']);
    for (const d of LISTED) expect({ dir: d, entries: ls(d) }).toEqual({ dir: d, entries: before.get(d) });
    const newTmp = ls('/tmp').filter((e) => !before.get('/tmp')!.includes(e));
    expect(newTmp.filter((e) => e.includes(MARK) || /escape|pwned|^abs$/.test(e))).toEqual([]);
    expect(readdirSync(tmp).sort()).toEqual(['berth.log', 'canary', 'link-to-dir', 'link-to-file', 'manifests', 'root'].sort());
    // no file carrying this run's mark anywhere on the host outside berth's root (containers' own layers excepted)
    const found = execFileSync(
      'find',
      ['/', '-xdev', '(', '-path', '/proc', '-o', '-path', '/sys', '-o', '-path', '/var/lib/docker', '-o', '-path', '/work', '-o', '-path', berth.rootDir, ')', '-prune', '-o', '-name', `*${MARK}*`, '-print'],
      { encoding: 'utf8', timeout: 60_000 },
    ).trim();
    expect(found).toBe('');
    expect(berth.logs()).not.toContain(CANARY_TEXT);
    expect(berth.logs()).not.toMatch(/uncaught|unhandled rejection|TypeError|RangeError/i);
  }, 90_000);
});
