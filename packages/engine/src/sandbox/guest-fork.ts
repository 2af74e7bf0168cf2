/**
 * A guest's own fork (forkd.fork() inside the VM), host side. The engine holds one
 * guest_fork.wait open on a sandbox allowed to fork itself; when a guest program calls, the request
 * goes to the handler the daemon gave (it checks permission and limits and forks with the values),
 * and the original's waiting caller gets the children's ids, or the error, through guest_fork.resolve.
 * Each child's caller was answered by its own `vary` during the fork (spawn's variants).
 */
import { LIMITS, toForkdError, type VaryValuesT } from '@forkd/protocol';
import { agentOf, type Sandbox } from './sandbox.js';
import { nowMs, since } from '../util/timing.js';

export interface GuestForkRequest {
  requestId: string;
  count: number;
  /** One object per child (index i: child i). */
  vary: VaryValuesT[];
}

/** What the handler reports: the children's ids and the original's pause. */
export interface GuestForkOutcome {
  children: string[];
  pauseMs: number;
}

export type GuestForkHandler = (sb: Sandbox, req: GuestForkRequest) => Promise<GuestForkOutcome>;

/** Timings of one guest fork as the original's caller got them (also given to onDone). */
export interface GuestForkDone {
  requestId: string;
  children: string[];
  error: { code: string; message: string } | null;
  pause_ms: number | null;
  /** From the host receiving the call to every child answered (its caller unblocked). */
  fork_ms: number;
}

const RETRY_MS = 1000;

/** Watches sb for guest forks until stop() or the VM ends. */
export function watchGuestForks(sb: Sandbox, handle: GuestForkHandler, onDone?: (d: GuestForkDone) => void): { stop(): void } {
  const ac = new AbortController();
  void (async () => {
    while (!ac.signal.aborted && sb.alive) {
      let req;
      try {
        req = await agentOf(sb).guestForkWait({ signal: ac.signal });
      } catch (e) {
        if (ac.signal.aborted || !sb.alive) return;
        // An agent without guest forks (an older image) says so at once: stop rather than spin.
        if (toForkdError(e).code === 'FORKD_E_INVALID_ARGUMENT') return;
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
        continue;
      }
      const t0 = nowMs();
      let done: GuestForkDone;
      try {
        const out = await handle(sb, { requestId: req.request_id, count: req.count, vary: req.vary });
        done = { requestId: req.request_id, children: out.children, error: null, pause_ms: out.pauseMs, fork_ms: since(t0) };
      } catch (e) {
        const fe = toForkdError(e);
        done = { requestId: req.request_id, children: [], error: { code: fe.code, message: fe.message.slice(0, LIMITS.maxErrorMessageChars) }, pause_ms: null, fork_ms: since(t0) };
      }
      onDone?.(done);
      if (!sb.alive) return;
      await agentOf(sb).guestForkResolve(done.error
        ? { request_id: done.requestId, error: done.error }
        : { request_id: done.requestId, children: done.children, timings: { pause_ms: done.pause_ms ?? 0, fork_ms: done.fork_ms } }).catch(() => undefined);
    }
  })();
  return { stop: () => ac.abort() };
}
