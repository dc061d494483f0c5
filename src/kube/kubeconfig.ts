// Kubeconfig loading as kubectl/client-go do it (k8s.io/client-go/tools/clientcmd: loader.go, client_config.go,
// validation.go; rest/config.go InClusterConfig): an explicit path, else the KUBECONFIG list merged (first file to set
// a name wins), else ~/.kube/config, else the in-cluster service account. Relative paths resolve against the directory
// of the file that named them. Every problem is reported at once in one InvalidConfigError.
// The environment is a parameter: `process.env` is read only by the composition root.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { parse as parseYaml } from 'yaml';
import { InvalidConfigError, errorMessage, type Clock, systemClock, type Logger, silentLogger } from '../lib/index.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** TLS material, already read from files / decoded from `*-data`. */
export interface TlsConfig {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  insecureSkipTlsVerify: boolean;
  /** SNI and the name the serving certificate is checked against (`tls-server-name`). */
  serverName?: string | undefined;
}

/** How requests authenticate besides a client certificate (which lives in `tls`). */
export type AuthConfig =
  | { type: 'none' }
  /** `tokenFile` set: the file is re-read periodically (rotated service-account tokens); `token` is the first read. */
  | { type: 'token'; token: string; tokenFile?: string | undefined }
  | { type: 'basic'; username: string; password: string };

/** Everything a client needs to talk to one API server. Produced by `loadClientConfig`; frozen. */
export interface ClientConfig {
  /** `https://host:port` possibly with a base path; no trailing slash. */
  readonly server: string;
  /** Where it came from (file list or `in-cluster`), for logs. */
  readonly source: string;
  readonly context: string | undefined;
  /** The context's default namespace (or the service account's), if any. */
  readonly namespace: string | undefined;
  readonly tls: Readonly<TlsConfig>;
  readonly auth: Readonly<AuthConfig>;
}

// ---------------------------------------------------------------- raw kubeconfig (as written in YAML)

export interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
  [k: string]: unknown;
}
export interface RawUser {
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  as?: string;
  'as-groups'?: string[];
  'auth-provider'?: unknown;
  exec?: unknown;
  [k: string]: unknown;
}
export interface RawContext {
  cluster?: string;
  user?: string;
  namespace?: string;
  [k: string]: unknown;
}
/** A kubeconfig with named lists turned into maps (the merged form). */
export interface Kubeconfig {
  clusters: Map<string, RawCluster>;
  users: Map<string, RawUser>;
  contexts: Map<string, RawContext>;
  currentContext: string | undefined;
  /** Files it was read from, in precedence order. */
  files: string[];
}

const PATH_FIELDS_CLUSTER = ['certificate-authority'] as const;
const PATH_FIELDS_USER = ['client-certificate', 'client-key', 'tokenFile'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one kubeconfig file's text. Relative file references are resolved against `dir` (the file's directory).
 * Shape problems are appended to `problems` (prefixed with `file`); what can be understood is returned.
 */
export function parseKubeconfig(text: string, opts: { file: string; problems: string[] }): Kubeconfig {
  const { file, problems } = opts;
  const dir = path.dirname(path.resolve(file));
  const out: Kubeconfig = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: undefined, files: [file] };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err: unknown) {
    problems.push(`${file}: not valid YAML: ${errorMessage(err)}`);
    return out;
  }
  if (doc === null || doc === undefined) return out; // empty file: kubectl accepts it
  if (!isRecord(doc)) {
    problems.push(`${file}: not a kubeconfig (top level is not a mapping)`);
    return out;
  }
  if (typeof doc['current-context'] === 'string' && doc['current-context'] !== '') out.currentContext = doc['current-context'];

  const named = <T extends Record<string, unknown>>(listKey: string, itemKey: string, into: Map<string, T>, pathFields: readonly string[]): void => {
    const list = doc[listKey];
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) {
      problems.push(`${file}: ${listKey} must be a list`);
      return;
    }
    list.forEach((entry: unknown, i) => {
      if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name === '') {
        problems.push(`${file}: ${listKey}[${i}] has no name`);
        return;
      }
      const body = entry[itemKey] ?? {};
      if (!isRecord(body)) {
        problems.push(`${file}: ${listKey}[${i}] (${entry.name}): ${itemKey} must be a mapping`);
        return;
      }
      const item = { ...body } as Record<string, unknown>;
      for (const f of pathFields) {
        const v = item[f];
        if (typeof v === 'string' && v !== '' && !path.isAbsolute(v)) item[f] = path.resolve(dir, v);
      }
      // Within one file the first entry of a name wins too (client-go keeps the first while merging).
      if (!into.has(entry.name)) into.set(entry.name, item as T);
    });
  };
  named('clusters', 'cluster', out.clusters, PATH_FIELDS_CLUSTER);
  named('users', 'user', out.users, PATH_FIELDS_USER);
  named('contexts', 'context', out.contexts, []);
  return out;
}

