// The handlers probes and lifecycle hooks share (pkg/kubelet/lifecycle/handlers.go and pkg/probe/{exec,http,tcp,grpc}):
// one run of an exec, httpGet, tcpSocket or grpc action against a container, with upstream's failure texts. The
// prober counts the outcomes against thresholds; the pod sync runs postStart and preStop hooks through it too.
import net from 'node:net';
import type { Container, Probe } from 'kubernetes-types/core/v1';
import type { RuntimeService } from '../../cri/index.ts';
import { errorMessage, httpGet } from '../../lib/index.ts';
import { runGrpcProbe } from './grpc-probe.ts';

export interface ProbeOutcome {
  result: 'success' | 'failure';
  output: string;
}

/**
 * Runs one handler (a probe, or a lifecycle hook given as a probe with its timeout): pure of state, its effects are
 * the action itself. Never throws; a failure is an outcome with upstream's message.
 */
export async function runHandler(
  probe: Probe,
  c: Container,
  podIP: string,
  containerId: string,
  exec: Pick<RuntimeService, 'execSync'>,
): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const port = (p: number | string | undefined): number => {
    if (typeof p === 'number') return p;
    const named = c.ports?.find((x) => x.name === p);
    if (named) return named.containerPort;
    const n = Number(p);
    if (Number.isInteger(n)) return n;
    throw new Error(`port ${JSON.stringify(p)} not found`);
  };
  if (probe.exec) {
    const cmd = probe.exec.command ?? [];
    try {
      const r = await exec.execSync(containerId, cmd, timeoutMs);
      const output = (r.stdout + r.stderr).trimEnd();
      return r.exitCode === 0 ? { result: 'success', output } : { result: 'failure', output: output || `command ${JSON.stringify(cmd.join(' '))} exited with ${r.exitCode}` };
    } catch (err) {
      const timedOut = (err as { code?: string }).code === 'Timeout';
      return { result: 'failure', output: timedOut ? `command ${JSON.stringify(cmd.join(' '))} timed out` : errorMessage(err) };
    }
  }
  if (probe.httpGet) {
    const h = probe.httpGet;
    const host = h.host || podIP;
    let p: number;
    try {
      p = port(h.port);
    } catch (err) {
      return { result: 'failure', output: errorMessage(err) };
    }
    const scheme = (h.scheme ?? 'HTTP').toLowerCase() === 'https' ? 'https' : 'http';
    const path = h.path?.startsWith('/') ? h.path : `/${h.path ?? ''}`;
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${p}${path}`;
    const headers: Record<string, string> = { 'User-Agent': 'kube-probe/1.20', Accept: '*/*' };
    for (const hh of h.httpHeaders ?? []) headers[hh.name] = hh.value;
    // Go's url.Parse refuses a host that is not one before any lookup; so does WHATWG's URL.
    if (!URL.canParse(url)) return { result: 'failure', output: `Get "${url}": invalid URL` };
    try {
      // node:http, not fetch: fetch refuses the WHATWG "bad ports" (6000, 6665-6669, 10080…) pods serve on.
      const res = await httpGet({ scheme, host, port: p, path, headers, timeoutMs });
      if (res.status >= 200 && res.status < 400) return { result: 'success', output: res.body };
      return { result: 'failure', output: `HTTP probe failed with statuscode: ${res.status}` };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'Timeout') return { result: 'failure', output: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
      const detail = code === 'ECONNREFUSED' ? `dial tcp ${host}:${p}: connect: connection refused` : errorMessage(err);
      return { result: 'failure', output: `Get "${url}": ${detail}` };
    }
  }
  if (probe.tcpSocket) {
    const host = probe.tcpSocket.host || podIP;
    let p: number;
    try {
      p = port(probe.tcpSocket.port);
    } catch (err) {
      return { result: 'failure', output: errorMessage(err) };
    }
    return new Promise<ProbeOutcome>((resolve) => {
      const s = net.connect({ host, port: p });
      const t = setTimeout(() => {
        s.destroy();
        resolve({ result: 'failure', output: `dial tcp ${host}:${p}: i/o timeout` });
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.destroy();
        resolve({ result: 'success', output: '' });
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve({ result: 'failure', output: `dial tcp ${host}:${p}: connect: ${err.code === 'ECONNREFUSED' ? 'connection refused' : err.message}` });
      });
    });
  }
  if (probe.grpc) {
    // The target is always the pod's IP; the port is a number (validation rejects names).
    return runGrpcProbe({ host: podIP, port: probe.grpc.port, service: probe.grpc.service, timeoutMs });
  }
  return { result: 'failure', output: 'probe has no handler' };
}
