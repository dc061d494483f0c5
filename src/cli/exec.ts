// `berth exec [-i] [-t] [-n NS] POD [-c CONTAINER] -- CMD…`: kubectl exec for this node without an API server, through
// the same StreamingRuntime the kubelet API's /exec uses (DockerStreamingRuntime). The pod is found by Docker labels
// (works while berth is down); static pods also answer to their manifest name (without the `-<node>` suffix).
import { DockerRuntime, DockerStreamingRuntime } from '../cri/docker/index.ts';
import { L, type TerminalSize } from '../cri/index.ts';
import { createLogger, errorMessage, hasCode } from '../lib/index.ts';
import { parseFlags, type BerthConfig, type FlagSpec } from './config.ts';

export interface ExecArgs {
  stdin: boolean;
  tty: boolean;
  container?: string;
  namespace: string;
  command: string[];
}

/** Flags of `berth exec`, as kubectl exec spells them (-it is -i -t). */
export const EXEC_FLAGS: FlagSpec<'stdin' | 'tty' | 'container' | 'namespace'>[] = [
  { key: 'stdin', flag: 'stdin', short: 'i', kind: 'bool' },
  { key: 'tty', flag: 'tty', short: 't', kind: 'bool' },
  { key: 'container', flag: 'container', short: 'c', kind: 'string' },
  { key: 'namespace', flag: 'namespace', short: 'n', kind: 'string' },
];

/** Pure: takes `berth exec`'s own flags and the command after `--` out; the rest are berth flags and the POD. */
export function splitExecArgs(args: string[]): { exec: ExecArgs; others: string[] } {
  const dash = args.indexOf('--');
  const exec: ExecArgs = { stdin: false, tty: false, namespace: 'default', command: dash >= 0 ? args.slice(dash + 1) : [] };
  const { found, rest } = parseFlags(dash >= 0 ? args.slice(0, dash) : args, EXEC_FLAGS);
  for (const { key, value } of found) {
    if (key === 'stdin' || key === 'tty') exec[key] = true;
    else exec[key] = value ?? '';
  }
  return { exec, others: rest };
}

/** Pure: the running container to exec into, or kubectl's message for why there is none. */
export function computeExecTarget(
  containers: { id: string; state: string; labels: Record<string, string> }[],
  pod: string,
  nodeName: string,
  container: string | undefined,
): { id: string; pod: string; container: string } | { error: string } {
  const podName = [pod, `${pod}-${nodeName}`].find((n) => containers.some((c) => c.labels[L.podName] === n && c.labels[L.containerName]));
  if (!podName) return { error: `pods "${pod}" not found` };
  const mine = containers.filter((c) => c.labels[L.podName] === podName && c.labels[L.containerName]);
  const names = [...new Set(mine.map((c) => c.labels[L.containerName] as string))];
  const name = container ?? (names.length === 1 ? names[0] : undefined);
  if (!name) return { error: `a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]` };
  const running = mine.find((c) => c.labels[L.containerName] === name && c.state === 'CONTAINER_RUNNING');
  if (!running) return { error: `container not found ("${name}")` };
  return { id: running.id, pod: podName, container: name };
}

async function* terminalSizes(out: NodeJS.WriteStream, signal: AbortSignal): AsyncIterable<TerminalSize> {
  let wake: (() => void) | undefined;
  const onResize = (): void => wake?.();
  out.on('resize', onResize);
  signal.addEventListener('abort', onResize);
  try {
    while (!signal.aborted) {
      yield { width: out.columns ?? 80, height: out.rows ?? 24 };
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    out.off('resize', onResize);
  }
}

export async function cmdExec(cfg: BerthConfig, e: ExecArgs): Promise<number> {
  const [pod] = cfg.args;
  if (!pod || e.command.length === 0) {
    process.stderr.write('usage: berth exec [-i] [-t] [-n NAMESPACE] POD [-c CONTAINER] -- COMMAND [ARGS...]\n');
    return 2;
  }
  const socket = cfg.dockerEndpoint.replace(/^unix:\/\//, '');
  const listed = await new DockerRuntime({ docker: socket, log: createLogger({ level: 'silent' }) }).listContainers({
    labelSelector: { [L.node]: cfg.nodeName, [L.podNamespace]: e.namespace },
  });
  const target = computeExecTarget(listed, pod, cfg.nodeName, e.container);
  if ('error' in target) {
    process.stderr.write(`Error from server (NotFound): ${target.error}\n`);
    return 1;
  }
  const tty = e.tty && Boolean(process.stdin.isTTY) && e.stdin;
  if (e.tty && !tty) process.stderr.write('Unable to use a TTY - input is not a terminal or the right kind of file\n');
  const runtime = new DockerStreamingRuntime({ docker: socket });
  const ac = new AbortController();
  // Without a TTY, ^C reaches berth rather than the process: end the session (the runtime kills the process).
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (tty) process.stdin.setRawMode(true);
  try {
    const code = await runtime.exec(target.id, e.command, {
      ...(e.stdin ? { stdin: process.stdin } : {}),
      stdout: process.stdout,
      ...(tty ? { resize: terminalSizes(process.stdout, ac.signal) } : { stderr: process.stderr }),
      tty,
      signal: ac.signal,
    });
    if (code !== 0) process.stderr.write(`command terminated with exit code ${code}\n`);
    return code;
  } catch (err: unknown) {
    if (ac.signal.aborted) return 130;
    process.stderr.write(`error: ${hasCode(err, 'Conflict') || hasCode(err, 'NotFound') ? errorMessage(err) : `exec failed: ${errorMessage(err)}`}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    ac.abort();
    if (tty) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}
