// Defaulting and validation of Pods that reach the kubelet without passing an API server (static pods),
// following pkg/apis/core/v1/defaults.go and pkg/apis/core/validation. API-server pods are already
// defaulted and validated; validation is applied to them too (cheap) so a bad object never reaches Docker.
import type { Container, Pod, Probe } from 'kubernetes-types/core/v1';
import { isValidQuantity } from './quantity.ts';
import { validateSecurityContexts } from './security-context.ts';
import type { FieldError } from './field-errors.ts';

export { formatFieldErrors, type FieldError } from './field-errors.ts';

function defaultProbe(p: Probe | undefined): void {
  if (!p) return;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  if (p.httpGet) {
    p.httpGet.path ??= '/';
    p.httpGet.scheme ??= 'HTTP';
  }
}

/** Upstream's pull-policy default: Always for `:latest` or no tag (a digest alone counts as a tag). */
function hasLatestOrNoTag(image: string): boolean {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = name.lastIndexOf('/');
  const tagSep = name.indexOf(':', lastSlash + 1);
  if (tagSep < 0) return at < 0;
  return name.slice(tagSep + 1) === 'latest';
}

function defaultContainer(c: Container): void {
  if (typeof c !== 'object' || c === null) return;
  if (typeof c.image === 'string' && !c.imagePullPolicy) c.imagePullPolicy = hasLatestOrNoTag(c.image) ? 'Always' : 'IfNotPresent';
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (Array.isArray(c.ports)) for (const p of c.ports) if (p && typeof p === 'object') p.protocol ??= 'TCP';
  if (Array.isArray(c.env))
    for (const e of c.env) if (e?.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= 'v1';
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  // Requests default to limits (SetDefaults_ResourceRequirements semantics, via the pod's defaulting).
  if (c.resources?.limits) {
    c.resources.requests ??= {};
    for (const [k, v] of Object.entries(c.resources.limits)) if (c.resources.requests[k] === undefined) c.resources.requests[k] = v;
  }
}

/** Applies the API server's defaults in place (idempotent). */
export function applyPodDefaults(pod: Pod): Pod {
  pod.metadata ??= {};
  pod.metadata.namespace ||= 'default';
  const spec = (pod.spec ??= { containers: [] });
  if (typeof spec !== 'object') return pod;
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.serviceAccountName ??= spec.serviceAccount;
  if (Array.isArray(spec.containers)) spec.containers.forEach(defaultContainer);
  if (Array.isArray(spec.initContainers)) spec.initContainers.forEach(defaultContainer);
  // defaultHostNetworkPorts: with hostNetwork, hostPort defaults to containerPort.
  if (spec.hostNetwork === true)
    for (const c of [...(Array.isArray(spec.containers) ? spec.containers : []), ...(Array.isArray(spec.initContainers) ? spec.initContainers : [])])
      if (c && Array.isArray(c.ports)) for (const p of c.ports) if (p && typeof p === 'object' && !p.hostPort) p.hostPort = p.containerPort;
  if (Array.isArray(spec.volumes))
    for (const v of spec.volumes) {
      if (!v || typeof v !== 'object') continue;
      const sources = Object.keys(v).filter((k) => k !== 'name');
      if (sources.length === 0) v.emptyDir = {};
      if (v.hostPath) v.hostPath.type ??= '';
    }
  return pod;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const C_IDENTIFIER_ENV = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const q = (v: unknown): string => JSON.stringify(v);
const typeName = (v: unknown): string => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

function checkType(errs: FieldError[], field: string, v: unknown, want: 'string' | 'number' | 'boolean' | 'object' | 'array'): boolean {
  if (v === undefined) return true;
  const ok = want === 'array' ? Array.isArray(v) : want === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === want;
  if (!ok) errs.push({ field, detail: `Invalid value: ${q(v)}: must be of type ${want}, got ${typeName(v)}` });
  return ok;
}

function validateProbe(errs: FieldError[], path: string, p: unknown): void {
  if (!checkType(errs, path, p, 'object') || p === undefined) return;
  const probe = p as Probe;
  const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((k) => (probe as Record<string, unknown>)[k] !== undefined);
  if (handlers.length === 0) errs.push({ field: path, detail: 'Required value: must specify a handler type' });
  if (handlers.length > 1) errs.push({ field: `${path}.${handlers[1]}`, detail: 'Forbidden: may not specify more than 1 handler type' });
  // Handler ports (validateHTTPGetAction / validateTCPSocketAction / validateGRPCAction): a number in range or a name.
  for (const k of ['httpGet', 'tcpSocket', 'grpc'] as const) {
    const h = (probe as Record<string, unknown>)[k];
    if (!checkType(errs, `${path}.${k}`, h, 'object') || !h) continue;
    const port = (h as { port?: unknown }).port;
    if (port === undefined) errs.push({ field: `${path}.${k}.port`, detail: 'Required value' });
    else if (k === 'grpc' && typeof port !== 'number') errs.push({ field: `${path}.${k}.port`, detail: `Invalid value: ${q(port)}: must be a number` });
    else validatePort(errs, `${path}.${k}.port`, port);
  }
  for (const k of ['timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'initialDelaySeconds'] as const) {
    const v = probe[k];
    if (v !== undefined && (typeof v !== 'number' || v < 0 || !Number.isInteger(v)))
      errs.push({ field: `${path}.${k}`, detail: `Invalid value: ${q(v)}: must be greater than or equal to 0` });
  }
}

const FILE_MODE_MSG = 'must be a number between 0 and 0777 (octal), both inclusive';

/** validation.go validateLocalDescendingPath (+ a NUL byte, which no path on the node can hold). */
function validateLocalDescendingPath(errs: FieldError[], field: string, target: string): void {
  if (target.startsWith('/')) errs.push({ field, detail: `Invalid value: ${q(target)}: must be a relative path` });
  if (target.split('/').includes('..')) errs.push({ field, detail: `Invalid value: ${q(target)}: must not contain '..'` });
  if (target.includes('\0')) errs.push({ field, detail: `Invalid value: ${q(target)}: must not contain a NUL byte` });
}

/** validation.go validateLocalNonReservedPath: also no leading `..` in the first name (`..data` is the writer's). */
function validateLocalNonReservedPath(errs: FieldError[], field: string, target: string): void {
  validateLocalDescendingPath(errs, field, target);
  if (target.startsWith('..') && !target.startsWith('../')) errs.push({ field, detail: `Invalid value: ${q(target)}: must not start with '..'` });
}

function validateMode(errs: FieldError[], field: string, mode: unknown): void {
  if (mode === undefined) return;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) errs.push({ field, detail: `Invalid value: ${q(mode)}: ${FILE_MODE_MSG}` });
}

/** validateKeyToPath / validateDownwardAPIVolumeFile: items of configMap, secret, downwardAPI (and projections). */
function validateItems(errs: FieldError[], field: string, items: unknown, withKey: boolean): void {
  if (!checkType(errs, field, items, 'array') || items === undefined) return;
  (items as { key?: unknown; path?: unknown; mode?: unknown }[]).forEach((it, k) => {
    const ip = `${field}[${k}]`;
    if (!checkType(errs, ip, it, 'object')) return;
    if (withKey && (it.key === undefined || it.key === '')) errs.push({ field: `${ip}.key`, detail: 'Required value' });
    if (it.path === undefined || it.path === '') errs.push({ field: `${ip}.path`, detail: 'Required value' });
    else if (checkType(errs, `${ip}.path`, it.path, 'string')) validateLocalNonReservedPath(errs, `${ip}.path`, it.path as string);
    validateMode(errs, `${ip}.mode`, it.mode);
  });
}

type SourceWithItems = { items?: unknown; defaultMode?: unknown };

function validateVolumeSources(errs: FieldError[], vp: string, v: Record<string, unknown>): void {
  for (const kind of ['configMap', 'secret', 'downwardAPI'] as const) {
    const src = v[kind] as SourceWithItems | undefined;
    if (!checkType(errs, `${vp}.${kind}`, src, 'object') || !src) continue;
    validateItems(errs, `${vp}.${kind}.items`, src.items, kind !== 'downwardAPI');
    validateMode(errs, `${vp}.${kind}.defaultMode`, src.defaultMode);
  }
  const proj = v.projected as { sources?: unknown; defaultMode?: unknown } | undefined;
  if (!checkType(errs, `${vp}.projected`, proj, 'object') || !proj) return;
  validateMode(errs, `${vp}.projected.defaultMode`, proj.defaultMode);
  if (!checkType(errs, `${vp}.projected.sources`, proj.sources, 'array')) return;
  ((proj.sources ?? []) as Record<string, unknown>[]).forEach((src, j) => {
    const sp = `${vp}.projected.sources[${j}]`;
    if (!checkType(errs, sp, src, 'object')) return;
    for (const kind of ['configMap', 'secret', 'downwardAPI'] as const) {
      const s2 = src[kind] as SourceWithItems | undefined;
      if (checkType(errs, `${sp}.${kind}`, s2, 'object') && s2) validateItems(errs, `${sp}.${kind}.items`, s2.items, kind !== 'downwardAPI');
    }
    const sat = src.serviceAccountToken as { path?: unknown } | undefined;
    if (checkType(errs, `${sp}.serviceAccountToken`, sat, 'object') && sat) {
      if (sat.path === undefined || sat.path === '') errs.push({ field: `${sp}.serviceAccountToken.path`, detail: 'Required value' });
      else if (checkType(errs, `${sp}.serviceAccountToken.path`, sat.path, 'string'))
        validateLocalNonReservedPath(errs, `${sp}.serviceAccountToken.path`, sat.path as string);
    }
  });
}

function validatePort(errs: FieldError[], field: string, v: unknown, allowZero = false): void {
  if (typeof v === 'string') return; // named port (probe targets)
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535)
    errs.push({ field, detail: `Invalid value: ${q(v)}: must be between 1 and 65535, inclusive` });
}

function validateContainers(errs: FieldError[], path: string, list: unknown, names: Set<string>, required: boolean): void {
  if (list === undefined) {
    if (required) errs.push({ field: path, detail: 'Required value' });
    return;
  }
  if (!checkType(errs, path, list, 'array')) return;
  const arr = list as unknown[];
  if (required && arr.length === 0) errs.push({ field: path, detail: 'Required value' });
  arr.forEach((raw, i) => {
    const p = `${path}[${i}]`;
    if (!checkType(errs, p, raw, 'object')) return;
    const c = raw as Container;
    if (c.name === undefined || c.name === '') errs.push({ field: `${p}.name`, detail: 'Required value' });
    else if (checkType(errs, `${p}.name`, c.name, 'string')) {
      if (!DNS1123_LABEL.test(c.name) || c.name.length > 63) errs.push({ field: `${p}.name`, detail: `Invalid value: ${q(c.name)}: ${LABEL_MSG}` });
      if (names.has(c.name)) errs.push({ field: `${p}.name`, detail: `Duplicate value: ${q(c.name)}` });
      names.add(c.name);
    }
    if (c.image === undefined || c.image === '') errs.push({ field: `${p}.image`, detail: 'Required value' });
    else if (checkType(errs, `${p}.image`, c.image, 'string') && c.image.trim() !== c.image)
      errs.push({ field: `${p}.image`, detail: 'Invalid value: must not have leading or trailing whitespace' });
    for (const k of ['command', 'args'] as const) {
      if (checkType(errs, `${p}.${k}`, c[k], 'array'))
        (c[k] ?? []).forEach((s, j) => checkType(errs, `${p}.${k}[${j}]`, s, 'string'));
    }
    checkType(errs, `${p}.workingDir`, c.workingDir, 'string');
    if (c.imagePullPolicy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(c.imagePullPolicy))
      errs.push({ field: `${p}.imagePullPolicy`, detail: `Unsupported value: ${q(c.imagePullPolicy)}: supported values: "Always", "IfNotPresent", "Never"` });
    if (checkType(errs, `${p}.env`, c.env, 'array'))
      (c.env ?? []).forEach((e, j) => {
        const ep = `${p}.env[${j}]`;
        if (!checkType(errs, ep, e, 'object')) return;
        if (!e.name) errs.push({ field: `${ep}.name`, detail: 'Required value' });
        else if (typeof e.name !== 'string' || !C_IDENTIFIER_ENV.test(e.name))
          errs.push({ field: `${ep}.name`, detail: `Invalid value: ${q(e.name)}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit` });
        checkType(errs, `${ep}.value`, e.value, 'string');
        if (e.value !== undefined && e.valueFrom !== undefined)
          errs.push({ field: `${ep}.valueFrom`, detail: 'Invalid value: "": may not be specified when `value` is not empty' });
        else if (checkType(errs, `${ep}.valueFrom`, e.valueFrom, 'object') && e.valueFrom) {
          const n = ['configMapKeyRef', 'fieldRef', 'resourceFieldRef', 'secretKeyRef'].filter((k) => (e.valueFrom as Record<string, unknown>)[k] !== undefined).length;
          if (n === 0) errs.push({ field: `${ep}.valueFrom`, detail: 'Invalid value: "": must specify one of: `configMapKeyRef`, `fieldRef`, `resourceFieldRef` or `secretKeyRef`' });
          else if (n > 1) errs.push({ field: `${ep}.valueFrom`, detail: 'Invalid value: "": may not have more than one field specified at a time' });
        }
      });
    if (checkType(errs, `${p}.ports`, c.ports, 'array'))
      (c.ports ?? []).forEach((port, j) => {
        const pp = `${p}.ports[${j}]`;
        if (!checkType(errs, pp, port, 'object')) return;
        if (port.containerPort === undefined || port.containerPort === 0) errs.push({ field: `${pp}.containerPort`, detail: 'Required value' });
        else if (typeof port.containerPort === 'string') errs.push({ field: `${pp}.containerPort`, detail: `Invalid value: ${q(port.containerPort)}: must be between 1 and 65535, inclusive` });
        else validatePort(errs, `${pp}.containerPort`, port.containerPort);
        if (port.hostPort !== undefined && port.hostPort !== 0) validatePort(errs, `${pp}.hostPort`, port.hostPort);
        if (port.protocol !== undefined && !['TCP', 'UDP', 'SCTP'].includes(port.protocol))
          errs.push({ field: `${pp}.protocol`, detail: `Unsupported value: ${q(port.protocol)}: supported values: "SCTP", "TCP", "UDP"` });
      });
    if (checkType(errs, `${p}.resources`, c.resources, 'object') && c.resources) {
      for (const kind of ['limits', 'requests'] as const) {
        const m = c.resources[kind];
        if (!checkType(errs, `${p}.resources.${kind}`, m, 'object') || !m) continue;
        for (const [k, v] of Object.entries(m))
          if (!isValidQuantity(v)) errs.push({ field: `${p}.resources.${kind}[${k}]`, detail: `Invalid value: ${q(v)}: must be a valid quantity` });
          else if (String(v).trim().startsWith('-')) errs.push({ field: `${p}.resources.${kind}[${k}]`, detail: `Invalid value: ${q(v)}: must be greater than or equal to 0` });
      }
    }
    validateProbe(errs, `${p}.livenessProbe`, c.livenessProbe);
    validateProbe(errs, `${p}.readinessProbe`, c.readinessProbe);
    validateProbe(errs, `${p}.startupProbe`, c.startupProbe);
    if (checkType(errs, `${p}.volumeMounts`, c.volumeMounts, 'array'))
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (!checkType(errs, `${p}.volumeMounts[${j}]`, m, 'object')) return;
        if (!m?.name) errs.push({ field: `${p}.volumeMounts[${j}].name`, detail: 'Required value' });
        if (!m?.mountPath) errs.push({ field: `${p}.volumeMounts[${j}].mountPath`, detail: 'Required value' });
        // validateVolumeMounts: upstream names subPath/subPathExpr on the list, not the index.
        const vm = `${p}.volumeMounts`;
        if (checkType(errs, `${vm}[${j}].subPath`, m.subPath, 'string') && m.subPath) validateLocalDescendingPath(errs, `${vm}.subPath`, m.subPath);
        if (checkType(errs, `${vm}[${j}].subPathExpr`, m.subPathExpr, 'string') && m.subPathExpr) {
          if (m.subPath)
            errs.push({ field: `${vm}[${j}].subPathExpr`, detail: `Invalid value: ${q(m.subPathExpr)}: subPathExpr and subPath are mutually exclusive` });
          validateLocalDescendingPath(errs, `${vm}.subPathExpr`, m.subPathExpr);
        }
      });
  });
}

