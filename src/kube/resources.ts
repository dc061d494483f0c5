// Resource addressing: which REST path an object lives at. Versions of groups that changed across the releases berth
// supports (discovery.k8s.io, policy) are picked by discovery at start-up and set with `withVersion`.

/** One REST resource. `group` is '' for the core ("legacy") group served under /api. */
export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  /** Plural, lowercase, as in the URL: `pods`, `nodes`, `endpointslices`. */
  readonly resource: string;
  readonly namespaced: boolean;
}

export interface PathOptions {
  /** Required for a single namespaced object; absent on a namespaced collection = all namespaces. */
  namespace?: string | undefined;
  name?: string | undefined;
  /** `status`, `eviction`, `binding`, ... */
  subresource?: string | undefined;
}

/** `apiVersion` as written in objects: `v1`, `coordination.k8s.io/v1`. */
export function groupVersion(ref: Pick<ResourceRef, 'group' | 'version'>): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

/** The API path of a collection, an object or an object's subresource (without the server's base path). */
export function resourcePath(ref: ResourceRef, opts: PathOptions = {}): string {
  const root = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  if (!ref.namespaced && opts.namespace) {
    throw new TypeError(`${ref.resource} is cluster-scoped: no namespace (got ${opts.namespace})`);
  }
  if (ref.namespaced && opts.name !== undefined && !opts.namespace) {
    throw new TypeError(`${ref.resource}/${opts.name} is namespaced: a namespace is required`);
  }
  if (opts.subresource && opts.name === undefined) throw new TypeError('a subresource needs a name');
  if (opts.name === '') throw new TypeError(`empty ${ref.resource} name`);
  let p = root;
  if (ref.namespaced && opts.namespace) p += `/namespaces/${encodeURIComponent(opts.namespace)}`;
  p += `/${ref.resource}`;
  if (opts.name !== undefined) p += `/${encodeURIComponent(opts.name)}`;
  if (opts.subresource) p += `/${opts.subresource}`;
  return p;
}

/** The same resource at another version (picked by discovery). */
export function withVersion(ref: ResourceRef, version: string): ResourceRef {
  return { ...ref, version };
}

/** The resources a node agent touches. Groups with version churn carry their newest version; see `withVersion`. */
export const resources = {
  pods: { group: '', version: 'v1', resource: 'pods', namespaced: true },
  nodes: { group: '', version: 'v1', resource: 'nodes', namespaced: false },
  namespaces: { group: '', version: 'v1', resource: 'namespaces', namespaced: false },
  services: { group: '', version: 'v1', resource: 'services', namespaced: true },
  endpoints: { group: '', version: 'v1', resource: 'endpoints', namespaced: true },
  events: { group: '', version: 'v1', resource: 'events', namespaced: true },
  secrets: { group: '', version: 'v1', resource: 'secrets', namespaced: true },
  configmaps: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
  serviceaccounts: { group: '', version: 'v1', resource: 'serviceaccounts', namespaced: true },
  persistentvolumeclaims: { group: '', version: 'v1', resource: 'persistentvolumeclaims', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespaced: true },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', namespaced: true },
  poddisruptionbudgets: { group: 'policy', version: 'v1', resource: 'poddisruptionbudgets', namespaced: true },
  runtimeclasses: { group: 'node.k8s.io', version: 'v1', resource: 'runtimeclasses', namespaced: false },
  csidrivers: { group: 'storage.k8s.io', version: 'v1', resource: 'csidrivers', namespaced: false },
} as const satisfies Record<string, ResourceRef>;

/** Cache key as client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: { metadata?: { namespace?: string | undefined; name?: string | undefined } | undefined }): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}
