// GET /logs/…: the node's log directory (/var/log) as upstream serves it with Go's http.FileServer: a directory is a
// `<pre>` list of links (sorted, directories with a trailing slash; a directory URL without the slash is redirected),
// a file is streamed (symlinks followed, never read whole). Paths are cleaned first, so nothing outside the root is
// reachable.
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]!);

/** Pure: Go's dirList body for the given entries. */
export function buildDirListing(entries: { name: string; dir: boolean }[]): string {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines = sorted.map((e) => {
    const name = e.dir ? `${e.name}/` : e.name;
    const href = name.split('/').map(encodeURIComponent).join('/');
    return `<a href="${escapeHtml(href)}">${escapeHtml(name)}</a>\n`;
  });
  return `<pre>\n${lines.join('')}</pre>\n`;
}

function text(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

/** Serves `sub` (the path after /logs, starting with '/') from `root`. */
export async function serveNodeLogs(root: string, sub: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let rel: string;
  try {
    rel = path.posix.normalize(`/${decodeURIComponent(sub)}`);
  } catch {
    return text(res, 400, '400 Bad Request\n');
  }
  const file = path.join(root, rel);
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error) return text(res, st.code === 'EACCES' ? 403 : 404, st.code === 'EACCES' ? '403 Forbidden\n' : '404 page not found\n');
  if (st.isDirectory()) {
    if (!sub.endsWith('/')) {
      // Go's FileServer: a relative redirect to the directory with a slash (`/logs` → `logs/`).
      res.writeHead(301, { location: `${rel === '/' ? 'logs' : path.posix.basename(rel)}/` });
      res.end();
      return;
    }
    const entries = await readdir(file, { withFileTypes: true }).catch(() => undefined);
    if (!entries) return text(res, 500, 'Error reading directory\n');
    const list = await Promise.all(
      entries.map(async (e) => ({ name: e.name, dir: e.isDirectory() || (e.isSymbolicLink() && !!(await stat(path.join(file, e.name)).catch(() => undefined))?.isDirectory()) })),
    );
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : buildDirListing(list));
    return;
  }
  // Content type as Go sniffs it for files without a known extension: text unless it holds NUL bytes.
  const head = Buffer.alloc(512);
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return text(res, 403, '403 Forbidden\n');
  const { bytesRead } = await fh.read(head, 0, 512, 0).finally(() => fh.close());
  const binary = head.subarray(0, bytesRead).includes(0);
  res.writeHead(200, {
    'content-type': binary ? 'application/octet-stream' : 'text/plain; charset=utf-8',
    'content-length': String(st.size),
    'last-modified': st.mtime.toUTCString(),
  });
  if (req.method === 'HEAD') return void res.end();
  const stream = createReadStream(file, { end: Math.max(0, st.size - 1) });
  res.on('close', () => stream.destroy());
  stream.on('error', () => res.destroy());
  if (st.size === 0) {
    stream.destroy();
    res.end();
    return;
  }
  stream.pipe(res);
}