/** Validates a (defaulted) Pod; returns every problem found (empty = valid). */
export function validatePod(pod: unknown): FieldError[] {
  const errs: FieldError[] = [];
  if (!checkType(errs, '', pod, 'object') || pod === undefined) return errs;
  const p = pod as Pod;
  if (p.kind !== undefined && p.kind !== 'Pod') errs.push({ field: 'kind', detail: `Invalid value: ${q(p.kind)}: expected "Pod"` });
  if (p.apiVersion !== undefined && p.apiVersion !== 'v1') errs.push({ field: 'apiVersion', detail: `Invalid value: ${q(p.apiVersion)}: expected "v1"` });
  if (!checkType(errs, 'metadata', p.metadata, 'object') || !p.metadata) {
    if (!p.metadata) errs.push({ field: 'metadata.name', detail: 'Required value: name or generateName is required' });
  } else {
    const name = p.metadata.name;
    if (!name) errs.push({ field: 'metadata.name', detail: 'Required value: name or generateName is required' });
    else if (checkType(errs, 'metadata.name', name, 'string') && (!DNS1123_SUBDOMAIN.test(name) || name.length > 253))
      errs.push({ field: 'metadata.name', detail: `Invalid value: ${q(name)}: ${SUBDOMAIN_MSG}` });
    const ns = p.metadata.namespace;
    if (ns !== undefined && checkType(errs, 'metadata.namespace', ns, 'string') && (!DNS1123_LABEL.test(ns) || ns.length > 63))
      errs.push({ field: 'metadata.namespace', detail: `Invalid value: ${q(ns)}: ${LABEL_MSG}` });
    checkType(errs, 'metadata.labels', p.metadata.labels, 'object');
    checkType(errs, 'metadata.annotations', p.metadata.annotations, 'object');
  }
  if (!p.spec) {
    errs.push({ field: 'spec.containers', detail: 'Required value' });
    return errs;
  }
  if (!checkType(errs, 'spec', p.spec, 'object')) return errs;
  const s = p.spec;
  const names = new Set<string>();
  validateContainers(errs, 'spec.containers', s.containers, names, true);
  validateContainers(errs, 'spec.initContainers', s.initContainers, names, false);
  if (s.restartPolicy !== undefined && !['Always', 'OnFailure', 'Never'].includes(s.restartPolicy))
    errs.push({ field: 'spec.restartPolicy', detail: `Unsupported value: ${q(s.restartPolicy)}: supported values: "Always", "OnFailure", "Never"` });
  const tgps = s.terminationGracePeriodSeconds;
  if (tgps !== undefined && (typeof tgps !== 'number' || tgps < 0))
    errs.push({ field: 'spec.terminationGracePeriodSeconds', detail: `Invalid value: ${q(tgps)}: must be greater than or equal to 0` });
  const ads = s.activeDeadlineSeconds;
  if (ads !== undefined && (typeof ads !== 'number' || ads < 1))
    errs.push({ field: 'spec.activeDeadlineSeconds', detail: `Invalid value: ${q(ads)}: must be between 1 and 2147483647, inclusive` });
  checkType(errs, 'spec.hostNetwork', s.hostNetwork, 'boolean');
  checkType(errs, 'spec.nodeSelector', s.nodeSelector, 'object');
  const volNames = new Set<string>();
  if (checkType(errs, 'spec.volumes', s.volumes, 'array'))
    (s.volumes ?? []).forEach((v, i) => {
      const vp = `spec.volumes[${i}]`;
      if (!checkType(errs, vp, v, 'object')) return;
      if (!v.name) errs.push({ field: `${vp}.name`, detail: 'Required value' });
      else if (typeof v.name !== 'string' || !DNS1123_LABEL.test(v.name) || v.name.length > 63)
        errs.push({ field: `${vp}.name`, detail: `Invalid value: ${q(v.name)}: ${LABEL_MSG}` });
      else if (volNames.has(v.name)) errs.push({ field: `${vp}.name`, detail: `Duplicate value: ${q(v.name)}` });
      else volNames.add(v.name);
      if (v.hostPath && !v.hostPath.path) errs.push({ field: `${vp}.hostPath.path`, detail: 'Required value' });
      validateVolumeSources(errs, vp, v as unknown as Record<string, unknown>);
    });
  const all = [...(Array.isArray(s.containers) ? s.containers : []), ...(Array.isArray(s.initContainers) ? s.initContainers : [])];
  all.forEach((c) => {
    if (!c || typeof c !== 'object' || !Array.isArray(c.volumeMounts)) return;
    for (const m of c.volumeMounts)
      if (m?.name && !volNames.has(m.name))
        errs.push({ field: `spec.containers[${s.containers.indexOf(c)}].volumeMounts.name`, detail: `Not found: ${q(m.name)}` });
  });
  errs.push(...validateSecurityContexts(p));
  return errs;
}
