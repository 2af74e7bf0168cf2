/**
 * The web view's sessions: one-time login codes (issued to a token holder by `forkd ui`) and the
 * cookie sessions they are traded for. Both carry the caller that asked (identity and scope), so a
 * tenant's cookie sees what its token sees. Kept in memory only: a restarted daemon forgets every
 * session (run `forkd ui` again), and nothing secret lands on disk. Secrets are kept as sha256 digests.
 */
import crypto from 'node:crypto';
import { ForkdError, UI_LIMITS } from '@forkd/protocol';
import type { Caller } from './auth.js';

interface Held {
  caller: Caller;
  expiresAt: number;
}

const digest = (s: string): string => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

/** Drops expired entries, then the oldest ones past `max` (Maps keep insertion order). */
function prune(m: Map<string, Held>, max: number, now: number): void {
  for (const [k, v] of m) if (v.expiresAt <= now) m.delete(k);
  while (m.size > max) m.delete(m.keys().next().value!);
}

export class UiSessions {
  private readonly codes = new Map<string, Held>();
  private readonly sessions = new Map<string, Held>();

  constructor(private readonly limits: { codeTtlMs: number; sessionTtlMs: number; maxCodes: number; maxSessions: number } = UI_LIMITS) {}

  /** A one-time code for this caller. */
  issueCode(caller: Caller, now = Date.now()): { code: string; expiresAt: number } {
    const code = crypto.randomBytes(UI_LIMITS.secretBytes).toString('hex');
    const expiresAt = now + this.limits.codeTtlMs;
    this.codes.set(digest(code), { caller: { identity: caller.identity, scope: caller.scope }, expiresAt });
    prune(this.codes, this.limits.maxCodes, now);
    return { code, expiresAt };
  }

  /** Trades a code (once) for a session id; an unknown, used or expired code is a 401. */
  redeem(code: string, now = Date.now()): { sessionId: string; caller: Caller; maxAgeSecs: number } {
    const key = digest(code);
    const held = this.codes.get(key);
    this.codes.delete(key);
    if (!held || held.expiresAt <= now) throw new ForkdError('FORKD_E_UNAUTHORIZED', 'this web view login code is unknown, used or expired: run `forkd ui` again');
    const sessionId = crypto.randomBytes(UI_LIMITS.secretBytes).toString('hex');
    this.sessions.set(digest(sessionId), { caller: held.caller, expiresAt: now + this.limits.sessionTtlMs });
    prune(this.sessions, this.limits.maxSessions, now);
    return { sessionId, caller: held.caller, maxAgeSecs: Math.floor(this.limits.sessionTtlMs / 1000) };
  }

  /** The caller of a live session, or null. */
  caller(sessionId: string, now = Date.now()): Caller | null {
    const held = this.sessions.get(digest(sessionId));
    if (!held) return null;
    if (held.expiresAt <= now) {
      this.sessions.delete(digest(sessionId));
      return null;
    }
    return held.caller;
  }

  end(sessionId: string): void {
    this.sessions.delete(digest(sessionId));
  }
}
