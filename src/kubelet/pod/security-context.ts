// Pod and container security contexts: the pure decisions upstream's kubelet makes about them.
// - verifyRunAsNonRoot: pkg/kubelet/kuberuntime/security_context_others.go (messages verbatim).
// - the effective context: pkg/securitycontext/util.go DetermineEffectiveSecurityContext.
// - sysctls: pkg/kubelet/sysctl (safe_sysctls.go, allowlist.go) and component-helpers' sysctl namespaces.
// - seccomp: pkg/kubelet/kuberuntime/helpers.go (fieldProfile) with cri-dockerd's Docker options.
// - AppArmor: pkg/security/apparmor/validate.go and pkg/kubelet/lifecycle's AppArmor admit handler.
import path from 'node:path';
import type { Container, Pod, SeccompProfile, SecurityContext } from 'kubernetes-types/core/v1';
import type { AdmitResult } from './admission.ts';
import type { FieldError } from './field-errors.ts';

const MAX_INT32 = 2147483647;

/** `name_namespace(uid)`: pkg/kubelet/util/format.Pod, which upstream's messages quote with %q. */
export const formatPod = (pod: Pod): string => `${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${pod.metadata?.uid ?? ''})`;

/** The user an image runs as, as CRI's ImageStatus reports it: a numeric uid, or a user name, or neither (root). */
export interface ImageUser {
  uid?: number;
  username?: string;
}

type EffectiveContext = SecurityContext & { appArmorProfile?: { type: string; localhostProfile?: string } };

/** The container's security context over the pod's (DetermineEffectiveSecurityContext). */
export function effectiveSecurityContext(pod: Pod, c: Container): EffectiveContext {
  const psc = pod.spec?.securityContext ?? {};
  const out: EffectiveContext = {};
  if (psc.runAsUser !== undefined) out.runAsUser = psc.runAsUser;
  if (psc.runAsGroup !== undefined) out.runAsGroup = psc.runAsGroup;
  if (psc.runAsNonRoot !== undefined) out.runAsNonRoot = psc.runAsNonRoot;
  if (psc.seLinuxOptions) out.seLinuxOptions = psc.seLinuxOptions;
  if (psc.seccompProfile) out.seccompProfile = psc.seccompProfile;
  const pApp = (psc as { appArmorProfile?: EffectiveContext['appArmorProfile'] }).appArmorProfile;
  if (pApp) out.appArmorProfile = pApp;
  for (const [k, v] of Object.entries(c.securityContext ?? {})) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Why the container may not start under runAsNonRoot, or undefined when it may. `image` is the user of the
 * image the container runs (an image without USER runs as root: pass `{ uid: 0 }`, as getImageUser does).
 */
export function verifyRunAsNonRoot(pod: Pod, c: Container, image: ImageUser): string | undefined {
  const sc = effectiveSecurityContext(pod, c);
  if (!sc.runAsNonRoot) return undefined;
  const where = `(pod: ${JSON.stringify(formatPod(pod))}, container: ${c.name})`;
  if (sc.runAsUser !== undefined) {
    if (sc.runAsUser === 0) return `container's runAsUser breaks non-root policy ${where}`;
    return undefined;
  }
  if (image.uid === undefined && image.username)
    return `container has runAsNonRoot and image has non-numeric user (${image.username}), cannot verify user is non-root ${where}`;
  if (image.uid !== undefined) {
    if (image.uid === 0) return `container has runAsNonRoot and image will run as root ${where}`;
    if (image.uid < 0 || image.uid > MAX_INT32)
      return `container has runAsNonRoot and image has an invalid user id (${image.uid}). (Must be 1-(${MAX_INT32})): must be between 0 and ${MAX_INT32}, inclusive ${where}`;
  }
  return undefined;
}

/** getImageUser: neither uid nor name → root. */
export const imageUserOrRoot = (u: ImageUser): ImageUser => (u.uid === undefined && !u.username ? { uid: 0 } : u);

/**
 * The group that owns the pod's volumes and is added to every container's groups (pod securityContext.fsGroup);
 * volume ownership and setgid follow it (volumes/*), the container's supplemental groups get it here.
 */
export const fsGroupOf = (pod: Pod): number | undefined => pod.spec?.securityContext?.fsGroup;

/** Supplemental groups of every container: fsGroup first, then supplementalGroups (kuberuntime's security_context.go). */
export function supplementalGroupsOf(pod: Pod): number[] | undefined {
  const groups: number[] = [];
  const fs = fsGroupOf(pod);
  if (fs !== undefined) groups.push(fs);
  for (const g of pod.spec?.securityContext?.supplementalGroups ?? []) groups.push(g);
  return groups.length ? groups : undefined;
}

// --- sysctls ---------------------------------------------------------------------------------------

/** pkg/kubelet/sysctl/safe_sysctls.go (the set every kubelet allows without --allowed-unsafe-sysctls). */
export const SAFE_SYSCTLS: readonly string[] = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
];

