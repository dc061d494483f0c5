// GET /containerLogs/{namespace}/{pod}/{container}: upstream's getContainerLogs over the shared container-log code.
// Refusals are written before any header (400/404/422 with upstream's bodies); a stream is chunked text that is
// flushed as it is read, honours the client's backpressure and stops reading when the client goes away.
import type http from 'node:http';
import type { Logger } from '../../lib/index.ts';
import { computePodLogOptions, openContainerLog, type LogRuntime, type PodLookup } from '../logs/index.ts';

export function writeText(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

/** A writer that waits for 'drain' (or the client leaving) when the socket buffer is full. */
export function responseWriter(res: http.ServerResponse): (chunk: Buffer) => Promise<void> {
  return (chunk) =>
    new Promise<void>((resolve) => {
      if (res.destroyed || res.writableEnded) return resolve();
      if (res.write(chunk)) return resolve();
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
}

export async function serveContainerLogs(
  o: { lookup: PodLookup; runtime: LogRuntime; isRunning?: (containerId: string) => Promise<boolean>; log: Logger },
  params: { namespace: string; pod: string; container: string },
  url: URL,
  res: http.ServerResponse,
): Promise<void> {
  const opts = computePodLogOptions(url.searchParams);
  if (!opts.ok) return writeText(res, opts.status, opts.message);
  const opened = await openContainerLog({ ...params, options: opts.options }, o.lookup, o.runtime, o.isRunning);
  if (!opened.ok) return writeText(res, opened.status, opened.message);
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  let started = false;
  const write = responseWriter(res);
  const startOnce = (): void => {
    if (started) return;
    started = true;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
    res.flushHeaders();
  };
  // Headers go out at once so that `kubectl logs -f` sees the stream open before the first line.
  if (opts.options.follow) startOnce();
  try {
    await opened.stream(async (chunk) => {
      startOnce();
      await write(chunk);
    }, ac.signal);
    startOnce();
    res.end();
  } catch (err) {
    o.log.debug({ err, containerId: opened.containerId }, 'container log stream failed');
    if (!started) writeText(res, 400, `failed to read log of container "${opened.containerId}": ${(err as Error).message}`);
    else res.destroy();
  }
}
