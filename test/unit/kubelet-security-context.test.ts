// Security context decisions against upstream: verifyRunAsNonRoot (kuberuntime/security_context_others.go,
// messages verbatim), the image user as CRI reports it (getUserFromImageUser), the sysctl allowlist
// (pkg/kubelet/sysctl), seccomp profile paths, AppArmor admission, supplemental groups with fsGroup, and the
// Docker options cri-dockerd derives from them.
import { describe, expect, it } from 'vitest';
import type { Container, Pod, PodSecurityContext } from 'kubernetes-types/core/v1';
import {
  admitAppArmor,
  admitSysctls,
  buildSecurityAdmission,
  buildSysctlAllowlist,
  fsGroupOf,
  imageUserOrRoot,
  normalizeSysctlName,
  seccompProfileOf,
  supplementalGroupsOf,
  verifyRunAsNonRoot,
} from '../../src/kubelet/pod/security-context.ts';
import { buildContainerConfig, type NodeFacts } from '../../src/kubelet/runtime/container-config.ts';
import { buildContainerCreateOptions, buildSeccompAndAppArmorOpts, toImage } from '../../src/cri/docker/convert.ts';
import { validatePod } from '../../src/kubelet/pod/pod-spec.ts';
import { pod, spec } from './helpers/kubelet-fixtures.ts';

const withSc = (psc: PodSecurityContext | undefined, c: Partial<Container> = {}, extra: Partial<Pod['spec']> = {}): Pod =>
  pod({ name: 'web', namespace: 'shop', uid: 'u-1', containers: [spec('app', c)], spec: { securityContext: psc, ...extra } });

describe('verifyRunAsNonRoot', () => {
  const P = '(pod: "web_shop(u-1)", container: app)';
  it.each([
    ['runAsNonRoot unset: anything runs', undefined, {}, { uid: 0 }, undefined],
    ['runAsNonRoot false', { runAsNonRoot: false }, {}, { uid: 0 }, undefined],
    ['image runs as root', { runAsNonRoot: true }, {}, { uid: 0 }, `container has runAsNonRoot and image will run as root ${P}`],
    ['image without USER counts as root', { runAsNonRoot: true }, {}, imageUserOrRoot({}), `container has runAsNonRoot and image will run as root ${P}`],
    ['non-numeric image user', { runAsNonRoot: true }, {}, { username: 'nginx' }, `container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is non-root ${P}`],
    ['numeric non-root image user', { runAsNonRoot: true }, {}, { uid: 101 }, undefined],
    ['pod runAsUser overrides the image', { runAsNonRoot: true, runAsUser: 1001 }, {}, { uid: 0 }, undefined],
    ['container runAsUser 0 breaks the policy', { runAsNonRoot: true }, { securityContext: { runAsUser: 0 } }, { uid: 1000 }, `container's runAsUser breaks non-root policy ${P}`],
    ['container runAsNonRoot over a pod without it', undefined, { securityContext: { runAsNonRoot: true } }, { uid: 0 }, `container has runAsNonRoot and image will run as root ${P}`],
    ['container runAsNonRoot false over the pod', { runAsNonRoot: true }, { securityContext: { runAsNonRoot: false } }, { uid: 0 }, undefined],
    [
      'image uid out of range',
      { runAsNonRoot: true },
      {},
      { uid: 4294967296 },
      `container has runAsNonRoot and image has an invalid user id (4294967296). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive ${P}`,
    ],
  ] as const)('%s', (_, psc, c, image, want) => {
    expect(verifyRunAsNonRoot(withSc(psc as PodSecurityContext | undefined, c as Partial<Container>), spec('app', c as Partial<Container>), image)).toBe(want);
  });
});

describe('the image user as CRI ImageStatus reports it (toImage)', () => {
  it.each([
    ['', {}],
    ['0', { uid: 0 }],
    ['1001:1001', { uid: 1001 }],
    ['nginx', { username: 'nginx' }],
    ['nobody:nogroup', { username: 'nobody' }],
  ])('USER %j', (user, want) => {
    const img = toImage({ Id: 'sha256:x', RepoTags: [], RepoDigests: [], Size: 1, Config: { User: user } });
    expect({ uid: img.uid, username: img.username }).toEqual({ uid: undefined, username: undefined, ...want });
  });
});

