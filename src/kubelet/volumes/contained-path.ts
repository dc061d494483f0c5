// The one check that every path berth builds from pod data (volume names, UIDs, container names, item
// paths, subPaths) stays under the directory it belongs to (berth's root dir, a pod dir, a volume dir).
// Lexical only: it refuses absolute parts, `..` elements, NUL bytes and empty names; symlinks are the
// job of the safe walkers in subpath.ts and atomic-writer.ts, which never follow one out of a volume.
import path from 'node:path';

export class PathEscapeError extends Error {
  readonly code = 'PathEscape';
  constructor(message: string) {
    super(message);
    this.name = 'PathEscapeError';
  }
}

/** True when `p` (absolute, normalised) is `base` itself or lies below it. */
export function isWithin(base: string, p: string): boolean {
  const b = path.resolve(base);
  const q = path.resolve(p);
  return q === b || q.startsWith(b === '/' ? '/' : b + '/');
}

/**
 * Joins `parts` under `base` and returns the result; throws PathEscapeError when a part is empty,
 * absolute, holds a NUL byte or a `..` element, or the result is not strictly below `base`.
 * Pure (no file system access): callers that then open the path must not follow symlinks.
 */
export function containedPath(base: string, ...parts: string[]): string {
  if (!path.isAbsolute(base)) throw new PathEscapeError(`base ${JSON.stringify(base)} is not absolute`);
  for (const part of parts) {
    if (typeof part !== 'string' || part === '') throw new PathEscapeError(`empty path element under ${base}`);
    if (part.includes('\0')) throw new PathEscapeError(`path element under ${base} contains a NUL byte`);
    if (path.isAbsolute(part)) throw new PathEscapeError(`path ${JSON.stringify(part)} under ${base} must be relative`);
    if (part.split('/').includes('..')) throw new PathEscapeError(`path ${JSON.stringify(part)} under ${base} must not contain '..'`);
  }
  const out = path.join(base, ...parts);
  if (!isWithin(base, out) || path.resolve(out) === path.resolve(base))
    throw new PathEscapeError(`path ${JSON.stringify(out)} is not below ${base}`);
  return out;
}

/** A single file-name element (a UID, a container or volume name): no `/`, not `.` or `..`. */
export function assertName(name: string, what: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    throw new PathEscapeError(`${what} ${JSON.stringify(name)} is not a valid file name`);
  return name;
}
