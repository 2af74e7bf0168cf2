/**
 * The web view's login (`forkd ui`): a token holder asks for a one-time code; the browser trades the
 * code, by POST, for an HttpOnly SameSite=Strict cookie that then admits the page, its data (the same
 * REST routes the SDK calls) and the event stream. The token itself never enters a URL.
 */
import { z } from 'zod';
import { UI_LIMITS } from '@forkd/protocol';

/** A code or a session id: hex of UI_LIMITS.secretBytes random bytes. */
export const UiSecret = z.string().regex(new RegExp(`^[0-9a-f]{${UI_LIMITS.secretBytes * 2}}$`), 'invalid code');

export const UiCode = z.object({
  /** One use, valid until expires_at_unix_ms. */
  code: UiSecret,
  expires_at_unix_ms: z.number().int(),
  /** Path (with the code in its fragment, which browsers never send) to open on this daemon's address. */
  login_path: z.string(),
});

export const UiSessionBody = z.object({ code: UiSecret }).strict();

/** The header the page sets on every call that changes something: a cookie alone is not enough (CSRF). */
export const UI_CSRF_HEADER = 'x-forkd-ui';
/** The session cookie's name. */
export const UI_COOKIE = 'forkd_ui';
