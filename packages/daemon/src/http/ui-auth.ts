/**
 * Cookie authentication for the web view: the session cookie's shape, reading it back, and the
 * CSRF rule. A cookie is sent by the browser on any request to this address, including ones a
 * hostile page triggers, so a cookie alone admits only reads; anything else must also carry a
 * header the page sets (a cross-origin page cannot set it without a CORS preflight this daemon never
 * grants) and, when the browser names an Origin, come from this very address.
 */
import type { IncomingMessage } from 'node:http';
import { ForkdError } from '@forkd/protocol';
import { UI_COOKIE, UI_CSRF_HEADER } from '@forkd/api';

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string = UI_COOKIE): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const isTls = (req: IncomingMessage): boolean => 'encrypted' in req.socket;

/** Set-Cookie for a session: never readable by scripts, never sent by another site's requests. */
export function sessionCookie(req: IncomingMessage, sessionId: string, maxAgeSecs: number): string {
  return `${UI_COOKIE}=${sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSecs}${isTls(req) ? '; Secure' : ''}`;
}

export function clearedCookie(req: IncomingMessage): string {
  return `${UI_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${isTls(req) ? '; Secure' : ''}`;
}

/** Throws FORKD_E_FORBIDDEN for a cookie-borne request that could have been forged by another site. */
export function assertNotCrossSite(req: IncomingMessage): void {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return;
  if (req.headers[UI_CSRF_HEADER] !== '1') {
    throw new ForkdError('FORKD_E_FORBIDDEN', `a request authenticated by the web view cookie that changes something needs the ${UI_CSRF_HEADER}: 1 header (cross-site request guard)`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      /* "null" or garbage: refused below */
    }
    const own = req.headers.host ?? '';
    // URL drops a default port that a Host header may still name.
    if (host === null || (host !== own && host !== own.replace(/:(80|443)$/, ''))) throw new ForkdError('FORKD_E_FORBIDDEN', `Origin ${JSON.stringify(origin.slice(0, 100))} is not this daemon's address: refused (cross-site request guard)`);
  }
}