type SysctlNamespace = 'ipc' | 'net';

/** component-helpers/node/util/sysctl NormalizeName: `net/ipv4/conf/eno2.100/rp_filter` → dots. */
export function normalizeSysctlName(name: string): string {
  const i = name.search(/[./]/);
  if (i === -1 || name[i] === '.') return name;
  return name.replace(/[./]/g, (ch) => (ch === '.' ? '/' : '.'));
}

/** The namespace a sysctl (or a `prefix*` pattern) lives in, or undefined when not namespaced. */
export function sysctlNamespace(name: string): SysctlNamespace | undefined {
  const n = normalizeSysctlName(name).replace(/\*$/, '');
  if (n === 'kernel.sem' || n.startsWith('kernel.shm') || n.startsWith('kernel.msg') || n.startsWith('fs.mqueue.')) return 'ipc';
  if (n.startsWith('net.')) return 'net';
  return undefined;
}

const SYSCTL_PATTERN = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$/;

export interface SysctlAllowlist {
  exact: Map<string, SysctlNamespace>;
  prefixes: Map<string, SysctlNamespace>;
}

/**
 * The safe sysctls plus `--allowed-unsafe-sysctls` patterns (`name` or `prefix*`); throws with upstream's
 * NewAllowlist wording for a malformed or non-namespaced pattern.
 */
export function buildSysctlAllowlist(unsafe: readonly string[]): SysctlAllowlist {
  const out: SysctlAllowlist = { exact: new Map(), prefixes: new Map() };
  for (const raw of [...SAFE_SYSCTLS, ...unsafe]) {
    const s = normalizeSysctlName(raw);
    if (s.length > 253 || !SYSCTL_PATTERN.test(s))
      throw new Error(`sysctl ${JSON.stringify(s)} must have at most 253 characters and match regex ${SYSCTL_PATTERN.source}`);
    const ns = sysctlNamespace(s);
    if (!ns) throw new Error(`the sysctls ${JSON.stringify(s)} are not known to be namespaced`);
    if (s.endsWith('*')) out.prefixes.set(s.slice(0, -1), ns);
    else out.exact.set(s, ns);
  }
  return out;
}

function validateSysctl(allow: SysctlAllowlist, raw: string, hostNet: boolean, hostIPC: boolean): string | undefined {
  const name = normalizeSysctlName(raw);
  const q = JSON.stringify(name);
  const check = (ns: SysctlNamespace): string | undefined => {
    if (ns === 'ipc' && hostIPC) return `${q} not allowed with host ${ns} enabled`;
    if (ns === 'net' && hostNet) return `${q} not allowed with host ${ns} enabled`;
    return undefined;
  };
  const exact = allow.exact.get(name);
  if (exact) return check(exact);
  for (const [p, ns] of allow.prefixes) if (name.startsWith(p)) return check(ns);
  return `${q} not allowlisted`;
}

