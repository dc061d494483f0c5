// Issue #9 campaign item 9 against the rig's real kube-apiserver, berth as the node (debug logging on):
// (a) berth's own state under --root-dir is private: the root dir, pods/ and every pod dir are 0700 and every file
//     berth keeps for itself is at most 0600 (rule and its upstream exceptions in checkModes below);
// (b) a Secret's value (a random marker, also in base64) used through secretKeyRef, envFrom, a secret volume and a
//     projected volume, in pods that fail in several ways (command not found with the secret in its args, a failing
//     liveness probe, a missing key beside a good one, a container crashing with it in its environment) appears in none of:
//     berth's log output, Events, `berth pods -o json`, pod status messages, Docker labels of berth's containers.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import { docker, execCode, REPO, shContainer } from '../helpers/berth.ts';
import { e2eNodeName, kubectl, kubectlApply, requireCluster, uniqueName, useClusterBerth, waitFor } from './helpers/cluster.ts';

const up = await requireCluster();
const NODE = e2eNodeName;
const RUN = uniqueName('hygiene');
const NS = RUN;
const SECRET = `s3cr3t-${randomBytes(12).toString('hex')}`;
const SECRET_B64 = Buffer.from(SECRET).toString('base64');
const IMAGE = process.env.BERTH_TEST_IMAGE ?? 'berth-test/busybox:latest';

/** Where SECRET (raw or base64) occurs in `text`: the surrounding 80 characters, for the failure message. */
function leaks(where: string, text: string): string[] {
  const out: string[] = [];
  for (const needle of [SECRET, SECRET_B64]) {
    let i = text.indexOf(needle);
    while (i >= 0 && out.length < 5) {
      out.push(`${where}: …${text.slice(Math.max(0, i - 80), i + needle.length + 20)}…`);
      i = text.indexOf(needle, i + 1);
    }
  }
  return out;
}

export interface ModeProblem {
  path: string;
  mode: string;
  rule: string;
}

/**
 * The rule (paths relative to --root-dir; modes without the file type):
 *  - berth's own state: every directory at most 0700 and every file at most 0600 (no group or other bits at all);
 *    the root dir, pods/ and each pods/<uid>/ must be exactly private (0700), which puts everything below out of
 *    other users' reach;
 *  - upstream exceptions, all below those private dirs:
 *    pods/<uid>/etc-hosts and resolv.conf are bind-mounted into the containers: 0644 (kubelet's managed hosts file);
 *    pods/<uid>/containers/<name>/<id> is the termination-message file a non-root container writes: 0666;
 *    pods/<uid>/volumes/** and volume-subpaths/** are the pods' volume payloads: they keep upstream's modes
 *    (emptyDir 0777, configMap/secret/projected dirs 0755 with files at defaultMode/item mode; checked separately);
 *    logs/** and containers/** are the /var/log/pods and /var/log/containers trees (dirs 0755, symlinks): upstream's.
 *  - nothing is group- or world-writable except emptyDir dirs and the termination-message file.
 */
export function checkModes(rootDir: string, seen: Record<string, number> = {}): ModeProblem[] {
  const problems: ModeProblem[] = [];
  const count = (k: string): void => void (seen[k] = (seen[k] ?? 0) + 1);
  const walk = (rel: string): void => {
    const abs = path.join(rootDir, rel);
    const st = lstatSync(abs);
    const mode = st.mode & 0o7777;
    const m = (rule: string): void => void problems.push({ path: rel || '.', mode: `0${mode.toString(8)}`, rule });
    const parts = rel.split(path.sep).filter(Boolean);
    const [top, , sub] = parts;
    const isPodDir = top === 'pods' && parts.length === 2;
    const payload = top === 'pods' && (sub === 'volumes' || sub === 'volume-subpaths') && parts.length > 3;
    const logTree = top === 'logs' || top === 'containers';
    const mountedFile = top === 'pods' && parts.length === 3 && (sub === 'etc-hosts' || sub === 'resolv.conf');
    const terminationLog = top === 'pods' && sub === 'containers' && parts.length === 5 && st.isFile();
    if (st.isSymbolicLink()) {
      count('symlink');
      if (!logTree && !payload) m('a symlink in berth state outside the log trees and volume payloads');
    } else if (rel === '' || (top === 'pods' && parts.length === 1) || isPodDir) {
      count('private root/pods dir');
      if (mode !== 0o700) m('root dir, pods/ and pods/<uid>/ must be 0700');
    } else if (terminationLog) {
      count('termination-message file');
      if (mode !== 0o666) m('termination-message file: 0666 as upstream');
    } else if (mountedFile) {
      count('etc-hosts/resolv.conf');
      if (mode & 0o133) m('etc-hosts / resolv.conf: at most 0644');
    } else if (payload) {
      count(st.isFile() ? 'payload file' : 'payload dir');
      if (st.isFile() && mode & 0o022) m('volume payload file writable by group/other');
    } else if (logTree) {
      count('log tree');
      if (mode & 0o022) m('log tree: not group/other writable');
    } else if (st.isDirectory()) {
      count('state dir');
      if (mode & 0o077) m('berth state dir: at most 0700');
    } else {
      count('state file');
      if (mode & 0o177) m('berth state file: at most 0600');
    }
    if (st.isDirectory() && !st.isSymbolicLink()) for (const e of readdirSync(abs)) walk(path.join(rel, e));
  };
  walk('');
  return problems;
}

