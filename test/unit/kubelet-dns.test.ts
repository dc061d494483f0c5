// Issue #12: the pod's /etc/resolv.conf per dnsPolicy/dnsConfig, checked against upstream's
// pkg/kubelet/network/dns/dns_test.go cases (TestParseResolvConf, TestFormDNSSearchFitsLimits,
// TestFormDNSNameserversFitsLimits, TestMergeDNSOptions, TestGetPodDNSType, TestGetPodDNS, TestGetPodDNSCustom) and
// the file text cri-dockerd's rewriteResolvFile writes from the result.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod, PodDNSConfig, PodSpec } from 'kubernetes-types/core/v1';
import {
  buildResolvConf,
  fitNameservers,
  fitSearches,
  hostResolvConfPath,
  mergeDNSOptions,
  parseResolvConf,
  podDNSConfig,
  podDNSType,
  readHostDNS,
  shouldMountResolvConf,
  writeResolvConfFile,
} from '../../src/kubelet/runtime/dns.ts';

describe('parseResolvConf (TestParseResolvConf)', () => {
  const cases: [string, string[], string[], string[], boolean][] = [
    ['', [], [], [], false],
    [' ', [], [], [], false],
    ['\n', [], [], [], false],
    ['\t\n\t', [], [], [], false],
    ['#comment\n', [], [], [], false],
    [' #comment\n', [], [], [], false],
    ['#comment\n#comment', [], [], [], false],
    ['#comment\nnameserver', [], [], [], true],
    ['#comment\nnameserver\nsearch', [], [], [], true],
    ['#comment\nnameserver 1.2.3.4\nsearch', ['1.2.3.4'], [], [], false],
    ['nameserver 1.2.3.4', ['1.2.3.4'], [], [], false],
    [' nameserver 1.2.3.4', ['1.2.3.4'], [], [], false],
    ['\tnameserver 1.2.3.4', ['1.2.3.4'], [], [], false],
    ['nameserver\t1.2.3.4', ['1.2.3.4'], [], [], false],
    ['nameserver \t 1.2.3.4', ['1.2.3.4'], [], [], false],
    ['nameserver 1.2.3.4\nnameserver 5.6.7.8', ['1.2.3.4', '5.6.7.8'], [], [], false],
    ['nameserver 1.2.3.4 #comment', ['1.2.3.4'], [], [], false],
    ['search ', [], [], [], false],
    ['search foo', [], ['foo'], [], false],
    ['search foo bar', [], ['foo', 'bar'], [], false],
    ['search foo. bar', [], ['foo', 'bar'], [], false],
    ['search foo bar bat\n', [], ['foo', 'bar', 'bat'], [], false],
    ['search foo\nsearch bar', [], ['bar'], [], false],
    ['nameserver 1.2.3.4\nsearch foo bar', ['1.2.3.4'], ['foo', 'bar'], [], false],
    ['nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar', ['1.2.3.4', '5.6.7.8'], ['bar'], [], false],
    ['#comment\nnameserver 1.2.3.4\n#comment\nsearch foo\ncomment', ['1.2.3.4'], ['foo'], [], false],
    ['options ', [], [], [], false],
    ['options ndots:5 attempts:2', [], [], ['ndots:5', 'attempts:2'], false],
    ['options ndots:1\noptions ndots:5 attempts:3', [], [], ['ndots:5', 'attempts:3'], false],
    ['nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar\noptions ndots:5 attempts:4', ['1.2.3.4', '5.6.7.8'], ['bar'], ['ndots:5', 'attempts:4'], false],
  ];
  it.each(cases)('%j', (text, servers, searches, options, isErr) => {
    const r = parseResolvConf(text);
    if (isErr) {
      expect(r.errors).toContain('nameserver list is empty ');
      return;
    }
    expect(r.errors).toEqual([]);
    expect({ servers: r.servers, searches: r.searches, options: r.options }).toEqual({ servers, searches, options });
  });
});

