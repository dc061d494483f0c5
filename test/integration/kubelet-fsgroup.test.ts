// Issue #12 on the real dockerd: a pod with runAsUser 1001 and fsGroup 2000 sees its emptyDir (disk and Memory),
// downwardAPI and projected (downwardAPI source) volumes owned by group 2000 with the setgid bit on their roots, as
// upstream's SetVolumeOwnership leaves them; a file it writes into the emptyDir inherits the group; the container runs
// with 2000 among its groups. Without fsGroup nothing is regrouped. (Standalone berth has no API server, so no
// configMap/secret sources here; the unit tests cover the atomic writer for all of them.)
import { describe, expect, it } from 'vitest';
import { manifestFiles, podManifest, shContainer, waitFor, type PodWithStatus, useBerth } from '../helpers/berth.ts';

const SCRIPT = [
  'set -e',
  'echo hi > /disk/f',
  'echo hi > /mem/f',
  'cat /info/labels /proj/name > /dev/null',
  // One line per path: group and mode (octal, setgid shown as the leading 2), then the process's uid and groups.
  'for p in /disk /disk/f /mem /mem/f /info /proj; do echo "$p $(stat -c \'%g %a\' $p)"; done > /dev/termination-log',
  'for p in /info/labels /proj/name; do echo "$p $(stat -L -c \'%g %a\' $p)"; done >> /dev/termination-log',
  'echo "uid $(id -u) groups $(id -G)" >> /dev/termination-log',
].join('\n');

const volumes = [
  { name: 'disk', emptyDir: {} },
  { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
  { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
  { name: 'proj', projected: { sources: [{ downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } }] } },
];
const volumeMounts = volumes.map((v) => ({ name: v.name, mountPath: `/${v.name}` }));

describe('fsGroup volume ownership on the real Docker Engine', () => {
  const berth = useBerth();
  const { write, remove } = manifestFiles(berth);

  const finished = (name: string): Promise<PodWithStatus> =>
    waitFor(async () => {
      const x = await berth.pod(name);
      return (x?.status.phase === 'Succeeded' || x?.status.phase === 'Failed') && x;
    }, 45_000, `${name} finished`);

  it('uid 1001 with fsGroup 2000: volumes group 2000 with setgid, group rw on emptyDir, its own file in group 2000', async () => {
    write(
      'fsg.yaml',
      podManifest('fsg', {
        restartPolicy: 'Never',
        securityContext: { runAsUser: 1001, fsGroup: 2000 },
        volumes,
        containers: [shContainer('c', SCRIPT, { volumeMounts })],
      }, { labels: { app: 'fsg' } }),
    );
    const p = await finished('fsg');
    const t = p.status.containerStatuses?.[0]?.state?.terminated;
    expect(t?.exitCode, t?.message).toBe(0);
    // The files the container wrote get the busybox default umask 022 (0644) and the group of the setgid directory.
    expect(t?.message).toBe(
      [
        '/disk 2000 2777',
        '/disk/f 2000 644',
        '/mem 2000 2777',
        '/mem/f 2000 644',
        '/info 2000 2777',
        '/proj 2000 2755',
        '/info/labels 2000 644',
        '/proj/name 2000 644',
        'uid 1001 groups 0 2000',
        '',
      ].join('\n'),
    );
    remove('fsg.yaml');
  }, 70_000);

  it('without fsGroup the same volumes keep group root and no setgid', async () => {
    write(
      'nofsg.yaml',
      podManifest('nofsg', {
        restartPolicy: 'Never',
        securityContext: { runAsUser: 1001 },
        volumes,
        containers: [shContainer('c', SCRIPT, { volumeMounts })],
      }),
    );
    const p = await finished('nofsg');
    const t = p.status.containerStatuses?.[0]?.state?.terminated;
    expect(t?.exitCode, t?.message).toBe(0);
    expect(t?.message).toBe(
      ['/disk 0 777', '/disk/f 0 644', '/mem 0 777', '/mem/f 0 644', '/info 0 777', '/proj 0 755', '/info/labels 0 644', '/proj/name 0 644', 'uid 1001 groups 0', ''].join('\n'),
    );
    remove('nofsg.yaml');
  }, 70_000);
});
