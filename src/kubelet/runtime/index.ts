// The runtime room owns what the kubelet does to the container runtime for a pod: the PLEG relist that keeps
// the observed state, the pod sync executor that carries out the planner's actions (sandbox, containers,
// lifecycle hooks, kills), the CRI sandbox and container configs (env, DNS, /etc/hosts, the pod cgroup) and
// image pulls with their back-off.
export type { NodeFacts } from './container-config.ts';
export type { ConfigDataSource } from './env.ts';