describe('search and nameserver limits (TestFormDNSSearchFitsLimits / TestFormDNSNameserversFitsLimits, ExpandedDNSConfig)', () => {
  const list2048 = ['A'.repeat(128), ...Array.from({ length: 15 }, () => 'A'.repeat(127))];
  it('2048 characters fit; 2050 cut the last path, with upstream’s DNSConfigForming message', () => {
    expect(list2048.join(' ').length).toBe(2048);
    expect(fitSearches(list2048)).toEqual({ searches: list2048 });
    const r = fitSearches([...list2048, 'B']);
    expect(r.searches).toEqual(list2048);
    expect(r.warning).toEqual({
      reason: 'DNSConfigForming',
      message: `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${list2048.join(' ')}`,
    });
  });

  it('a path over 253 characters is dropped', () => {
    const r = fitSearches(['testNS.svc.TEST', 'svc.TEST', 'TEST', 'AAA', 'B'.repeat(256), 'BBB']);
    expect(r.searches).toEqual(['testNS.svc.TEST', 'svc.TEST', 'TEST', 'AAA', 'BBB']);
    expect(r.warning?.message).toBe('Search Line limits were exceeded, some search paths have been omitted, the applied search line is: testNS.svc.TEST svc.TEST TEST AAA BBB');
  });

  it('32 paths fit, 33 are cut to 32', () => {
    const p32 = ['testNS.svc.TEST', 'svc.TEST', 'TEST', ...Array.from({ length: 29 }, (_, i) => String(i + 4))];
    expect(fitSearches(p32)).toEqual({ searches: p32 });
    const r = fitSearches([...p32, '33']);
    expect(r.searches).toEqual(p32);
    expect(r.warning?.message).toBe(`Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${p32.join(' ')}`);
  });

  it('3 nameservers fit, a fourth is dropped with a warning', () => {
    expect(fitNameservers(['127.0.0.1', '10.0.0.10', '8.8.8.8'])).toEqual({ servers: ['127.0.0.1', '10.0.0.10', '8.8.8.8'] });
    expect(fitNameservers(['127.0.0.1', '10.0.0.10', '8.8.8.8', '1.2.3.4'])).toEqual({
      servers: ['127.0.0.1', '10.0.0.10', '8.8.8.8'],
      warning: { reason: 'DNSConfigForming', message: 'Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 127.0.0.1 10.0.0.10 8.8.8.8' },
    });
  });
});

describe('mergeDNSOptions (TestMergeDNSOptions)', () => {
  it('keeps existing options, adds new ones, the pod’s value wins for the same name; existing first, then new', () => {
    expect(mergeDNSOptions(['ndots:5', 'debug'], [])).toEqual(['ndots:5', 'debug']);
    expect(mergeDNSOptions(['ndots:5', 'debug'], [{ name: 'single-request' }, { name: 'attempts', value: '3' }])).toEqual(['ndots:5', 'debug', 'single-request', 'attempts:3']);
    expect(
      mergeDNSOptions(['ndots:5', 'debug'], [{ name: 'ndots', value: '3' }, { name: 'debug' }, { name: 'single-request' }, { name: 'attempts', value: '3' }]),
    ).toEqual(['ndots:3', 'debug', 'single-request', 'attempts:3']);
  });
});

const pod = (spec: Partial<PodSpec> = {}, ns = 'testNS'): Pod => ({ metadata: { name: 'test_pod', namespace: ns, uid: 'u1' }, spec: { containers: [], ...spec } });

describe('podDNSType (TestGetPodDNSType)', () => {
  it.each([
    ['ClusterFirst', false, 'cluster'],
    ['ClusterFirstWithHostNet', true, 'cluster'],
    ['ClusterFirstWithHostNet', false, 'cluster'],
    ['Default', false, 'host'],
    ['Default', true, 'host'],
    ['ClusterFirst', true, 'host'],
    ['None', false, 'none'],
  ] as const)('%s hostNetwork=%s → %s', (dnsPolicy, hostNetwork, want) => {
    expect(podDNSType(pod({ dnsPolicy, hostNetwork }))).toBe(want);
  });
});

