// loadConfig: flags > environment (BERTH_*) > KubeletConfiguration-style file (--config) > defaults; every
// problem reported at once (InvalidConfigError); the result is frozen.
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig, parseDuration, type LoadConfigInput } from '../../src/cli/config.ts';
import { InvalidConfigError } from '../../src/lib/index.ts';

function load(o: Partial<LoadConfigInput> & { files?: Record<string, string> } = {}) {
  const files = o.files ?? {};
  return loadConfig({
    argv: o.argv ?? [],
    env: o.env ?? {},
    hostname: o.hostname ?? 'test-node',
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return t;
    },
  });
}
function problems(o: Parameters<typeof load>[0]): string[] {
  try {
    load(o);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as InvalidConfigError).problems;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('defaults, node name from the hostname (lowercased), frozen', () => {
    const c = load({ hostname: 'Node-A' });
    expect(c).toMatchObject({ ...DEFAULTS, nodeName: 'node-a', args: [] });
    expect(c.port).toBe(10250);
    expect(c.syncFrequencyMs).toBe(60_000);
    expect(Object.isFrozen(c)).toBe(true);
  });

  const FILE = 'maxPods: 50\nsyncFrequency: 2m\nclusterDomain: file.local\n';
  const precedence: { name: string; argv: string[]; env: Record<string, string>; maxPods: number; domain: string }[] = [
    { name: 'file only', argv: ['--config', '/etc/berth.yaml'], env: {}, maxPods: 50, domain: 'file.local' },
    { name: 'env beats file', argv: ['--config', '/etc/berth.yaml'], env: { BERTH_MAX_PODS: '60' }, maxPods: 60, domain: 'file.local' },
    {
      name: 'flag beats env and file',
      argv: ['--config=/etc/berth.yaml', '--max-pods', '70', '--cluster-domain=flag.local'],
      env: { BERTH_MAX_PODS: '60', BERTH_CLUSTER_DOMAIN: 'env.local' },
      maxPods: 70,
      domain: 'flag.local',
    },
    { name: 'env without file', argv: [], env: { BERTH_MAX_PODS: '60', BERTH_CLUSTER_DOMAIN: 'env.local' }, maxPods: 60, domain: 'env.local' },
    { name: 'BERTH_CONFIG names the file', argv: [], env: { BERTH_CONFIG: '/etc/berth.yaml' }, maxPods: 50, domain: 'file.local' },
  ];
  it.each(precedence)('precedence: $name', ({ argv, env, maxPods, domain }) => {
    const c = load({ argv, env, files: { '/etc/berth.yaml': FILE } });
    expect(c.maxPods).toBe(maxPods);
    expect(c.clusterDomain).toBe(domain);
  });

  it('KubeletConfiguration keys from the file', () => {
    const file = [
      'apiVersion: kubelet.config.k8s.io/v1beta1',
      'kind: KubeletConfiguration',
      'staticPodPath: /etc/kubernetes/manifests',
      'fileCheckFrequency: 30s',
      'syncFrequency: 1m30s',
      'clusterDNS: [10.96.0.10, 10.96.0.11]',
      'clusterDomain: corp.local',
      'registerNode: false',
      'healthzPort: 0',
      'nodeStatusUpdateFrequency: 5s',
      'registerWithTaints:',
      '  - { key: dedicated, value: infra, effect: NoSchedule }',
    ].join('\n');
    const c = load({ argv: ['--config', '/k.yaml'], files: { '/k.yaml': file } });
    expect(c).toMatchObject({
      podManifestPath: '/etc/kubernetes/manifests',
      fileCheckFrequencyMs: 30_000,
      syncFrequencyMs: 90_000,
      clusterDNS: ['10.96.0.10', '10.96.0.11'],
      clusterDomain: 'corp.local',
      registerNode: false,
      healthzPort: 0,
      nodeStatusUpdateFrequencyMs: 5000,
      registerWithTaints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }],
    });
  });

  it('flags: aliases, --flag value and --flag=value, booleans, lists, maps, taints, positional args', () => {
    const c = load({
      argv: [
        'run',
        '--node-name',
        'Worker-1',
        '--manifest-dir=/m',
        '--cluster-dns',
        '10.0.0.10, 10.0.0.11',
        '--node-labels=role=edge,zone=a',
        '--register-with-taints',
        'gpu=true:NoSchedule,spot:PreferNoSchedule',
        '--masquerade-all',
        '--register-node',
        'false',
        '--',
        '--not-a-flag',
      ],
    });
    expect(c).toMatchObject({
      nodeName: 'worker-1',
      podManifestPath: '/m',
      clusterDNS: ['10.0.0.10', '10.0.0.11'],
      nodeLabels: { role: 'edge', zone: 'a' },
      registerWithTaints: [
        { key: 'gpu', value: 'true', effect: 'NoSchedule' },
        { key: 'spot', value: undefined, effect: 'PreferNoSchedule' },
      ],
      masqueradeAll: true,
      registerNode: false,
      args: ['run', '--not-a-flag'],
    });
  });

  it('a bare boolean flag before a positional argument stays true', () => {
    const c = load({ argv: ['--masquerade-all', 'run'] });
    expect(c.masqueradeAll).toBe(true);
    expect(c.args).toEqual(['run']);
  });

  it('durations from flags and environment', () => {
    const c = load({ argv: ['--sync-frequency=1m30s', '--iptables-min-sync-period', '300ms'], env: { BERTH_CRASH_LOOP_BACKOFF_MAX: '2m' } });
    expect(c.syncFrequencyMs).toBe(90_000);
    expect(c.iptablesMinSyncPeriodMs).toBe(300);
    expect(c.crashLoopBackoffMaxMs).toBe(120_000);
  });

  it('--streaming-connection-idle-timeout: default 4h, from a flag or the file (streamingConnectionIdleTimeout), 0 = never', () => {
    expect(load().streamingConnectionIdleTimeoutMs).toBe(4 * 3_600_000);
    expect(load({ argv: ['--streaming-connection-idle-timeout=30m'] }).streamingConnectionIdleTimeoutMs).toBe(1_800_000);
    expect(load({ argv: ['--streaming-connection-idle-timeout', '0'] }).streamingConnectionIdleTimeoutMs).toBe(0);
    expect(load({ argv: ['--config', '/c.yaml'], files: { '/c.yaml': 'streamingConnectionIdleTimeout: 5m\n' } }).streamingConnectionIdleTimeoutMs).toBe(300_000);
    expect(problems({ argv: ['--streaming-connection-idle-timeout=soon'] }).join('\n')).toContain('streaming-connection-idle-timeout');
  });

  it('empty environment variables are ignored', () => {
    expect(load({ env: { BERTH_MAX_PODS: '' } }).maxPods).toBe(110);
  });

  it('every problem is reported at once', () => {
    const got = problems({
      argv: ['--max-pods=many', '--log-format=xml', '--bogus', '--sync-frequency=soon', '--port'],
      env: { BERTH_HEALTHZ_PORT: 'x', BERTH_REGISTER_NODE: 'maybe' },
    });
    expect(got).toEqual(
      expect.arrayContaining([
        '--max-pods: "many" is not an integer',
        'unknown flag --bogus',
        '--sync-frequency: invalid duration "soon"',
        'flag --port needs a value',
        'BERTH_HEALTHZ_PORT: "x" is not an integer',
        'BERTH_REGISTER_NODE: "maybe" is not true/false',
        '--log-format: "xml" is not json or text',
      ]),
    );
    expect(got).toHaveLength(7);
  });

  it('problems in the config file are reported with the file and key', () => {
    const got = problems({ argv: ['--config', '/k.yaml'], files: { '/k.yaml': 'maxPods: lots\nfileCheckFrequency: often\n' } });
    expect(got.sort()).toEqual(['/k.yaml: fileCheckFrequency: invalid duration "often"', '/k.yaml: maxPods: "lots" is not an integer']);
  });

  it('an unreadable config file is a problem', () => {
    expect(problems({ argv: ['--config', '/missing.yaml'] })).toEqual([expect.stringMatching(/^--config \/missing\.yaml: ENOENT/)]);
  });

  it.each([
    [['--max-pods=0'], '--max-pods must be at least 1'],
    [['--crash-loop-backoff-initial=10m'], '--crash-loop-backoff-initial must be > 0 and <= --crash-loop-backoff-max'],
    [['--proxy-mode=ipvs'], '--proxy-mode: "ipvs" is not iptables, nftables or none'],
    [['--iptables-backend=bpf'], '--iptables-backend: "bpf" is not legacy or nft'],
    [['--node-ip=my-host'], '--node-ip: "my-host" is not an IP address'],
    [['--hostname-override=bad_name'], 'node name "bad_name" is not a valid DNS subdomain'],
    [['--node-labels=novalue'], '--node-labels: "novalue" is not key=value'],
    [['--register-with-taints=key=v:Sometimes'], '--register-with-taints: "key=v:Sometimes" is not key[=value]:Effect'],
  ])('%j → %s', (argv, problem) => {
    expect(problems({ argv })).toContain(problem);
  });

  it('error message lists the problems', () => {
    expect(() => load({ argv: ['--bogus'] })).toThrow('invalid configuration: unknown flag --bogus');
  });
});

describe('parseDuration (Go durations, or plain seconds)', () => {
  it.each([
    ['10', 10_000],
    ['1.5', 1500],
    ['300ms', 300],
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['2h45m', 9_900_000],
    ['0s', 0],
  ])('%j → %i ms', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
  });

  it.each(['', 'soon', '10x', '1m30', 's', '-5s'])('%j is invalid', (s) => {
    expect(() => parseDuration(s)).toThrow(`invalid duration ${JSON.stringify(s)}`);
  });
});
