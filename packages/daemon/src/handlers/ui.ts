/** The web view's login: codes for token holders, the code-for-cookie trade, and logout. */
import type { Handlers } from '../http/register.js';
import type { AuthFailures } from '../http/auth.js';
import type { UiSessions } from '../http/ui-sessions.js';
import { assertNotCrossSite, clearedCookie, cookieValue, sessionCookie } from '../http/ui-auth.js';

export function uiHandlers(ui: UiSessions, failures: AuthFailures): Pick<Handlers, 'createUiCode' | 'openUiSession' | 'closeUiSession'> {
  return {
    async createUiCode({ caller }) {
      const { code, expiresAt } = ui.issueCode(caller);
      // The code rides in the fragment: browsers never send it, so it reaches no log; the login page POSTs it.
      return { status: 201, body: { code, expires_at_unix_ms: expiresAt, login_path: `/ui/login#code=${code}` } };
    },
    async openUiSession({ body, req, reply }) {
      // Another site must not log a browser into a session of its choosing either.
      assertNotCrossSite(req.raw);
      const peer = req.raw.socket?.remoteAddress ?? 'unix';
      failures.assertAllowed(peer);
      let session;
      try {
        session = ui.redeem(body.code);
      } catch (e) {
        failures.failed(peer);
        throw e;
      }
      reply.header('set-cookie', sessionCookie(req.raw, session.sessionId, session.maxAgeSecs));
      reply.header('cache-control', 'no-store');
      return { status: 204 };
    },
    async closeUiSession({ req, reply }) {
      const sid = cookieValue(req.headers.cookie);
      if (sid !== undefined) ui.end(sid);
      reply.header('set-cookie', clearedCookie(req.raw));
      return { status: 204 };
    },
  };
}
