// Maps API server answers and transport failures onto berth's error family. The server's `Status` object (reason,
// message naming the missing permission, details) stays on the error for logs and for callers that need `reason`.
// Follows k8s.io/apimachinery/pkg/api/errors (FromObject, IsNotFound, IsConflict, IsAlreadyExists, IsGone...).
import type { Status } from 'kubernetes-types/meta/v1';
import { BerthError, NotFoundError, type ErrorCode } from '../lib/index.ts';

/** Fields every API error carries. `statusCode` is 0 for transport failures (nothing was answered). */
export interface ApiErrorDetails {
  readonly statusCode: number;
  /** The server's `Status` object when it sent one. */
  readonly status: Status | undefined;
  /** `Status.reason` (e.g. `AlreadyExists`, `Conflict`, `Expired`, `Forbidden`) when known. */
  readonly reason: string | undefined;
  /** From `Status.details.retryAfterSeconds` or a `Retry-After` header (429, some 5xx). */
  readonly retryAfterSeconds: number | undefined;
}

export interface ApiErrorInit {
  statusCode: number;
  status?: Status | undefined;
  retryAfterSeconds?: number | undefined;
  cause?: unknown;
}

/** An error answered by (or on the way to) the API server. Check `code`, not the class. */
export class ApiError extends BerthError implements ApiErrorDetails {
  readonly statusCode: number;
  readonly status: Status | undefined;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ErrorCode, message: string, init: ApiErrorInit) {
    super(code, message, { cause: init.cause });
    this.statusCode = init.statusCode;
    this.status = init.status;
    this.reason = init.status?.reason;
    this.retryAfterSeconds = init.retryAfterSeconds ?? init.status?.details?.retryAfterSeconds;
  }
}

/** 404: an `instanceof NotFoundError` (and code `NotFound`) that also carries the server's Status. */
export class ApiNotFoundError extends NotFoundError implements ApiErrorDetails {
  readonly statusCode: number;
  readonly status: Status | undefined;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, init: ApiErrorInit) {
    super(message, { cause: init.cause });
    this.statusCode = init.statusCode;
    this.status = init.status;
    this.reason = init.status?.reason;
    this.retryAfterSeconds = undefined;
  }
}

/** Status fields of an API error, or undefined for any other error. */
export function apiErrorDetails(err: unknown): ApiErrorDetails | undefined {
  if (err instanceof ApiError || err instanceof ApiNotFoundError) return err;
  return undefined;
}

export function isStatus(v: unknown): v is Status {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}

/**
 * HTTP status → error code. 409 splits on the reason as upstream does: `AlreadyExists` (create of an existing name)
 * is not a write conflict (`Conflict`, a stale resourceVersion) and callers handle them differently.
 */
export function codeForStatus(statusCode: number, reason?: string): ErrorCode {
  if (statusCode === 404) return 'NotFound';
  if (statusCode === 409) return reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict';
  if (statusCode === 410) return 'Gone';
  if (statusCode === 403) return 'Forbidden';
  if (statusCode === 401) return 'Unauthorized';
  // 429 (priority and fairness / max-in-flight) and 5xx are "try again later".
  if (statusCode === 429 || statusCode >= 500) return 'ApiUnavailable';
  return 'Invalid'; // 400, 405, 406, 413, 415, 422 ...: the request itself is wrong
}

/** Builds the error for a non-2xx answer. `bodyText` may be a Status (JSON) or anything else. */
export function errorFromResponse(
  statusCode: number,
  bodyText: string,
  ctx: { method: string; path: string; retryAfter?: string | undefined },
): ApiError | ApiNotFoundError {
  let status: Status | undefined;
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (isStatus(parsed)) status = parsed;
  } catch {
    // not JSON (e.g. a proxy's HTML page): keep the text in the message
  }
  const retryAfter = ctx.retryAfter !== undefined ? Number.parseInt(ctx.retryAfter, 10) : NaN;
  const init: ApiErrorInit = { statusCode, status, retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined };
  const text = bodyText.trim().slice(0, 300);
  const message =
    status?.message && status.message.length > 0
      ? status.message
      : `${ctx.method} ${ctx.path}: HTTP ${statusCode}${text ? `: ${text}` : ''}`;
  const code = codeForStatus(statusCode, status?.reason);
  if (code === 'NotFound') return new ApiNotFoundError(message, init);
  return new ApiError(code, message, init);
}

/** The error for an ERROR event inside a watch stream (its object is a Status; 410 means "relist"). */
export function errorFromStatus(status: Status): ApiError | ApiNotFoundError {
  const statusCode = status.code ?? 500;
  const init: ApiErrorInit = { statusCode, status };
  const message = status.message ?? `watch error: ${status.reason ?? statusCode}`;
  const code = codeForStatus(statusCode, status.reason);
  if (code === 'NotFound') return new ApiNotFoundError(message, init);
  return new ApiError(code, message, init);
}

/** Connection refused/reset, TLS failure, timeout: the server did not answer. */
export function unavailableError(message: string, cause: unknown): ApiError {
  return new ApiError('ApiUnavailable', message, { statusCode: 0, cause });
}