/** Merges kubeconfigs in precedence order: the first file to define a name (or current-context) wins. */
export function mergeKubeconfigs(configs: Kubeconfig[]): Kubeconfig {
  const out: Kubeconfig = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: undefined, files: [] };
  for (const c of configs) {
    for (const [k, v] of c.clusters) if (!out.clusters.has(k)) out.clusters.set(k, v);
    for (const [k, v] of c.users) if (!out.users.has(k)) out.users.set(k, v);
    for (const [k, v] of c.contexts) if (!out.contexts.has(k)) out.contexts.set(k, v);
    out.currentContext ??= c.currentContext;
    out.files.push(...c.files);
  }
  return out;
}

// ---------------------------------------------------------------- loading

export interface LoadClientConfigOptions {
  /** `--kubeconfig`: this file only; it must exist. */
  kubeconfigPath?: string | undefined;
  /** `--context`: overrides current-context. */
  context?: string | undefined;
  /** Environment (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT). Never process.env implicitly. */
  env: Env;
  /** Prefix for /var/run/secrets/kubernetes.io/serviceaccount (tests). Default '/'. */
  inClusterRoot?: string | undefined;
}

async function exists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Finds and resolves the client configuration. Throws InvalidConfigError listing every problem found.
 * Order (client-go's ClientConfigLoadingRules + DeferredLoadingClientConfig): explicit path; KUBECONFIG (missing
 * entries skipped); $HOME/.kube/config; in-cluster service account.
 */
export async function loadClientConfig(opts: LoadClientConfigOptions): Promise<ClientConfig> {
  const { env } = opts;
  let files: string[] = [];
  if (opts.kubeconfigPath) {
    if (!(await exists(opts.kubeconfigPath))) throw new InvalidConfigError([`kubeconfig ${opts.kubeconfigPath}: file not found`]);
    files = [opts.kubeconfigPath];
  } else if (env.KUBECONFIG) {
    const listed = [...new Set(env.KUBECONFIG.split(path.delimiter).filter((p) => p !== ''))];
    for (const f of listed) if (await exists(f)) files.push(f);
  } else if (env.HOME) {
    const home = path.join(env.HOME, '.kube', 'config');
    if (await exists(home)) files = [home];
  }
  if (files.length === 0) {
    if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return inClusterConfig(env, opts.inClusterRoot);
    const tried = env.KUBECONFIG ? `KUBECONFIG=${env.KUBECONFIG}` : env.HOME ? path.join(env.HOME, '.kube', 'config') : '(no HOME)';
    throw new InvalidConfigError([
      `no kubeconfig found (tried ${tried}) and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); pass --kubeconfig`,
    ]);
  }
  const problems: string[] = [];
  const parsed: Kubeconfig[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (err: unknown) {
      problems.push(`kubeconfig ${f}: ${errorMessage(err)}`);
      continue;
    }
    parsed.push(parseKubeconfig(text, { file: f, problems }));
  }
  const merged = mergeKubeconfigs(parsed);
  return resolveClientConfig(merged, { context: opts.context, problems });
}

function decodeBase64(v: string, what: string, problems: string[]): Buffer | undefined {
  const clean = v.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
    problems.push(`${what} is not valid base64`);
    return undefined;
  }
  return Buffer.from(clean, 'base64');
}

async function readMaterial(file: string, what: string, problems: string[]): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err: unknown) {
    problems.push(`unable to read ${what} ${file}: ${errorMessage(err)}`);
    return undefined;
  }
}

/**
 * Picks the context (override, else current-context) and turns its cluster and user into a ClientConfig, reading
 * referenced files. Throws InvalidConfigError with every problem (including those already in `opts.problems`).
 */