describe('sysctls: safe set, unsafe ones only when allowed (SysctlForbidden)', () => {
  const safeOnly = buildSysctlAllowlist([]);
  const sysctlPod = (names: string[], extra: Partial<Pod['spec']> = {}): Pod => withSc({ sysctls: names.map((name) => ({ name, value: '1' })) }, {}, extra);
  it.each([
    [['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start']],
    [['net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net/ipv4/ip_local_reserved_ports']],
  ])('admits safe sysctls %j', (names) => {
    expect(admitSysctls(sysctlPod(names), safeOnly)).toEqual({ admit: true });
  });
  it('rejects an unsafe sysctl with upstream reason and message', () => {
    expect(admitSysctls(sysctlPod(['kernel.msgmax']), safeOnly)).toEqual({ admit: false, reason: 'SysctlForbidden', message: 'forbidden sysctl: "kernel.msgmax" not allowlisted' });
  });
  it('admits an unsafe sysctl named in --allowed-unsafe-sysctls, exactly or by prefix*', () => {
    expect(admitSysctls(sysctlPod(['kernel.msgmax']), buildSysctlAllowlist(['kernel.msgmax']))).toEqual({ admit: true });
    expect(admitSysctls(sysctlPod(['net.core.somaxconn']), buildSysctlAllowlist(['net.core.*']))).toEqual({ admit: true });
    expect(admitSysctls(sysctlPod(['net.ipv6.conf.all.forwarding']), buildSysctlAllowlist(['net.core.*'])).admit).toBe(false);
  });
  it('refuses net sysctls with hostNetwork and ipc ones with hostIPC', () => {
    expect(admitSysctls(sysctlPod(['net.ipv4.tcp_syncookies'], { hostNetwork: true }), safeOnly)).toEqual({
      admit: false,
      reason: 'SysctlForbidden',
      message: 'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled',
    });
    expect(admitSysctls(sysctlPod(['kernel.shm_rmid_forced'], { hostIPC: true }), safeOnly).admit).toBe(false);
  });
  it('rejects non-namespaced or malformed allowlist patterns as upstream', () => {
    expect(() => buildSysctlAllowlist(['kernel.panic'])).toThrow('the sysctls "kernel.panic" are not known to be namespaced');
    expect(() => buildSysctlAllowlist(['Net.Bad!'])).toThrow(/must have at most 253 characters and match regex/);
  });
  it('normalizes slash-separated names (NormalizeName)', () => {
    expect(normalizeSysctlName('net/ipv4/conf/eno2.100/rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
    expect(normalizeSysctlName('net.ipv4.conf.eno2/100.rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
  });
});

describe('seccomp profiles', () => {
  const root = '/var/lib/berth';
  it.each([
    ['unset → Unconfined', undefined, undefined, { profileType: 'Unconfined' }],
    ['pod RuntimeDefault', { type: 'RuntimeDefault' }, undefined, { profileType: 'RuntimeDefault' }],
    ['container overrides the pod', { type: 'RuntimeDefault' }, { type: 'Unconfined' }, { profileType: 'Unconfined' }],
    ['Localhost under <root-dir>/seccomp', undefined, { type: 'Localhost', localhostProfile: 'profiles/audit.json' }, { profileType: 'Localhost', localhostRef: '/var/lib/berth/seccomp/profiles/audit.json' }],
  ] as const)('%s', (_, podProfile, cProfile, want) => {
    const c = spec('app', cProfile ? { securityContext: { seccompProfile: cProfile } } : {});
    expect(seccompProfileOf(withSc(podProfile ? { seccompProfile: podProfile } : undefined), c, root)).toEqual(want);
  });
  it.each(['../../etc/shadow', '/etc/seccomp.json', 'a/../../x', ''])('a Localhost path leaving <root-dir>/seccomp is refused: %j', (p) => {
    const c = spec('app', { securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: p } } });
    expect(() => seccompProfileOf(withSc(undefined), c, root)).toThrow(/invalid seccomp profile/);
  });
  it('maps to Docker options as cri-dockerd: unconfined, default (none), inline JSON', () => {
    expect(buildSeccompAndAppArmorOpts({})).toEqual(['seccomp=unconfined']);
    expect(buildSeccompAndAppArmorOpts({ seccomp: { profileType: 'RuntimeDefault' } })).toEqual([]);
    expect(buildSeccompAndAppArmorOpts({ seccomp: { profileType: 'Localhost', localhostRef: '/p.json' } }, '{"defaultAction":"SCMP_ACT_ALLOW"}')).toEqual([
      'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
    ]);
    expect(() => buildSeccompAndAppArmorOpts({ seccomp: { profileType: 'Localhost', localhostRef: '/p.json' } })).toThrow(/cannot load seccomp profile/);
    expect(buildSeccompAndAppArmorOpts({ seccomp: { profileType: 'RuntimeDefault' }, apparmorProfile: 'localhost/k8s-deny' })).toEqual(['apparmor=k8s-deny']);
  });
});

describe('AppArmor admission on a host without AppArmor', () => {
  it('rejects a pod asking for a confined profile, admits unconfined or none', () => {
    const confined = withSc(undefined, { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } as Container['securityContext'] });
    expect(admitAppArmor(confined, false)).toEqual({ admit: false, reason: 'AppArmor', message: 'Cannot enforce AppArmor: AppArmor is not enabled on the host' });
    expect(admitAppArmor(confined, true)).toEqual({ admit: true });
    const annotated = withSc(undefined);
    annotated.metadata!.annotations = { 'container.apparmor.security.beta.kubernetes.io/app': 'localhost/x' };
    expect(admitAppArmor(annotated, false).admit).toBe(false);
    annotated.metadata!.annotations = { 'container.apparmor.security.beta.kubernetes.io/app': 'unconfined' };
    expect(admitAppArmor(annotated, false)).toEqual({ admit: true });
    expect(admitAppArmor(withSc(undefined), false)).toEqual({ admit: true });
  });
  it('runs sysctls first, then AppArmor', () => {
    const admit = buildSecurityAdmission({ allowedUnsafeSysctls: [], hostAppArmorEnabled: false });
    const p = withSc({ sysctls: [{ name: 'kernel.msgmax', value: '1' }] }, { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } as Container['securityContext'] });
    expect(admit(p)).toMatchObject({ reason: 'SysctlForbidden' });
  });
});

