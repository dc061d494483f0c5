// One HTTP(S) GET with a deadline, for probes and hooks (pkg/probe/http): node:http rather than fetch, because
// fetch refuses the WHATWG "bad ports" (6000, 6665-6669, 10080, 22, 25, …) that pods legitimately serve on, and
// upstream's Go client has no such list. TLS is not verified (upstream's probes set InsecureSkipVerify).
import http from 'node:http';
import https from 'node:https';

export interface HttpGetOptions {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  /** Sent as is; a path with spaces or control characters is an error, not a request. */
  path: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** The body is read up to this many bytes (default 10 KiB); the rest is discarded. */
  maxBodyBytes?: number;
}

export interface HttpGetResult {
  status: number;
  body: string;
}

/** Why an HTTP GET did not produce a response: `code` is 'Timeout', a socket errno (ECONNREFUSED…) or 'Invalid'. */
export class HttpGetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HttpGetError';
    this.code = code;
  }
}

/**
 * GETs `scheme://host:port/path` once (no redirects followed, no keep-alive). Resolves with any status; rejects only
 * with HttpGetError: 'Timeout' when no full response came within timeoutMs, the socket's errno (ECONNREFUSED,
 * ENOTFOUND, …), or 'Invalid' for a request node refuses to send (a header value with CR/LF, an unescaped path).
 */
export function httpGet(o: HttpGetOptions): Promise<HttpGetResult> {
  const max = o.maxBodyBytes ?? 10 * 1024;
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest;
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      finish(() => reject(new HttpGetError('Timeout', `timed out after ${o.timeoutMs} ms`)));
      req?.destroy();
    }, o.timeoutMs);
    try {
      const mod = o.scheme === 'https' ? https : http;
      req = mod.request({
        method: 'GET',
        host: o.host,
        port: o.port,
        path: o.path,
        headers: o.headers,
        agent: false,
        ...(o.scheme === 'https' ? { rejectUnauthorized: false } : {}),
      });
    } catch (err: unknown) {
      finish(() => reject(new HttpGetError('Invalid', (err as Error).message, { cause: err })));
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < max) chunks.push(c.subarray(0, max - size));
        size += c.length;
      });
      res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
      res.on('error', (err: NodeJS.ErrnoException) => finish(() => reject(new HttpGetError(err.code ?? 'Error', err.message, { cause: err }))));
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(() => reject(new HttpGetError(err.code ?? 'Error', err.message, { cause: err }))));
    req.end();
  });
}