export async function resolveClientConfig(
  cfg: Kubeconfig,
  opts: { context?: string | undefined; problems?: string[] } = {},
): Promise<ClientConfig> {
  const earlier = opts.problems ?? [];
  const problems: string[] = [];
  const src = cfg.files.join(path.delimiter) || '(no files)';
  const contextName = opts.context || cfg.currentContext;
  const fail = (): never => {
    throw new InvalidConfigError([...earlier, ...problems.map((p) => `${p} (kubeconfig ${src})`)]);
  };
  if (!contextName) {
    problems.push('no context: current-context is not set and no --context given');
    return fail();
  }
  const ctx = cfg.contexts.get(contextName);
  if (!ctx) {
    problems.push(`context "${contextName}" not found`);
    return fail();
  }
  const clusterName = ctx.cluster ?? '';
  const userName = ctx.user ?? '';
  const cluster = clusterName ? cfg.clusters.get(clusterName) : undefined;
  if (!clusterName) problems.push(`context "${contextName}" names no cluster`);
  else if (!cluster) problems.push(`cluster "${clusterName}" (context "${contextName}") not found`);
  // A context may name no user (anonymous); a named but missing user is an error.
  const user: RawUser = userName ? (cfg.users.get(userName) ?? {}) : {};
  if (userName && !cfg.users.has(userName)) problems.push(`user "${userName}" (context "${contextName}") not found`);

  const tls: TlsConfig = { insecureSkipTlsVerify: false };
  let server = '';
  if (cluster) {
    const c = `cluster "${clusterName}"`;
    server = typeof cluster.server === 'string' ? cluster.server.replace(/\/+$/, '') : '';
    if (!server) problems.push(`${c}: server is not set`);
    else {
      try {
        const u = new URL(server);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push(`${c}: server ${server}: scheme must be https or http`);
      } catch {
        problems.push(`${c}: server ${server} is not a URL`);
      }
    }
    if (cluster['proxy-url']) problems.push(`${c}: proxy-url is not supported by berth (remove it or use a direct route)`);
    const insecure = cluster['insecure-skip-tls-verify'] === true;
    const caFile = cluster['certificate-authority'];
    const caData = cluster['certificate-authority-data'];
    if (caFile && caData) problems.push(`${c}: certificate-authority-data and certificate-authority are both specified`);
    if (insecure && (caFile || caData)) problems.push(`${c}: certificate-authority and insecure-skip-tls-verify are both specified`);
    if (caData) tls.ca = decodeBase64(caData, `${c}: certificate-authority-data`, problems);
    else if (caFile) tls.ca = await readMaterial(caFile, `${c}: certificate-authority`, problems);
    tls.insecureSkipTlsVerify = insecure;
    if (typeof cluster['tls-server-name'] === 'string' && cluster['tls-server-name'] !== '') tls.serverName = cluster['tls-server-name'];
  }

  const u = `user "${userName}"`;
  if (user.exec) problems.push(`${u}: exec credential plugins are not supported by berth`);
  if (user['auth-provider']) problems.push(`${u}: auth-provider plugins are not supported by berth`);
  if (user.as || (user['as-groups'] && user['as-groups'].length > 0)) problems.push(`${u}: impersonation (as, as-groups) is not supported by berth`);
  const certFile = user['client-certificate'];
  const certData = user['client-certificate-data'];
  const keyFile = user['client-key'];
  const keyData = user['client-key-data'];
  if (certFile && certData) problems.push(`${u}: client-certificate-data and client-certificate are both specified`);
  if (keyFile && keyData) problems.push(`${u}: client-key-data and client-key are both specified`);
  if (certData) tls.cert = decodeBase64(certData, `${u}: client-certificate-data`, problems);
  else if (certFile) tls.cert = await readMaterial(certFile, `${u}: client-certificate`, problems);
  if (keyData) tls.key = decodeBase64(keyData, `${u}: client-key-data`, problems);
  else if (keyFile) tls.key = await readMaterial(keyFile, `${u}: client-key`, problems);
  if ((certFile || certData) && !(keyFile || keyData)) problems.push(`${u}: client-key-data or client-key must be specified to use a client certificate`);
  if ((keyFile || keyData) && !(certFile || certData)) problems.push(`${u}: client-certificate-data or client-certificate must be specified to use a client key`);

  let auth: AuthConfig = { type: 'none' };
  const hasToken = Boolean(user.token || user.tokenFile);
  const hasBasic = Boolean(user.username || user.password);
  if (hasToken && hasBasic) problems.push(`${u}: more than one authentication method found (token, basic); only one is allowed`);
  if (user.tokenFile) {
    // client-go: a tokenFile is read now (must succeed) and re-read periodically; a token beside it is the fallback.
    const tok = await readMaterial(user.tokenFile, `${u}: tokenFile`, problems);
    const first = tok?.toString('utf8').trim() ?? '';
    if (tok && first === '' && !user.token) problems.push(`${u}: tokenFile ${user.tokenFile} is empty`);
    auth = { type: 'token', token: first || (user.token ?? ''), tokenFile: user.tokenFile };
  } else if (user.token) {
    auth = { type: 'token', token: user.token };
  } else if (hasBasic) {
    if (!user.username) problems.push(`${u}: password without username`);
    auth = { type: 'basic', username: user.username ?? '', password: user.password ?? '' };
  }

  if (problems.length > 0 || earlier.length > 0) return fail();
  return Object.freeze({
    server,
    source: src,
    context: contextName,
    namespace: ctx.namespace || undefined,
    tls: Object.freeze(tls),
    auth: Object.freeze(auth),
  });
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-go's rest.InClusterConfig: the service's env vars + the mounted service account token and CA. */
export async function inClusterConfig(env: Env, root = '/'): Promise<ClientConfig> {
  const problems: string[] = [];
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new InvalidConfigError(['unable to load in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined']);
  }
  const dir = path.join(root, SERVICE_ACCOUNT_DIR);
  const tokenFile = path.join(dir, 'token');
  const tok = await readMaterial(tokenFile, 'in-cluster service account token', problems);
  const ca = await readMaterial(path.join(dir, 'ca.crt'), 'in-cluster service account CA', problems);
  let namespace: string | undefined;
  try {
    namespace = (await readFile(path.join(dir, 'namespace'), 'utf8')).trim() || undefined;
  } catch {
    namespace = undefined;
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  const hostPart = net.isIPv6(host) ? `[${host}]` : host;
  return Object.freeze({
    server: `https://${hostPart}:${port}`,
    source: 'in-cluster',
    context: undefined,
    namespace,
    tls: Object.freeze({ ca, insecureSkipTlsVerify: false }),
    auth: Object.freeze({ type: 'token' as const, token: tok?.toString('utf8').trim() ?? '', tokenFile }),
  });
}

// ---------------------------------------------------------------- auth header

export interface AuthHeaderOptions {
  /** How often a tokenFile is re-read (client-go's cachingTokenSource: one minute). */
  tokenRefreshMs?: number;
  clock?: Clock;
  log?: Logger;
}

/**
 * Returns a function giving the Authorization header value for the next request (undefined: none). A tokenFile is
 * re-read at most every `tokenRefreshMs`; if a re-read fails the last good token is kept (logged once per refresh).
 */
export function authHeaderSource(auth: AuthConfig, opts: AuthHeaderOptions = {}): () => Promise<string | undefined> {
  if (auth.type === 'none') return () => Promise.resolve(undefined);
  if (auth.type === 'basic') {
    const v = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    return () => Promise.resolve(v);
  }
  const tokenFile = auth.tokenFile;
  if (!tokenFile) {
    const v = `Bearer ${auth.token}`;
    return () => Promise.resolve(v);
  }
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  const refreshMs = opts.tokenRefreshMs ?? 60_000;
  let token = auth.token;
  let readAt = clock.now();
  let inflight: Promise<void> | undefined;
  const refresh = async (): Promise<void> => {
    try {
      const t = (await readFile(tokenFile, 'utf8')).trim();
      if (t !== '') token = t;
      else log.warn({ tokenFile }, 'token file is empty; keeping the previous token');
    } catch (err: unknown) {
      log.warn({ err, tokenFile }, 'token file re-read failed; keeping the previous token');
    } finally {
      readAt = clock.now();
    }
  };
  return async () => {
    if (clock.now() - readAt >= refreshMs) {
      inflight ??= refresh().finally(() => {
        inflight = undefined;
      });
      await inflight;
    }
    return `Bearer ${token}`;
  };
}