describe('groups, procMount and seccomp reach Docker', () => {
  const NODE: NodeFacts = { nodeName: 'n', hostname: 'n', memoryCapacityBytes: 2 ** 30, clusterDNS: [], clusterDomain: 'cluster.local', rootDir: '/var/lib/berth', podLogsDir: '/var/log/pods' };
  const create = (p: Pod) => {
    const cfg = buildContainerConfig({ pod: p, start: { spec: p.spec!.containers[0]!, kind: 'app', restartCount: 0 } as never, envs: [], volumes: new Map(), node: NODE });
    return buildContainerCreateOptions({ podSandboxId: 'sb', config: cfg, sandboxConfig: { metadata: { name: 'web', namespace: 'shop', uid: 'u-1', attempt: 0 }, portMappings: [], labels: {}, annotations: {} }, hostCaps: { privileged: true } as never, log: { maxSize: '10Mi', maxFiles: 5 } });
  };
  it('fsGroup comes first in the supplemental groups, then supplementalGroups (GroupAdd)', () => {
    const p = withSc({ fsGroup: 2000, supplementalGroups: [3000, 4000] });
    expect(fsGroupOf(p)).toBe(2000);
    expect(supplementalGroupsOf(p)).toEqual([2000, 3000, 4000]);
    expect(create(p).HostConfig.GroupAdd).toEqual(['2000', '3000', '4000']);
    expect(create(withSc(undefined)).HostConfig.GroupAdd).toBeUndefined();
  });
  it('procMount Unmasked clears the masked and read-only /proc paths; Default keeps Docker’s', () => {
    const un = create(withSc(undefined, { securityContext: { procMount: 'Unmasked' } }));
    expect(un.HostConfig.MaskedPaths).toEqual([]);
    expect(un.HostConfig.ReadonlyPaths).toEqual([]);
    const def = create(withSc(undefined, { securityContext: { procMount: 'Default' } }));
    expect(def.HostConfig.MaskedPaths).toBeUndefined();
  });
  it('seccomp: Unconfined by default, RuntimeDefault leaves Docker’s default profile on', () => {
    expect(create(withSc(undefined)).HostConfig.SecurityOpt).toEqual(['seccomp=unconfined']);
    expect(create(withSc({ seccompProfile: { type: 'RuntimeDefault' } })).HostConfig.SecurityOpt).toEqual([]);
    expect(create(withSc(undefined, { securityContext: { allowPrivilegeEscalation: false } })).HostConfig.SecurityOpt).toEqual(['seccomp=unconfined', 'no-new-privileges']);
  });
});

describe('validation of security-context fields in static pods (validatePod)', () => {
  it.each([
    [{ securityContext: { fsGroupChangePolicy: 'Sometimes' } }, 'spec.securityContext.fsGroupChangePolicy: Unsupported value: "Sometimes": supported values: "Always", "OnRootMismatch"'],
    [{ securityContext: { seccompProfile: { type: 'Localhost' } } }, 'spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost'],
    [{ securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: '../x.json' } } }, `spec.securityContext.seccompProfile.localhostProfile: Invalid value: "../x.json": must not contain '..'`],
    [{ securityContext: { seccompProfile: { type: 'RuntimeDefault', localhostProfile: 'x.json' } } }, 'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "x.json": can only be set when seccomp type is Localhost'],
    [
      { securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '1' }, { name: 'net/core/somaxconn', value: '2' }] } },
      'spec.securityContext.sysctls[1].name: Duplicate value: "net/core/somaxconn"',
    ],
    [{ containers: [{ name: 'c', image: 'i', securityContext: { procMount: 'Sometimes' } }] }, 'spec.containers[0].securityContext.procMount: Unsupported value: "Sometimes": supported values: "Default", "Unmasked"'],
  ])('%j', (specPart, want) => {
    const p = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }], ...specPart } };
    expect(validatePod(p).map((e) => `${e.field}: ${e.detail}`)).toEqual([want]);
  });
  it('accepts the valid values', () => {
    const p = {
      metadata: { name: 'p' },
      spec: {
        securityContext: { fsGroup: 1, fsGroupChangePolicy: 'OnRootMismatch', sysctls: [{ name: 'kernel.shm_rmid_forced', value: '1' }], seccompProfile: { type: 'Localhost', localhostProfile: 'a/b.json' } },
        containers: [{ name: 'c', image: 'i', securityContext: { procMount: 'Unmasked', seccompProfile: { type: 'RuntimeDefault' } } }],
      },
    };
    expect(validatePod(p)).toEqual([]);
  });
});
