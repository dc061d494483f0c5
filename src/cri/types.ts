// CRI-shaped types (k8s.io/cri-api runtime/v1), trimmed to what berth uses and with times in
// milliseconds since the epoch. Field names follow the CRI so readers can map them 1:1.

export type Labels = Record<string, string>;

export interface PodSandboxMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
}

export interface PortMapping {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp?: string;
}

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE';

export interface DNSConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  /** Directory for container logs of this pod (/var/log/pods/<ns>_<name>_<uid>). */
  logDirectory?: string;
  dnsConfig?: DNSConfig;
  portMappings: PortMapping[];
  labels: Labels;
  annotations: Labels;
  linux?: {
    cgroupParent?: string;
    sysctls?: Labels;
    securityContext?: {
      namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
      privileged?: boolean;
    };
  };
}

export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: number;
  labels: Labels;
  annotations: Labels;
}

export interface PodSandboxStatus extends PodSandbox {
  network: { ip?: string; additionalIps: string[] };
  linux?: { namespaces?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } };
}

export interface PodSandboxFilter {
  id?: string;
  state?: PodSandboxState;
  labelSelector?: Labels;
}

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  /** 'private' | 'rslave' | 'rshared' (CRI's MountPropagation). */
  propagation?: 'private' | 'rslave' | 'rshared';
}

export interface LinuxContainerResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
  oomScoreAdj?: number;
}

export interface Capability {
  addCapabilities?: string[];
  dropCapabilities?: string[];
}

export interface LinuxContainerSecurityContext {
  capabilities?: Capability;
  privileged?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  runAsUsername?: string;
  readonlyRootfs?: boolean;
  supplementalGroups?: number[];
  noNewPrivs?: boolean;
  namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
  /** CRI's seccomp SecurityProfile; unset = Unconfined. Localhost: localhostRef is the profile's absolute path. */
  seccomp?: { profileType: 'RuntimeDefault' | 'Unconfined' } | { profileType: 'Localhost'; localhostRef: string };
  /** AppArmor profile: 'runtime/default' or 'localhost/<name>'; unset = unconfined. */
  apparmorProfile?: string;
  /** Paths masked / made read-only in /proc; unset = the runtime's defaults, [] = none (procMount Unmasked). */
  maskedPaths?: string[];
  readonlyPaths?: string[];
}

export interface ContainerConfig {
  metadata: ContainerMetadata;
  /** Image reference as the user wrote it (or the image ID). */
  image: string;
  /** Overrides the image ENTRYPOINT when non-empty (Kubernetes `command`). */
  command: string[];
  /** Overrides the image CMD when non-empty (Kubernetes `args`). */
  args: string[];
  workingDir?: string;
  envs: KeyValue[];
  mounts: Mount[];
  labels: Labels;
  annotations: Labels;
  /** Relative to the sandbox's logDirectory. */
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  /** Signal sent first on StopContainer (image STOPSIGNAL if unset). */
  stopSignal?: string;
  linux?: {
    resources?: LinuxContainerResources;
    securityContext?: LinuxContainerSecurityContext;
  };
}

export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: ContainerMetadata;
  /** Image as requested (the reference in ContainerConfig.image). */
  image: string;
  /** Resolved image ID (sha256:...). */
  imageRef: string;
  state: ContainerState;
  createdAt: number;
  labels: Labels;
  annotations: Labels;
}

export interface ContainerStatus extends Container {
  /** 0 when not started. */
  startedAt: number;
  /** 0 when not finished. */
  finishedAt: number;
  exitCode: number;
  /** Runtime reason for the last exit: 'OOMKilled', 'Error', 'Completed', 'ContainerCannotRun'. */
  reason: string;
  message: string;
  mounts: Mount[];
  logPath: string;
  /** PID of the main process while running, else 0 (berth extension, used for stats). */
  pid: number;
}

export interface ContainerFilter {
  id?: string;
  state?: ContainerState;
  podSandboxId?: string;
  labelSelector?: Labels;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  sizeBytes: number;
  /** Image config bits the kubelet needs (STOPSIGNAL, user). */
  stopSignal?: string;
  user?: string;
  /** The image's user as CRI's ImageStatus: numeric uid, else the user name (neither: root). */
  uid?: number;
  username?: string;
}

export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface VersionInfo {
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface RuntimeEvent {
  containerId: string;
  /** 'created' | 'started' | 'stopped' | 'deleted' (CRI ContainerEventType). */
  type: 'created' | 'started' | 'stopped' | 'deleted';
  podUid?: string;
  time: number;
}
