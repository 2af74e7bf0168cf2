/**
 * The Sandbox layer's promise: only typed SDK errors escape. The Controller already maps HTTP
 * failures, but a response cut mid-body, a JSON parse failure or a ForkdError from another forkd
 * package would surface as-is; this turns every one of them into a ForkdSdkError with a code.
 */
import { ForkdError } from '@forkd/protocol';
import { ForkdSdkError, errorFor } from './errors.js';

/** Socket-level failures: the daemon went away or cut the connection. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

export function toSdkError(e: unknown): ForkdSdkError {
  if (e instanceof ForkdSdkError) return e;
  if (e instanceof ForkdError) return errorFor(e.code, e.message, e.details);
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as NodeJS.ErrnoException).code;
  if (err.name === 'AbortError') return errorFor('FORKD_E_UNAVAILABLE', `request aborted: ${err.message}`);
  if (code !== undefined && NETWORK_CODES.has(code)) return errorFor('FORKD_E_UNAVAILABLE', `connection to the forkd daemon failed: ${err.message}`, { errno: code });
  if (err.message === 'aborted') return errorFor('FORKD_E_UNAVAILABLE', 'the daemon closed the response early');
  if (err instanceof SyntaxError) return errorFor('FORKD_E_INTERNAL', `malformed response from the forkd daemon: ${err.message}`);
  return errorFor('FORKD_E_INTERNAL', err.message);
}

/** Runs fn and rethrows whatever it throws as a typed SDK error. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toSdkError(e);
  }
}
