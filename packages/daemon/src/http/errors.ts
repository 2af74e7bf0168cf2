/** Maps anything thrown while serving a request to a ForkdError: a bad request is never a 500. */
import { ForkdError, LIMITS, toForkdError } from '@forkd/protocol';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
}

export function httpError(err: unknown): ForkdError {
  if (err instanceof ForkdError) return err;
  const e = (err ?? {}) as FastifyLikeError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ForkdError('FORKD_E_INVALID_ARGUMENT', 'unsupported content type: send application/json (application/octet-stream for uploads)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ForkdError('FORKD_E_INVALID_ARGUMENT', 'empty JSON body');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ForkdError('FORKD_E_INVALID_ARGUMENT', 'invalid content-length');
    default:
      break;
  }
  if (err instanceof SyntaxError || (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)) {
    const status = e.statusCode ?? 400;
    if (status === 413) return new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', e.message ?? 'too large');
    return new ForkdError('FORKD_E_INVALID_ARGUMENT', `bad request: ${e.message ?? 'invalid'}`);
  }
  return toForkdError(err);
}

export function zodMessage(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>, where: string): string {
  return issues.slice(0, 5).map((i) => `${where}${i.path.length ? `.${i.path.map(String).join('.')}` : ''}: ${i.message}`).join('; ');
}

/**
 * What an error-level log line says about a failed request, or null when it is not logged: a
 * guest's own failure (details.guest_code) is the tenant's business, and logging it would let
 * a guest write to daemon.log at will. Messages are cut, details never logged.
 */
export function errorLogFields(fe: ForkdError): { code: string; msg: string } | null {
  if (fe.status < 500 || fe.details?.guest_code !== undefined) return null;
  const max = LIMITS.maxErrorMessageChars;
  return { code: fe.code, msg: fe.message.length > max ? `${fe.message.slice(0, max)}… (cut)` : fe.message };
}
