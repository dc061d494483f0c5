// The consumer side of the streaming protocols (exec, attach, port-forward): the kubelet API authenticates and
// authorizes the request, resolves pod and container to runtime ids here, then hands the HTTP upgrade to a
// StreamServer (src/kubelet/streaming). Resolution follows kubelet_pods.go GetExec/GetAttach/GetPortForward and
// findContainer: only a running container of the pod counts; a pod uid in the path must match.
import type http from 'node:http';
import type stream from 'node:stream';
import type { Pod } from 'kubernetes-types/core/v1';
import { nameOf, type ObservedPod } from '../pod/observed.ts';

export type StreamRequest =
  | { kind: 'exec'; containerId: string; command: string[]; stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }
  | { kind: 'attach'; containerId: string; stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }
  | { kind: 'portforward'; sandboxId: string; podUid: string; ports: number[] };

/** What the kubelet API needs of the streaming protocols (implemented in src/kubelet/streaming). */
export interface StreamServer {
  /**
   * Takes over an authenticated, authorized upgrade request (SPDY/3.1 or WebSocket) for `target`: negotiates the
   * protocol, answers 101 (or an error status) on `socket`, runs the session and closes the socket at its end.
   * Must not throw; it owns `socket` from the call on.
   */
  handleUpgrade(req: http.IncomingMessage, socket: stream.Duplex, head: Buffer, target: StreamRequest): void;
  /** A streaming request that did not ask for an upgrade (optional; without it the API answers 400). */
  handleRequest?(req: http.IncomingMessage, res: http.ServerResponse, target: StreamRequest): void;
}

export type Resolution<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

export interface FoundPod {
  pod: Pod;
  seen: ObservedPod;
}

/** Pure: the running container for exec/attach/run (errors as upstream: 404 pod, 500 container). */
export function resolveContainer(found: FoundPod | undefined, uid: string | undefined, container: string): Resolution<string> {
  if (!found) return { ok: false, status: 404, message: 'pod does not exist' };
  const c =
    uid && found.pod.metadata?.uid !== uid ? undefined : found.seen.containers.find((x) => nameOf(x) === container && x.state === 'CONTAINER_RUNNING');
  if (!c) return { ok: false, status: 500, message: `container not found ("${container}")` };
  return { ok: true, value: c.id };
}

/** Pure: the ready sandbox for port-forward (errors as upstream's getPortForward / GetPortForward). */
export function resolveSandbox(found: FoundPod | undefined, uid: string | undefined): Resolution<{ sandboxId: string; podUid: string }> {
  if (!found) return { ok: false, status: 404, message: 'pod does not exist' };
  const podUid = found.pod.metadata?.uid ?? '';
  if (uid && podUid !== uid) return { ok: false, status: 404, message: 'pod not found' };
  const sb = found.seen.sandboxes.find((s) => s.state === 'SANDBOX_READY');
  if (!sb) return { ok: false, status: 500, message: `pod not found ("${found.pod.metadata?.name ?? ''}_${found.pod.metadata?.namespace ?? ''}")` };
  return { ok: true, value: { sandboxId: sb.id, podUid } };
}
