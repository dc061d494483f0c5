// A small error family with stable codes. Check by `code` (or the `is*` helpers), never by message.
// `cause` carries the underlying error (Docker, HTTP, child process) for logs.

export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'RuntimeUnavailable'
  | 'RestoreFailed'
  | 'InvalidConfig'
  | 'InvalidPod'
  | 'ImagePull'
  | 'Timeout'
  | 'Conflict'
  | 'Forbidden'
  | 'Gone'
  | 'ApiUnavailable'
  | 'Unauthorized'
  | 'Invalid';

export class BerthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `${code}Error`;
  }
}

export class NotFoundError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NotFound', message, options);
  }
}
export class AlreadyExistsError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AlreadyExists', message, options);
  }
}
export class RuntimeUnavailableError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RuntimeUnavailable', message, options);
  }
}
export class RestoreFailedError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RestoreFailed', message, options);
  }
}
export class InvalidConfigError extends BerthError {
  readonly problems: string[];
  constructor(problems: string[], options?: { cause?: unknown }) {
    super('InvalidConfig', `invalid configuration: ${problems.join('; ')}`, options);
    this.problems = problems;
  }
}
export class TimeoutError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Timeout', message, options);
  }
}
/** An image could not be pulled; `message` is the engine's own message (shown in ErrImagePull). */
export class ImagePullError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ImagePull', message, options);
  }
}

export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof BerthError && err.code === code;
}
export const isNotFound = (err: unknown): boolean => hasCode(err, 'NotFound');

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
