/**
 * SDK errors: every failure is a ForkdError carrying the stable FORKD_E_* code and, when the daemon
 * answered with it, the HTTP status (httpStatus is unset for failures that never got an answer);
 * subclasses let callers catch kinds of failure (E2B style) without string matching.
 */
import { ForkdError, ERROR_CODES, isForkdErrorCode, type ForkdErrorCode } from '@forkd/protocol';

export class ForkdSdkError extends ForkdError {
  constructor(code: ForkdErrorCode, message: string, details?: Record<string, unknown>, readonly httpStatus?: number) {
    super(code, message, details);
    this.name = new.target.name;
  }
}
export class InvalidArgumentError extends ForkdSdkError {}
export class AuthenticationError extends ForkdSdkError {}
/** The token's scope does not allow the call (read-only writing, a user on an admin route). */
export class ForbiddenError extends ForkdSdkError {}
export class NotFoundError extends ForkdSdkError {}
export class ConflictError extends ForkdSdkError {}
export class PayloadTooLargeError extends ForkdSdkError {}
export class RateLimitError extends ForkdSdkError {}
export class TimeoutError extends ForkdSdkError {}
export class NotImplementedError extends ForkdSdkError {}
export class UnavailableError extends ForkdSdkError {}
/** The sandbox's agent failed or answered badly. */
export class SandboxError extends ForkdSdkError {}
export class InternalError extends ForkdSdkError {}

const byStatus: Array<[number, typeof ForkdSdkError]> = [
  [400, InvalidArgumentError], [401, AuthenticationError], [403, ForbiddenError], [404, NotFoundError], [409, ConflictError], [413, PayloadTooLargeError],
  [429, RateLimitError], [501, NotImplementedError], [502, SandboxError], [503, UnavailableError], [504, TimeoutError],
];

/** The typed error for a FORKD_E code (its class follows the code's HTTP status). */
export function errorFor(code: ForkdErrorCode, message: string, details?: Record<string, unknown>, httpStatus?: number): ForkdSdkError {
  const status = ERROR_CODES[code];
  const Cls = byStatus.find(([s]) => s === status)?.[1] ?? InternalError;
  return new Cls(code, message, details, httpStatus);
}

/** Turns an error response ({"error": {code, message, details}}) into the typed error. */
export function errorFromResponse(status: number, body: unknown): ForkdSdkError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (e && isForkdErrorCode(e.code)) {
    return errorFor(e.code, typeof e.message === 'string' ? e.message : e.code, e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : undefined, status);
  }
  const fallback: ForkdErrorCode = status === 401 ? 'FORKD_E_UNAUTHORIZED' : status === 403 ? 'FORKD_E_FORBIDDEN' : status === 404 ? 'FORKD_E_NOT_FOUND' : status === 429 ? 'FORKD_E_RATE_LIMITED' : status >= 500 ? 'FORKD_E_INTERNAL' : 'FORKD_E_INVALID_ARGUMENT';
  return errorFor(fallback, `HTTP ${status}: ${typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body).slice(0, 300)}`, undefined, status);
}

/**
 * Codes that mean "this sandbox is not running": only the daemon chooses them (a guest's own
 * error codes reach callers as FORKD_E_AGENT_ERROR, or as file/argument codes), so a hostile
 * guest cannot make a caller abandon a sandbox that still runs.
 */
const SANDBOX_GONE_CODES: ReadonlySet<ForkdErrorCode> = new Set<ForkdErrorCode>(['FORKD_E_SANDBOX_NOT_FOUND', 'FORKD_E_SANDBOX_NOT_RUNNING', 'FORKD_E_AGENT_UNAVAILABLE']);

export function meansSandboxGone(e: unknown): boolean {
  return e instanceof ForkdError && SANDBOX_GONE_CODES.has(e.code);
}