describe('podDNSConfig (TestGetPodDNS, TestGetPodDNSCustom) and the file text', () => {
  const host = { servers: ['8.8.8.8'], searches: ['host.domain'], options: [] as string[] };
  const facts = { clusterDNS: ['10.0.0.10'], clusterDomain: 'kubernetes.io', host };
  const custom: PodDNSConfig = { nameservers: ['10.0.0.11'], searches: ['my.domain'], options: [{ name: 'ndots', value: '3' }, { name: 'debug' }] };

  it('None without dnsConfig: empty, and no file is written (the runtime’s stays)', () => {
    const r = podDNSConfig(pod({ dnsPolicy: 'None' }), facts);
    expect(r.config).toEqual({ servers: [], searches: [], options: [] });
    expect(buildResolvConf(r.config)).toBe('');
    expect(shouldMountResolvConf({ name: 'c' }, buildResolvConf(r.config))).toBe(false);
  });

  it('None + dnsConfig: exactly the pod’s settings', () => {
    const r = podDNSConfig(
      pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['203.0.113.1'], searches: ['my.domain', 'second.domain'], options: [{ name: 'ndots', value: '3' }, { name: 'debug' }] } }),
      facts,
    );
    expect(r.config).toEqual({ servers: ['203.0.113.1'], searches: ['my.domain', 'second.domain'], options: ['ndots:3', 'debug'] });
    expect(buildResolvConf(r.config)).toBe('nameserver 203.0.113.1\nsearch my.domain second.domain\noptions ndots:3 debug\n');
  });

  it('ClusterFirst + dnsConfig: cluster server first, cluster searches, host searches, pod searches; ndots merged', () => {
    const r = podDNSConfig(pod({ dnsPolicy: 'ClusterFirst', dnsConfig: custom }), facts);
    expect(r.config).toEqual({
      servers: ['10.0.0.10', '10.0.0.11'],
      searches: ['testNS.svc.kubernetes.io', 'svc.kubernetes.io', 'kubernetes.io', 'host.domain', 'my.domain'],
      options: ['ndots:3', 'debug'],
    });
    expect(buildResolvConf(r.config)).toBe(
      'nameserver 10.0.0.10\nnameserver 10.0.0.11\nsearch testNS.svc.kubernetes.io svc.kubernetes.io kubernetes.io host.domain my.domain\noptions ndots:3 debug\n',
    );
    expect(r.warnings).toEqual([]);
  });

  it('ClusterFirstWithHostNet on the host network + dnsConfig: the same as ClusterFirst', () => {
    const r = podDNSConfig(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet', dnsConfig: custom }), facts);
    expect(r.config.servers).toEqual(['10.0.0.10', '10.0.0.11']);
    expect(r.config.searches).toEqual(['testNS.svc.kubernetes.io', 'svc.kubernetes.io', 'kubernetes.io', 'host.domain', 'my.domain']);
  });

  it('Default + dnsConfig: the host’s settings with the pod’s appended', () => {
    const r = podDNSConfig(pod({ dnsPolicy: 'Default', dnsConfig: custom }), facts);
    expect(r.config).toEqual({ servers: ['8.8.8.8', '10.0.0.11'], searches: ['host.domain', 'my.domain'], options: ['ndots:3', 'debug'] });
  });

  it('ClusterFirst: only ndots:5 (the host’s options are not kept), the host’s nameservers replaced', () => {
    const r = podDNSConfig(pod({}, 'shop'), { ...facts, host: { servers: ['1.1.1.1', '9.9.9.9'], searches: ['corp.example'], options: ['rotate', 'timeout:1'] } });
    expect(buildResolvConf(r.config)).toBe('nameserver 10.0.0.10\nsearch shop.svc.kubernetes.io svc.kubernetes.io kubernetes.io corp.example\noptions ndots:5\n');
  });

  it('Default keeps the host’s nameservers, search and options as they were', () => {
    const h = parseResolvConf('# generated\nnameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch corp.example.\noptions rotate timeout:1\n');
    const r = podDNSConfig(pod({ dnsPolicy: 'Default' }), { ...facts, host: h });
    expect(buildResolvConf(r.config)).toBe('nameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch corp.example\noptions rotate timeout:1\n');
  });

  it('hostNetwork + ClusterFirst falls back to Default (the host’s file)', () => {
    const r = podDNSConfig(pod({ hostNetwork: true }), facts);
    expect(r.config).toEqual({ servers: ['8.8.8.8'], searches: ['host.domain'], options: [] });
  });

  it('a host search domain equal to a cluster one is listed once', () => {
    const r = podDNSConfig(pod(), { ...facts, host: { servers: [], searches: ['kubernetes.io', 'x'], options: [] } });
    expect(r.config.searches).toEqual(['testNS.svc.kubernetes.io', 'svc.kubernetes.io', 'kubernetes.io', 'x']);
  });

  it('no --resolv-conf: Default and ClusterFirst on the host network get 127.0.0.1 and search "." (TestGetPodDNS)', () => {
    const f = { clusterDNS: ['203.0.113.1'], clusterDomain: 'kubernetes.io', host: undefined };
    expect(podDNSConfig(pod({ dnsPolicy: 'Default' }), f).config).toEqual({ servers: ['127.0.0.1'], searches: ['.'], options: [] });
    expect(podDNSConfig(pod({ dnsPolicy: 'ClusterFirst', hostNetwork: true }), f).config).toEqual({ servers: ['127.0.0.1'], searches: ['.'], options: [] });
    expect(podDNSConfig(pod({ dnsPolicy: 'ClusterFirstWithHostNet', hostNetwork: true }), f).config.servers).toEqual(['203.0.113.1']);
  });

  it('ClusterFirst without --cluster-dns: Default, with upstream’s MissingClusterDNS event', () => {
    const r = podDNSConfig(pod(), { ...facts, clusterDNS: [] });
    expect(r.config).toEqual(host);
    expect(r.warnings).toEqual([
      {
        reason: 'MissingClusterDNS',
        message: 'pod: "test_pod_testNS(u1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.',
      },
    ]);
  });

  it('too many nameservers from dnsConfig are cut to 3 with a DNSConfigForming warning', () => {
    const r = podDNSConfig(pod({ dnsConfig: { nameservers: ['1.1.1.1', '2.2.2.2', '3.3.3.3'] } }), facts);
    expect(r.config.servers).toEqual(['10.0.0.10', '1.1.1.1', '2.2.2.2']);
    expect(r.warnings.map((w) => w.reason)).toEqual(['DNSConfigForming']);
  });

  it('an own mount at /etc/resolv.conf wins', () => {
    expect(shouldMountResolvConf({ name: 'c', volumeMounts: [{ name: 'v', mountPath: '/etc/resolv.conf' }] }, 'nameserver 1.1.1.1\n')).toBe(false);
    expect(shouldMountResolvConf({ name: 'c' }, 'nameserver 1.1.1.1\n')).toBe(true);
  });
});