/** The sysctl admit handler (allowlist.go Admit): reason SysctlForbidden. Pure. */
export function admitSysctls(pod: Pod, allow: SysctlAllowlist): AdmitResult {
  for (const s of pod.spec?.securityContext?.sysctls ?? []) {
    const err = validateSysctl(allow, s.name, pod.spec?.hostNetwork ?? false, pod.spec?.hostIPC ?? false);
    if (err) return { admit: false, reason: 'SysctlForbidden', message: `forbidden sysctl: ${err}` };
  }
  return { admit: true };
}

// --- seccomp and AppArmor ----------------------------------------------------------------------------

/** CRI's SecurityProfile: Localhost carries the absolute path of the profile on the node. */
export type SecurityProfile = { profileType: 'RuntimeDefault' | 'Unconfined' } | { profileType: 'Localhost'; localhostRef: string };

/**
 * The seccomp profile of a container: its own, else the pod's, else Unconfined (upstream's default while
 * SeccompDefault is off). Localhost profiles live under `<root-dir>/seccomp`; a path leaving it throws.
 */
export function seccompProfileOf(pod: Pod, c: Container, rootDir: string): SecurityProfile {
  const p: SeccompProfile | undefined = c.securityContext?.seccompProfile ?? pod.spec?.securityContext?.seccompProfile;
  if (!p || p.type === 'Unconfined') return { profileType: 'Unconfined' };
  if (p.type === 'RuntimeDefault') return { profileType: 'RuntimeDefault' };
  if (p.type === 'Localhost') {
    const root = path.join(rootDir, 'seccomp');
    const rel = p.localhostProfile ?? '';
    const full = path.resolve(root, rel);
    if (!rel || path.isAbsolute(rel) || !full.startsWith(root + path.sep))
      throw new Error(`invalid seccomp profile: localhostProfile ${JSON.stringify(rel)} must be a relative path under ${root}`);
    return { profileType: 'Localhost', localhostRef: full };
  }
  throw new Error(`invalid seccomp profile type: ${JSON.stringify(p.type)}`);
}

const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';

/** The AppArmor profile a container asks for (field, else the beta annotation), or undefined for unconfined/none. */
export function appArmorProfileOf(pod: Pod, c: Container): string | undefined {
  const field = effectiveSecurityContext(pod, c).appArmorProfile;
  if (field) {
    if (field.type === 'Unconfined') return undefined;
    if (field.type === 'RuntimeDefault') return 'runtime/default';
    if (field.type === 'Localhost') return `localhost/${field.localhostProfile ?? ''}`;
  }
  const ann = pod.metadata?.annotations?.[APPARMOR_ANNOTATION + c.name];
  if (!ann || ann === 'unconfined') return undefined;
  return ann;
}

/**
 * The AppArmor admit handler: a pending pod asking for a confined profile on a host without AppArmor is
 * rejected with reason AppArmor (pkg/kubelet/lifecycle/handlers.go, pkg/security/apparmor/validate.go).
 */
export function admitAppArmor(pod: Pod, hostAppArmorEnabled: boolean): AdmitResult {
  if (hostAppArmorEnabled) return { admit: true };
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  if (!all.some((c) => appArmorProfileOf(pod, c) !== undefined)) return { admit: true };
  return { admit: false, reason: 'AppArmor', message: 'Cannot enforce AppArmor: AppArmor is not enabled on the host' };
}

/** The security admit handlers in upstream's order (sysctls, then AppArmor); pure once built. */
export function buildSecurityAdmission(o: { allowedUnsafeSysctls: readonly string[]; hostAppArmorEnabled: boolean }): (pod: Pod) => AdmitResult {
  const allow = buildSysctlAllowlist(o.allowedUnsafeSysctls);
  return (pod) => {
    const s = admitSysctls(pod, allow);
    return s.admit ? admitAppArmor(pod, o.hostAppArmorEnabled) : s;
  };
}

