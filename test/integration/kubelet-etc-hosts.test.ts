// The pod's /etc/hosts as its containers read it on the real dockerd (berth standalone, static pods): upstream's
// managed file with header, pod IP + hostname/FQDN and hostAliases for pod-network pods; the node's own file
// (not managed) for hostNetwork pods.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { docker, manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';

const run = promisify(execFile);

describe('managed /etc/hosts on the real Docker Engine', () => {
  const berth = useBerth({ extraArgs: ['--cluster-domain=example.test'] });
  const { write } = manifestFiles(berth);

  const runningPod = (name: string): Promise<PodWithStatus> =>
    waitFor(async () => {
      const p = await berth.pod(name);
      return p?.status.containerStatuses?.every((c) => c.state?.running) && p;
    }, 30_000, `${name} running`);
  const hostsOf = async (p: PodWithStatus, container: string): Promise<string> => {
    const id = (p.status.containerStatuses?.find((c) => c.name === container)?.containerID ?? '').replace('docker://', '');
    return (await run('docker', ['exec', id, 'cat', '/etc/hosts'])).stdout;
  };

  it('writes upstream’s file with pod IP, FQDN and hostAliases, the same in every container', async () => {
    write(
      'hosts.yaml',
      podManifest('hosts', {
        hostname: 'db',
        subdomain: 'headless',
        hostAliases: [
          { ip: '10.1.2.3', hostnames: ['foo.local', 'bar.local'] },
          { ip: '10.1.2.4', hostnames: ['baz.local'] },
        ],
        containers: [shContainer('a', 'sleep 3600'), shContainer('b', 'sleep 3600')],
      }),
    );
    const p = await runningPod('hosts');
    const ip = p.status.podIP!;
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const want =
      '# Kubernetes-managed hosts file.\n' +
      '127.0.0.1\tlocalhost\n' +
      '::1\tlocalhost ip6-localhost ip6-loopback\n' +
      'fe00::0\tip6-localnet\n' +
      'fe00::0\tip6-mcastprefix\n' +
      'fe00::1\tip6-allnodes\n' +
      'fe00::2\tip6-allrouters\n' +
      `${ip}\tdb.headless.default.svc.example.test\tdb\n` +
      '\n# Entries added by HostAliases.\n' +
      '10.1.2.3\tfoo.local\tbar.local\n' +
      '10.1.2.4\tbaz.local\n';
    expect(await hostsOf(p, 'a')).toBe(want);
    expect(await hostsOf(p, 'b')).toBe(want);
  });

  it('names a pod without hostname by its pod name', async () => {
    write('plain.yaml', podManifest('plain', { containers: [shContainer('c', 'sleep 3600')] }));
    const p = await runningPod('plain');
    const hosts = await hostsOf(p, 'c');
    expect(hosts.startsWith('# Kubernetes-managed hosts file.\n')).toBe(true);
    expect(hosts.endsWith(`\n${p.status.podIP}\tplain-${berth.nodeName}\n`)).toBe(true);
  });

  it('leaves a hostNetwork pod the node’s hosts file (not managed)', async () => {
    write(
      'hostnet.yaml',
      podManifest('hostnet', { hostNetwork: true, hostAliases: [{ ip: '10.9.9.9', hostnames: ['alias.local'] }], containers: [shContainer('c', 'sleep 3600')] }),
    );
    const p = await runningPod('hostnet');
    const hosts = await hostsOf(p, 'c');
    expect(hosts).not.toContain('Kubernetes-managed hosts file');
    expect(hosts).not.toContain('alias.local');
  });
});