describe('host file and pod file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dns-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('readHostDNS parses the file, fails on a bad line, and "" means no file', async () => {
    fs.writeFileSync(path.join(dir, 'ok'), 'nameserver 1.2.3.4\nsearch a.b\n');
    expect(await readHostDNS(path.join(dir, 'ok'))).toEqual({ servers: ['1.2.3.4'], searches: ['a.b'], options: [] });
    fs.writeFileSync(path.join(dir, 'bad'), 'nameserver\n');
    await expect(readHostDNS(path.join(dir, 'bad'))).rejects.toThrow('nameserver list is empty ');
    expect(await readHostDNS('')).toBeUndefined();
  });

  it('without --resolv-conf: /etc/resolv.conf, or systemd-resolved’s file when /etc only names the 127.0.0.53 stub', async () => {
    const files = { etc: path.join(dir, 'etc'), resolved: path.join(dir, 'resolved') };
    fs.writeFileSync(files.etc, 'nameserver 127.0.0.53\noptions edns0 trust-ad\n');
    expect(await hostResolvConfPath(undefined, files)).toBe(files.etc); // no resolved file
    fs.writeFileSync(files.resolved, 'nameserver 192.0.2.1\n');
    expect(await hostResolvConfPath(undefined, files)).toBe(files.resolved);
    fs.writeFileSync(files.etc, 'nameserver 127.0.0.53\nnameserver 192.0.2.9\n');
    expect(await hostResolvConfPath(undefined, files)).toBe(files.etc);
    expect(await hostResolvConfPath('/custom', files)).toBe('/custom');
    expect(await hostResolvConfPath('', files)).toBe('');
  });

  it('writes <podDir>/resolv.conf 0644 whatever the umask, in place (same inode) on a change', async () => {
    const old = process.umask(0o077);
    try {
      const f = await writeResolvConfFile(dir, 'nameserver 1.1.1.1\n');
      expect(f).toBe(path.join(dir, 'resolv.conf'));
      expect(fs.statSync(f).mode & 0o777).toBe(0o644);
      const ino = fs.statSync(f).ino;
      await writeResolvConfFile(dir, 'nameserver 2.2.2.2\n');
      expect(fs.statSync(f).ino).toBe(ino);
      expect(fs.readFileSync(f, 'utf8')).toBe('nameserver 2.2.2.2\n');
    } finally {
      process.umask(old);
    }
  });
});