// --- validation of static pods (pkg/apis/core/validation: security contexts) ----------------------------

const q = (v: unknown): string => JSON.stringify(v);

function validateSeccomp(errs: FieldError[], field: string, p: SeccompProfile | undefined): void {
  if (!p || typeof p !== 'object') return;
  if (!['Localhost', 'RuntimeDefault', 'Unconfined'].includes(p.type))
    errs.push({ field: `${field}.type`, detail: `Unsupported value: ${q(p.type)}: supported values: "Localhost", "RuntimeDefault", "Unconfined"` });
  if (p.type === 'Localhost') {
    const lp = p.localhostProfile;
    if (lp === undefined) errs.push({ field: `${field}.localhostProfile`, detail: 'Required value: must be set when seccomp type is Localhost' });
    else if (typeof lp !== 'string') errs.push({ field: `${field}.localhostProfile`, detail: `Invalid value: ${q(lp)}: must be a string` });
    else if (lp.startsWith('/') || lp.split('/').includes('..'))
      errs.push({ field: `${field}.localhostProfile`, detail: `Invalid value: ${q(lp)}: ${lp.startsWith('/') ? 'must be a relative path' : "must not contain '..'"}` });
  } else if (p.localhostProfile !== undefined)
    errs.push({ field: `${field}.localhostProfile`, detail: `Invalid value: ${q(p.localhostProfile)}: can only be set when seccomp type is Localhost` });
}

/** Security-context fields berth acts on: fsGroupChangePolicy, sysctls, seccompProfile, procMount. Pure. */
export function validateSecurityContexts(pod: Pod): FieldError[] {
  const errs: FieldError[] = [];
  const psc = pod.spec?.securityContext;
  if (psc && typeof psc === 'object') {
    const f = 'spec.securityContext';
    if (psc.fsGroupChangePolicy !== undefined && !['Always', 'OnRootMismatch'].includes(psc.fsGroupChangePolicy))
      errs.push({ field: `${f}.fsGroupChangePolicy`, detail: `Unsupported value: ${q(psc.fsGroupChangePolicy)}: supported values: "Always", "OnRootMismatch"` });
    const seen = new Set<string>();
    (Array.isArray(psc.sysctls) ? psc.sysctls : []).forEach((s, i) => {
      const name = normalizeSysctlName(String(s?.name ?? ''));
      if (!s?.name) errs.push({ field: `${f}.sysctls[${i}].name`, detail: 'Required value' });
      else if (name.length > 253 || !SYSCTL_PATTERN.test(name) || name.endsWith('*'))
        errs.push({ field: `${f}.sysctls[${i}].name`, detail: `Invalid value: ${q(s.name)}: must have at most 253 characters and match regex ${SYSCTL_PATTERN.source}` });
      else if (seen.has(name)) errs.push({ field: `${f}.sysctls[${i}].name`, detail: `Duplicate value: ${q(s.name)}` });
      seen.add(name);
    });
    validateSeccomp(errs, `${f}.seccompProfile`, psc.seccompProfile);
  }
  for (const [kind, list] of [
    ['containers', pod.spec?.containers],
    ['initContainers', pod.spec?.initContainers],
  ] as const)
    (Array.isArray(list) ? list : []).forEach((c, i) => {
      const sc = c?.securityContext;
      if (!sc || typeof sc !== 'object') return;
      const f = `spec.${kind}[${i}].securityContext`;
      if (sc.procMount !== undefined && !['Default', 'Unmasked'].includes(sc.procMount))
        errs.push({ field: `${f}.procMount`, detail: `Unsupported value: ${q(sc.procMount)}: supported values: "Default", "Unmasked"` });
      validateSeccomp(errs, `${f}.seccompProfile`, sc.seccompProfile);
    });
  return errs;
}
