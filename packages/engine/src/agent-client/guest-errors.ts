/**
 * The boundary where a guest's error becomes a daemon error. The guest chooses every byte of a
 * failed reply, so its code never passes as a daemon code (401, 404 "sandbox not found", 429 and
 * 5xx mean something to callers and SDKs): a failure is FORKD_E_AGENT_ERROR with the guest's code
 * in details.guest_code. A short allow-list of codes that only describe the call's own input or
 * the guest's files map through. Messages are truncated; the guest's details are dropped.
 */
import { ForkdError, LIMITS, type AgentMethod, type ForkdErrorCode } from '@forkd/protocol';

/** Guest codes that keep their meaning: a missing file or process handle, a bad argument, too large. */
export const GUEST_CODES_PASSED: ReadonlySet<ForkdErrorCode> = new Set<ForkdErrorCode>([
  'FORKD_E_FILE_NOT_FOUND',
  'FORKD_E_NOT_FOUND',
  'FORKD_E_INVALID_ARGUMENT',
  'FORKD_E_PAYLOAD_TOO_LARGE',
]);

/** Longest guest code echoed in details.guest_code. */
const MAX_GUEST_CODE_CHARS = 64;

export function truncateGuestText(s: string, max: number = LIMITS.maxErrorMessageChars): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters cut)`;
}

/** The ForkdError a failed guest reply becomes. */
export function guestError(method: AgentMethod, error: { code?: unknown; message?: unknown } | undefined): ForkdError {
  const guestCode = typeof error?.code === 'string' ? error.code.slice(0, MAX_GUEST_CODE_CHARS) : 'unknown';
  const message = truncateGuestText(typeof error?.message === 'string' ? error.message : 'agent error');
  if (GUEST_CODES_PASSED.has(guestCode as ForkdErrorCode)) return new ForkdError(guestCode as ForkdErrorCode, message, { method });
  return new ForkdError('FORKD_E_AGENT_ERROR', message, { method, guest_code: guestCode });
}
