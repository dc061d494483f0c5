// Issue #12 (security context, gRPC probes, pod-level resources) on the real dockerd through the berth CLI:
// runAsNonRoot refused with upstream's CreateContainerConfigError message, fsGroup/supplementalGroups in `id`,
// sysctls split safe/unsafe (SysctlForbidden at admission), seccomp/procMount seen from /proc, AppArmor
// refused on this AppArmor-less host, a gRPC readiness probe against a health server this test runs on the
// host, the pod cgroup's summed limits read back from the cgroup files, and activeDeadlineSeconds.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { docker, manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';
import { HealthServer } from '../helpers/grpc-health.ts';

const finished = (p: PodWithStatus | undefined): false | PodWithStatus => (p?.status.phase === 'Succeeded' || p?.status.phase === 'Failed') && p;

describe('security context, gRPC probes and pod cgroups on the real Docker Engine', () => {
  // --node-ip=127.0.0.1: a hostNetwork pod's IP (the gRPC probe's target) is then loopback.
  const health = new HealthServer();
  let healthPort = 0;
  const berth = useBerth({
    extraArgs: ['--allowed-unsafe-sysctls=kernel.msgmax', '--node-ip=127.0.0.1'],
    beforeStart: async () => {
      healthPort = await health.start('127.0.0.1');
    },
    beforeCleanup: () => health.stop(),
    hookTimeoutMs: 60_000,
  });
  const { write } = manifestFiles(berth);

  it('runAsNonRoot with an image running as root: CreateContainerConfigError with upstream message, a Failed event, no container', async () => {
    write('nonroot.yaml', podManifest('nonroot', { securityContext: { runAsNonRoot: true }, containers: [shContainer('c', 'sleep 3600')] }));
    const p = await waitFor(async () => {
      const x = await berth.pod('nonroot');
      return x?.status.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' && x;
    }, 40_000, 'CreateContainerConfigError');
    const msg = `container has runAsNonRoot and image will run as root (pod: "nonroot-${berth.nodeName}_default(${p.metadata?.uid})", container: c)`;
    expect(p.status.containerStatuses?.[0]?.state?.waiting?.message).toBe(msg);
    const ev = (await berth.pods()).events.find((e) => e.object.name === `nonroot-${berth.nodeName}` && e.reason === 'Failed');
    expect(ev).toMatchObject({ type: 'Warning', message: `Error: ${msg}` });
    expect((await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `nonroot-${berth.nodeName}` && c.Labels['io.kubernetes.container.name'] === 'c')).toEqual([]);
  }, 60_000);

  it('runAsNonRoot with an image whose USER is a name: CreateContainerConfigError (cannot verify)', async () => {
    // A child of the busybox image with USER nobody (committed from a never-started container).
    const have = await docker.getImage('berth-test/busybox-nobody:latest').inspect().then(() => true, () => false);
    if (!have) {
      const base = await docker.createContainer({ Image: 'berth-test/busybox:latest', Cmd: ['true'], Labels: { 'io.berth.node': berth.nodeName } });
      await base.commit({ repo: 'berth-test/busybox-nobody', tag: 'latest', changes: 'USER nobody' });
      await base.remove();
    }
    write('named.yaml', podManifest('named', { securityContext: { runAsNonRoot: true }, containers: [{ ...shContainer('c', 'sleep 3600'), image: 'berth-test/busybox-nobody:latest' }] }));
    const p = await waitFor(async () => {
      const x = await berth.pod('named');
      return x?.status.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' && x;
    }, 40_000, 'CreateContainerConfigError');
    expect(p.status.containerStatuses?.[0]?.state?.waiting?.message).toBe(
      `container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: "named-${berth.nodeName}_default(${p.metadata?.uid})", container: c)`,
    );
  }, 60_000);

  it('a Localhost seccomp profile from <root-dir>/seccomp is enforced', async () => {
    mkdirSync(path.join(berth.rootDir, 'seccomp'), { recursive: true });
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] };
    writeFileSync(path.join(berth.rootDir, 'seccomp', 'no-mkdir.json'), JSON.stringify(profile, null, 2));
    write(
      'localhost.yaml',
      podManifest('localhost', {
        restartPolicy: 'Never',
        securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'no-mkdir.json' } },
        containers: [shContainer('c', 'if mkdir /tmp/x 2>/dev/null; then echo made; else echo denied; fi > /dev/termination-log')],
      }),
    );
    const p = await waitFor(async () => finished(await berth.pod('localhost')), 40_000, 'localhost finished');
    expect(p.status.containerStatuses?.[0]?.state?.terminated?.message).toBe('denied\n');
  }, 60_000);

  it('runAsNonRoot with runAsUser 1001 runs; fsGroup and supplementalGroups are in the groups; seccomp unconfined by default', async () => {
    write(
      'groups.yaml',
      podManifest('groups', {
        restartPolicy: 'Never',
        securityContext: { runAsNonRoot: true, runAsUser: 1001, fsGroup: 2000, supplementalGroups: [3000] },
        containers: [shContainer('c', 'echo "$(id -u) $(id -G) $(grep ^Seccomp: /proc/self/status | tr -d "\\t ")" > /dev/termination-log')],
      }),
    );
    const p = await waitFor(async () => finished(await berth.pod('groups')), 40_000, 'groups finished');
    const t = p.status.containerStatuses?.[0]?.state?.terminated;
    expect(t?.exitCode, t?.message).toBe(0);
    const [uid, ...rest] = (t?.message ?? '').trim().split(' ');
    expect(uid).toBe('1001');
    expect(rest.slice(0, -1)).toEqual(expect.arrayContaining(['2000', '3000']));
    expect(rest.at(-1)).toBe('Seccomp:0');
  }, 60_000);

  it('seccomp RuntimeDefault applies Docker’s default filter; procMount Unmasked leaves nothing in /proc masked or read-only', async () => {
    write(
      'seccomp.yaml',
      podManifest('seccomp', {
        restartPolicy: 'Never',
        containers: [
          shContainer('rd', 'grep ^Seccomp: /proc/self/status | tr -d "\\t " > /dev/termination-log', { securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }),
          // Mounts over paths under /proc: Docker's masked (/dev/null, tmpfs) and read-only ones (/proc/sys, …).
          shContainer('um', `awk '$5 ~ /^\\/proc\\// {n++} END {print n+0}' /proc/self/mountinfo > /dev/termination-log`, { securityContext: { procMount: 'Unmasked' } }),
          shContainer('dm', `awk '$5 ~ /^\\/proc\\// {n++} END {print n+0}' /proc/self/mountinfo > /dev/termination-log`),
        ],
      }),
    );
    const p = await waitFor(async () => finished(await berth.pod('seccomp')), 40_000, 'seccomp finished');
    const msg = (name: string): string | undefined => p.status.containerStatuses?.find((c) => c.name === name)?.state?.terminated?.message?.trim();
    expect(msg('rd')).toBe('Seccomp:2');
    expect(msg('um')).toBe('0');
    expect(Number(msg('dm'))).toBeGreaterThan(0);
  }, 60_000);

  it('sysctls: safe and allowed unsafe ones are set in the pod, an unsafe one is rejected with SysctlForbidden', async () => {
    write(
      'sysctl-ok.yaml',
      podManifest('sysctl-ok', {
        restartPolicy: 'Never',
        securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '500' }, { name: 'kernel.msgmax', value: '16384' }] },
        containers: [shContainer('c', 'echo "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) $(cat /proc/sys/kernel/msgmax)" > /dev/termination-log')],
      }),
    );
    write(
      'sysctl-bad.yaml',
      podManifest('sysctl-bad', { securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '1024' }] }, containers: [shContainer('c', 'sleep 3600')] }),
    );
    const ok = await waitFor(async () => finished(await berth.pod('sysctl-ok')), 40_000, 'sysctl-ok finished');
    expect(ok.status.containerStatuses?.[0]?.state?.terminated?.message).toBe('500 16384\n');
    const bad = await waitFor(async () => finished(await berth.pod('sysctl-bad')), 20_000, 'sysctl-bad rejected');
    expect(bad.status).toMatchObject({ phase: 'Failed', reason: 'SysctlForbidden', message: 'Pod forbidden sysctl: "net.core.somaxconn" not allowlisted' });
    expect((await berth.containers()).filter((c) => c.Labels['io.kubernetes.pod.name'] === `sysctl-bad-${berth.nodeName}`)).toEqual([]);
  }, 60_000);

  it('a pod asking for an AppArmor profile on a host without AppArmor is rejected as upstream', async () => {
    expect(existsSync('/sys/module/apparmor/parameters/enabled')).toBe(false);
    write(
      'apparmor.yaml',
      podManifest('apparmor', { containers: [shContainer('c', 'sleep 3600', { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } })] }),
    );
    const p = await waitFor(async () => finished(await berth.pod('apparmor')), 20_000, 'apparmor rejected');
    expect(p.status).toMatchObject({ phase: 'Failed', reason: 'AppArmor', message: 'Pod Cannot enforce AppArmor: AppArmor is not enabled on the host' });
  }, 30_000);

  it('a gRPC readiness probe follows the health server: ready while SERVING, unready on NOT_SERVING', async () => {
    write(
      'grpc.yaml',
      podManifest('grpc', {
        hostNetwork: true,
        containers: [shContainer('c', 'sleep 3600', { readinessProbe: { grpc: { port: healthPort, service: 'berth' }, periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 2 } })],
      }),
    );
    health.statuses.set('berth', 'SERVING');
    await waitFor(async () => (await berth.pod('grpc'))?.status.containerStatuses?.[0]?.ready === true, 40_000, 'grpc ready');
    health.statuses.set('berth', 'NOT_SERVING');
    await waitFor(async () => (await berth.pod('grpc'))?.status.containerStatuses?.[0]?.ready === false, 20_000, 'grpc unready');
    const ev = (await berth.pods()).events.find((e) => e.object.name === `grpc-${berth.nodeName}` && e.reason === 'Unhealthy');
    expect(ev).toMatchObject({ type: 'Warning', message: 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' });
  }, 60_000);

  it('the pod cgroup gets the sum of its containers’ limits (memory and CFS quota)', async () => {
    const limits = { cpu: '100m', memory: '32Mi' };
    write(
      'cgroup.yaml',
      podManifest('cgroup', { containers: [shContainer('a', 'sleep 3600', { resources: { limits } }), shContainer('b', 'sleep 3600', { resources: { limits } })] }),
    );
    const p = await waitFor(async () => {
      const x = await berth.pod('cgroup');
      return x?.status.containerStatuses?.every((c) => c.state?.running) && x.status.containerStatuses.length === 2 && x;
    }, 40_000, 'cgroup running');
    expect(p.status.qosClass).toBe('Guaranteed');
    const dir = `kubepods/pod${p.metadata?.uid}`;
    expect(readFileSync(`/sys/fs/cgroup/memory/${dir}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 * 2 ** 20));
    expect(readFileSync(`/sys/fs/cgroup/cpu/${dir}/cpu.cfs_quota_us`, 'utf8').trim()).toBe('20000');
  }, 60_000);

  it('activeDeadlineSeconds: the pod is reported Failed / DeadlineExceeded at once, then killed after its grace period', async () => {
    // The container ignores SIGTERM, so the kill takes the whole 20 s grace period: the status must not wait for it.
    write('deadline.yaml', podManifest('deadline', { activeDeadlineSeconds: 3, terminationGracePeriodSeconds: 20, containers: [shContainer('c', 'trap "" TERM; while true; do sleep 1; done')] }));
    const p = await waitFor(async () => finished(await berth.pod('deadline')), 15_000, 'deadline Failed before the grace period ran out');
    expect(p.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' });
    const running = async (): Promise<number> =>
      (await docker.listContainers({ filters: { label: [`io.kubernetes.pod.uid=${p.metadata!.uid}`, 'io.kubernetes.container.name=c'] } })).length;
    // Reported Failed while the container still runs out its grace period, then stopped.
    expect(await running()).toBe(1);
    await waitFor(async () => (await running()) === 0, 40_000, 'the deadline pod container stopped');
  }, 70_000);
});
