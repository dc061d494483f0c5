// The cadvisor room will own node and container statistics read from the cgroups themselves (housekeeping on a
// jittered tick, a ring buffer per container, the Summary API and /metrics/cadvisor), exported as a
// StatsProvider to the kubelet. Nothing lives here yet: stats are the subject of their own issue.
export {};
