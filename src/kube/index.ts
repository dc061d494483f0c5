// The API client room. It owns everything between berth and the Kubernetes API server: finding and validating the
// client configuration (kubeconfig files, KUBECONFIG merging, in-cluster service account), the HTTP client (one undici
// pool, TLS and auth, timeouts, errors mapped onto berth's error family with the server's Status kept), streaming
// watches, discovery of served group versions, and informers (paginated list → watch from resourceVersion with
// bookmarks, relist on 410, jittered back-off, stall detection, a local cache and handlers, sync age for /healthz).
// It knows nothing of pods' meaning, Docker or iptables; kubelet and proxy consume it through this file.
export {
  type ClientConfig,
  type TlsConfig,
  type AuthConfig,
  type Env,
  type Kubeconfig,
  type LoadClientConfigOptions,
  loadClientConfig,
  resolveClientConfig,
  parseKubeconfig,
  mergeKubeconfigs,
  inClusterConfig,
  authHeaderSource,
  SERVICE_ACCOUNT_DIR,
} from './kubeconfig.ts';
export {
  type KubeApi,
  type KubeObject,
  type ObjectList,
  type PatchType,
  type GetOptions,
  type ListOptions,
  type WriteOptions,
  type PatchOptions,
  type DeleteOptions,
  type WatchOptions,
  type WatchStream,
  type RequestOptions,
  type KubeClientOptions,
  KubeClient,
  buildUserAgent,
  PATCH_CONTENT_TYPES,
} from './client.ts';
export { type WatchEvent, WatchDecodeError, WatchEventDecoder, decodeWatchStream } from './watch.ts';
export { type EventHandlers, type InformerOptions, type InformerStats, Informer } from './informer.ts';
export { type ServerVersion, type DiscoveryOptions, Discovery } from './discovery.ts';
export { type ResourceRef, type PathOptions, resources, resourcePath, groupVersion, withVersion, objectKey } from './resources.ts';
export {
  type ApiErrorDetails,
  ApiError,
  ApiNotFoundError,
  apiErrorDetails,
  errorFromResponse,
  errorFromStatus,
  codeForStatus,
  isStatus,
} from './errors.ts';
