// The sources room owns where pods and the data they reference come from: static pods from the manifest
// folder, pods bound to this node from the API server (with mirror pods for the static ones), ConfigMap and
// Secret data, Service environment variables and service account tokens for projected volumes.
export { ManifestSource, readManifestDir, parseManifest, FILE_SOURCE, type ManifestError, type SourceSnapshot } from './manifest-source.ts';
export { ClusterPodSource, API_SOURCE } from './api-source.ts';
export { isMirrorPod } from './mirror-pods.ts';
export { ApiConfigData } from './config-data.ts';
export { serviceEnv, servicesForPod } from './service-env.ts';
export { TokenManager, ServiceAccountTokenError, type TokenFailure } from './token-manager.ts';
