import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, statSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1';
import {
  buildManagedHostsFile,
  podHostnameAndDomain,
  shouldMountEtcHosts,
  truncatePodHostname,
  writeEtcHostsFile,
} from '../../src/kubelet/runtime/etc-hosts.ts';

const BASE = `# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
`;

describe('buildManagedHostsFile (upstream TestManagedHostsFileContent cases)', () => {
  it.each([
    { name: 'pod IP and hostname', podIPs: ['123.45.67.89'], hostname: 'podFoo', hostDomain: '', hostAliases: [], want: `${BASE}123.45.67.89\tpodFoo\n` },
    { name: 'FQDN with a subdomain', podIPs: ['203.0.113.1'], hostname: 'podFoo', hostDomain: 'domainFoo', hostAliases: [], want: `${BASE}203.0.113.1\tpodFoo.domainFoo\tpodFoo\n` },
    {
      name: 'one host alias',
      podIPs: ['203.0.113.1'],
      hostname: 'podFoo',
      hostDomain: 'domainFoo',
      hostAliases: [{ ip: '123.45.67.89', hostnames: ['foo', 'bar', 'baz'] }],
      want: `${BASE}203.0.113.1\tpodFoo.domainFoo\tpodFoo\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\tbaz\n`,
    },
    {
      name: 'two host aliases in spec order',
      podIPs: ['203.0.113.1'],
      hostname: 'podFoo',
      hostDomain: 'domainFoo',
      hostAliases: [
        { ip: '123.45.67.89', hostnames: ['foo', 'bar', 'baz'] },
        { ip: '456.78.90.123', hostnames: ['park', 'doo', 'boo'] },
      ],
      want: `${BASE}203.0.113.1\tpodFoo.domainFoo\tpodFoo\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\tbaz\n456.78.90.123\tpark\tdoo\tboo\n`,
    },
    {
      name: 'dual stack: one line per pod IP',
      podIPs: ['203.0.113.1', 'fd00::6'],
      hostname: 'podFoo',
      hostDomain: 'domainFoo',
      hostAliases: [],
      want: `${BASE}203.0.113.1\tpodFoo.domainFoo\tpodFoo\nfd00::6\tpodFoo.domainFoo\tpodFoo\n`,
    },
  ])('$name', ({ want, ...input }) => {
    expect(buildManagedHostsFile(input)).toBe(want);
  });
});

const pod = (spec: Partial<NonNullable<Pod['spec']>> = {}, name = 'web-0'): Pod => ({
  metadata: { name, namespace: 'shop', uid: 'u' },
  spec: { containers: [{ name: 'c' }], ...spec },
});

describe('pod hostname and domain (GeneratePodHostNameAndDomain)', () => {
  it('uses the pod name without hostname or subdomain', () => {
    expect(podHostnameAndDomain(pod(), 'cluster.local')).toEqual({ hostname: 'web-0', hostDomain: '' });
  });
  it('uses spec.hostname and builds <subdomain>.<ns>.svc.<cluster domain>', () => {
    expect(podHostnameAndDomain(pod({ hostname: 'db', subdomain: 'headless' }), 'cluster.local')).toEqual({
      hostname: 'db',
      hostDomain: 'headless.shop.svc.cluster.local',
    });
  });
  it('gives a StatefulSet pod (subdomain, no hostname) its name as hostname', () => {
    expect(podHostnameAndDomain(pod({ subdomain: 'web' }), 'example.org')).toEqual({ hostname: 'web-0', hostDomain: 'web.shop.svc.example.org' });
  });
  it('truncates a long pod name to 63 characters without a trailing dash or dot', () => {
    const long = `${'a'.repeat(61)}-.bcd`;
    expect(truncatePodHostname(long)).toBe('a'.repeat(61));
    expect(truncatePodHostname('short-name')).toBe('short-name');
  });
});

describe('shouldMountEtcHosts (makeMounts)', () => {
  it('mounts for a pod-network pod with a known IP', () => {
    const p = pod();
    expect(shouldMountEtcHosts(p, p.spec!.containers[0]!, ['10.0.0.5'])).toBe(true);
  });
  it('does not manage the file of a hostNetwork pod', () => {
    const p = pod({ hostNetwork: true });
    expect(shouldMountEtcHosts(p, p.spec!.containers[0]!, ['192.168.1.2'])).toBe(false);
  });
  it('does not mount before the pod IP is known', () => {
    const p = pod();
    expect(shouldMountEtcHosts(p, p.spec!.containers[0]!, [''])).toBe(false);
    expect(shouldMountEtcHosts(p, p.spec!.containers[0]!, [])).toBe(false);
  });
  it('leaves /etc/hosts to a container that mounts a volume there', () => {
    const p = pod({ containers: [{ name: 'c', volumeMounts: [{ name: 'v', mountPath: '/etc/hosts' }] }] });
    expect(shouldMountEtcHosts(p, p.spec!.containers[0]!, ['10.0.0.5'])).toBe(false);
  });
});

describe('writeEtcHostsFile', () => {
  it('writes <podDir>/etc-hosts with mode 0644 and rewrites it in place (same inode) when it changes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-hosts-'));
    try {
      const podDir = path.join(dir, 'pods', 'u');
      const f = await writeEtcHostsFile(podDir, 'one\n');
      expect(f).toBe(path.join(podDir, 'etc-hosts'));
      const ino = statSync(f).ino;
      expect(statSync(f).mode & 0o777).toBe(0o644);
      await writeEtcHostsFile(podDir, 'two\n');
      expect(readFileSync(f, 'utf8')).toBe('two\n');
      expect(statSync(f).ino).toBe(ino);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
