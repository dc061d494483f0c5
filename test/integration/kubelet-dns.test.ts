// Issue #12 on the real dockerd: /etc/resolv.conf as the containers of pods with each dnsPolicy read it, equal to the
// text upstream's GetPodDNS + cri-dockerd's rewriteResolvFile produce (nameservers, then search, then options) from
// --cluster-dns/--cluster-domain and the host's /etc/resolv.conf, mode 0644.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { manifestFiles, podManifest, shContainer, waitFor, useBerth } from '../helpers/berth.ts';

// The host's settings, read here with the resolver's rules (nameservers accumulate, the last search/options line wins).
const hostText = readFileSync('/etc/resolv.conf', 'utf8');
const hostLines = hostText.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] && !f[0].startsWith('#'));
const hostServers = hostLines.filter((f) => f[0] === 'nameserver').map((f) => f[1]!);
const hostSearch = (hostLines.filter((f) => f[0] === 'search').pop() ?? []).slice(1).map((s) => s.replace(/\.$/, ''));
const hostOptions = (hostLines.filter((f) => f[0] === 'options').pop() ?? []).slice(1);
const fileOf = (servers: string[], search: string[], options: string[]): string =>
  [...servers.map((s) => `nameserver ${s}`), ...(search.length ? [`search ${search.join(' ')}`] : []), ...(options.length ? [`options ${options.join(' ')}`] : [])].join('\n') + '\n';

const clusterFile = (extraSearch: string[] = []): string =>
  fileOf(['10.96.0.10'], [...new Set(['default.svc.example.test', 'svc.example.test', 'example.test', ...hostSearch, ...extraSearch])], ['ndots:5']);
const hostFile = fileOf(hostServers, hostSearch, hostOptions);

const SCRIPT = '{ cat /etc/resolv.conf; echo "mode $(stat -L -c %a /etc/resolv.conf)"; } > /dev/termination-log';

describe('/etc/resolv.conf per dnsPolicy on the real Docker Engine', () => {
  const berth = useBerth({ extraArgs: ['--cluster-dns=10.96.0.10', '--cluster-domain=example.test'] });
  const { write, remove } = manifestFiles(berth);

  /** Runs the pod to completion; returns each container's resolv.conf text (and mode line). */
  const resolvOf = async (name: string, spec: Record<string, unknown>): Promise<string[]> => {
    write(`${name}.yaml`, podManifest(name, { restartPolicy: 'Never', containers: [shContainer('a', SCRIPT), shContainer('b', SCRIPT)], ...spec }));
    const p = await waitFor(async () => {
      const x = await berth.pod(name);
      return (x?.status.phase === 'Succeeded' || x?.status.phase === 'Failed') && x;
    }, 45_000, `${name} finished`);
    remove(`${name}.yaml`);
    return ['a', 'b'].map((c) => p.status.containerStatuses?.find((s) => s.name === c)?.state?.terminated?.message ?? '');
  };

  it('ClusterFirst: the cluster server only, <ns>.svc/svc/<domain> then the host’s searches, ndots:5; the same in every container', async () => {
    const want = `${clusterFile()}mode 644\n`;
    expect(await resolvOf('cf', {})).toEqual([want, want]);
  }, 60_000);

  it('ClusterFirst + dnsConfig: servers and searches appended, ndots replaced, new options after', async () => {
    const got = await resolvOf('cfx', {
      dnsConfig: { nameservers: ['10.0.0.11'], searches: ['my.domain'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] },
    });
    const want =
      fileOf(['10.96.0.10', '10.0.0.11'], [...new Set(['default.svc.example.test', 'svc.example.test', 'example.test', ...hostSearch, 'my.domain'])], ['ndots:2', 'edns0']) +
      'mode 644\n';
    expect(got).toEqual([want, want]);
  }, 60_000);

  it('Default: the host’s nameservers, search and options', async () => {
    expect(await resolvOf('def', { dnsPolicy: 'Default' })).toEqual([`${hostFile}mode 644\n`, `${hostFile}mode 644\n`]);
  }, 60_000);

  it('hostNetwork + ClusterFirst falls back to Default; ClusterFirstWithHostNet gets the cluster DNS', async () => {
    expect((await resolvOf('hn', { hostNetwork: true }))[0]).toBe(`${hostFile}mode 644\n`);
    expect((await resolvOf('hncf', { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }))[0]).toBe(`${clusterFile()}mode 644\n`);
  }, 90_000);

  it('None + dnsConfig: exactly the pod’s settings', async () => {
    const got = await resolvOf('none', {
      dnsPolicy: 'None',
      dnsConfig: { nameservers: ['1.1.1.1', '8.8.8.8'], searches: ['corp.example', 'example.org'], options: [{ name: 'ndots', value: '1' }, { name: 'timeout', value: '2' }] },
    });
    const want = 'nameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch corp.example example.org\noptions ndots:1 timeout:2\nmode 644\n';
    expect(got).toEqual([want, want]);
  }, 60_000);
});