describe.skipIf(!up)('secrets and state files stay private (berth as the node)', () => {
  const berth = useClusterBerth({
    node: NODE,
    extraArgs: ['--node-ip=127.0.0.1', '--sync-frequency=3s', '--log-level=debug'],
    replaceNode: true,
    hookTimeoutMs: 90_000,
    beforeStart: async () => {
      await kubectl(['create', 'namespace', NS]);
      await kubectl(['create', 'secret', 'generic', '-n', NS, 'creds', `--from-literal=password=${SECRET}`, `--from-literal=PASS_FROM=${SECRET}`]);
      await kubectl(['create', 'configmap', '-n', NS, 'conf', '--from-literal=k=v']);
      // the projected token needs the namespace's default ServiceAccount (made by the controller manager)
      await waitFor(() => kubectl(['get', 'serviceaccount', '-n', NS, 'default']), 30_000, { what: 'default ServiceAccount', intervalMs: 500 });
    },
    // API objects first, without waiting (a pod left bound to this node would reach the next suite's berth)
    beforeCleanup: async () => {
      await kubectl(['delete', 'pods', '-n', NS, '--all', '--grace-period=0', '--force', '--wait=false'], { timeoutMs: 60_000 }).catch(() => undefined);
      await kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => undefined);
    },
    afterCleanup: () => kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']).catch(() => undefined),
    cleanupTimeoutMs: 180_000,
  });

  const secretEnv = { env: [{ name: 'PASS', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }], envFrom: [{ secretRef: { name: 'creds' } }] };
  const mounts = {
    volumeMounts: [
      { name: 'sec', mountPath: '/sec' },
      { name: 'proj', mountPath: '/proj' },
      { name: 'conf', mountPath: '/conf' },
    ],
  };
  const volumes = [
    { name: 'sec', secret: { secretName: 'creds', defaultMode: 0o400 } },
    { name: 'conf', configMap: { name: 'conf' } },
    {
      name: 'proj',
      projected: {
        sources: [
          { secret: { name: 'creds', items: [{ key: 'password', path: 'pw', mode: 0o440 }] } },
          { configMap: { name: 'conf' } },
          { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
        ],
      },
    },
  ];
  const pod = (name: string, containers: Record<string, unknown>[]): string =>
    JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS }, spec: { nodeName: NODE, serviceAccountName: 'default', terminationGracePeriodSeconds: 1, volumes, containers } });

  it('pods using the secret every way fail in several ways; none of it shows the value', async () => {
    await kubectlApply(
      pod('leaky', [
        // the secret in the args of a command that does not exist
        { name: 'bad-cmd', image: IMAGE, imagePullPolicy: 'Never', command: ['/no/such/binary'], args: ['--password=$(PASS)'], ...secretEnv, ...mounts },
        // a liveness probe that fails while the secret is in the environment (its output is not the secret)
        shContainer('bad-probe', 'sleep 3600', { ...secretEnv, ...mounts, livenessProbe: { exec: { command: ['sh', '-c', 'test -z "$PASS"'] }, periodSeconds: 1, failureThreshold: 1 } }),
        // a key that is not in the Secret, beside one that is
        shContainer('missing-key', 'sleep 3600', { env: [...secretEnv.env, { name: 'NOPE', valueFrom: { secretKeyRef: { name: 'creds', key: 'nope' } } }] }),
        // crashes with the secret in its environment and volumes
        shContainer('crasher', 'cat /sec/password /proj/pw >/dev/null; exit 3', { ...secretEnv, ...mounts }),
      ]),
    );
    const getPod = async (): Promise<Pod> => JSON.parse(await kubectl(['get', 'pod', '-n', NS, 'leaky', '-o', 'json'])) as Pod;
    await waitFor(
      async () => {
        const st = new Map(((await getPod()).status?.containerStatuses ?? []).map((s) => [s.name, s]));
        const w = (n: string): string | undefined => st.get(n)?.state?.waiting?.reason ?? st.get(n)?.lastState?.terminated?.reason;
        return (
          /RunContainerError|CrashLoopBackOff|StartError|ContainerCannotRun/.test(String(w('bad-cmd'))) &&
          (st.get('bad-probe')?.restartCount ?? 0) >= 1 &&
          w('missing-key') === 'CreateContainerConfigError' &&
          (st.get('crasher')?.restartCount ?? 0) >= 1
        );
      },
      90_000,
      { what: 'every failure of the leaky pod', intervalMs: 1000 },
    );
    const events = await kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    expect(events).toMatch(/Unhealthy/);
    expect(events).toMatch(/couldn't find key nope in Secret/);
    const podJson = JSON.stringify(await getPod());
    const cli = await execCode(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(REPO, 'src/cli/main.ts'), 'pods', '-o', 'json', `--read-only-port=${berth.port}`]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('"leaky"');
    const labels = (await berth.containers()).map((c) => JSON.stringify(c.Labels));
    expect(labels.length).toBeGreaterThan(0);
    const found = [
      ...leaks('berth log', berth.logs()),
      ...leaks('events', events),
      ...leaks('pod status (API)', podJson),
      ...leaks('berth pods -o json', cli.stdout + cli.stderr),
      ...leaks('docker labels', labels.join('\n')),
    ];
    expect(found).toEqual([]);
    // the secret did reach the containers (else the test above would prove nothing)
    const sec = (await berth.containers()).find((c) => c.Labels['io.kubernetes.container.name'] === 'bad-probe' && c.State === 'running');
    expect(sec).toBeDefined();
    const env = (await docker.getContainer(sec!.Id).inspect()).Config.Env ?? [];
    expect(env).toContain(`PASS=${SECRET}`);
  }, 150_000);

  it('a secret expanded into the program name itself ($(PASS) as argv[0]) is not echoed by the start error', async () => {
    await kubectlApply(pod('argv0', [{ name: 'argv0', image: IMAGE, imagePullPolicy: 'Never', command: ['$(PASS)'], ...secretEnv }]));
    const getPod = async (): Promise<Pod> => JSON.parse(await kubectl(['get', 'pod', '-n', NS, 'argv0', '-o', 'json'])) as Pod;
    await waitFor(
      async () => {
        const s = (await getPod()).status?.containerStatuses?.[0];
        return (s?.restartCount ?? 0) >= 1 || /RunContainerError|CrashLoopBackOff/.test(String(s?.state?.waiting?.reason));
      },
      60_000,
      { what: 'argv0 failing to start', intervalMs: 1000 },
    );
    const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=argv0', '-o', 'json']);
    expect(events).toMatch(/executable file not found|no such file/);
    const found = [...leaks('berth log', berth.logs()), ...leaks('events', events), ...leaks('pod status (API)', JSON.stringify(await getPod())), ...leaks('/berth/pods', JSON.stringify(await berth.pods()))];
    expect(found).toEqual([]);
  }, 90_000);

  it('berth state is 0700/0600 and volume payloads keep their defaultMode and item modes', async () => {
    const seen: Record<string, number> = {};
    const problems = checkModes(berth.rootDir, seen);
    console.log(`modes checked under --root-dir: ${JSON.stringify(seen)}`);
    expect(problems).toEqual([]);
    // the walk saw every class the rule names (else it would pass on an empty tree)
    for (const k of ['private root/pods dir', 'state dir', 'termination-message file', 'etc-hosts/resolv.conf', 'payload file', 'log tree'])
      expect({ class: k, seen: (seen[k] ?? 0) > 0 }).toEqual({ class: k, seen: true });
    const uid = await kubectl(['get', 'pod', '-n', NS, 'leaky', '-o', 'jsonpath={.metadata.uid}']);
    const podDir = path.join(berth.rootDir, 'pods', uid.trim());
    const volumes = path.join(podDir, 'volumes');
    const mode = (p: string): string => `0${(lstatSync(p).mode & 0o777).toString(8)}`;
    // secret volume: defaultMode 0400 on the file behind the ..data link; projected: item mode 0440, token 0644 (no fsGroup)
    expect(mode(path.join(volumes, 'kubernetes.io~secret', 'sec', '..data', 'password'))).toBe('0400');
    expect(mode(path.join(volumes, 'kubernetes.io~projected', 'proj', '..data', 'pw'))).toBe('0440');
    expect(mode(path.join(volumes, 'kubernetes.io~projected', 'proj', '..data', 'token'))).toBe('0644');
    expect(mode(path.join(volumes, 'kubernetes.io~configmap', 'conf', '..data', 'k'))).toBe('0644');
  }, 60_000);

  it('the mode check fails on a world-readable state file and a group-readable pod dir', () => {
    // proves checkModes can fail: a fixture tree with both mistakes
    const tmp = path.join(path.dirname(berth.rootDir), 'mode-fixture');
    mkdirSync(path.join(tmp, 'pods', 'u1'), { recursive: true, mode: 0o700 });
    chmodSync(tmp, 0o700);
    chmodSync(path.join(tmp, 'pods'), 0o700);
    chmodSync(path.join(tmp, 'pods', 'u1'), 0o750);
    writeFileSync(path.join(tmp, 'state.json'), '{}', { mode: 0o644 });
    chmodSync(path.join(tmp, 'state.json'), 0o644);
    const found = checkModes(tmp).map((p) => `${p.path} ${p.mode}`).sort();
    rmSync(tmp, { recursive: true, force: true });
    expect(found).toEqual(['pods/u1 0750', 'state.json 0644']);
  });
});
