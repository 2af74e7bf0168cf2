/**
 * GET /v1/events: a JSON page (follow=false) or server-sent events. A stream starts after
 * Last-Event-ID (a reconnecting EventSource sends it) or ?since=, catches up from the log in pages,
 * then follows live events. Subscribing and reading the last offset happen in one tick, so no event
 * falls between the catch-up and the live part. A reader whose buffer passes
 * EVENT_LIMITS.maxStreamBacklogBytes (or whose live queue outgrows it while it catches up) is sent a
 * final `error` event naming the offset to resume from, and the stream ends: a slow client costs the
 * daemon a bounded amount of memory.
 */
import type { ServerResponse } from 'node:http';
import { EVENT_LIMITS, ForkdError } from '@forkd/protocol';
import type { ForkdEventT } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { Caller } from '../http/auth.js';
import { canSee } from '../tenancy/access.js';
import { matches, type EventFilter, type EventLog } from './log.js';

export interface StreamLimits {
  maxBacklogBytes: number;
  heartbeatMs: number;
}

export function eventFilter(caller: Caller, sandboxIds?: string[], kinds?: string[]): EventFilter {
  return { visible: (owner) => canSee(caller, owner), ...(sandboxIds ? { sandboxIds } : {}), ...(kinds ? { kinds } : {}) };
}

/** The Last-Event-ID header as an offset (absent or not a number: undefined). */
export function lastEventId(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || !/^-?\d{1,15}$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

export function sseFrame(e: ForkdEventT): string {
  return `id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`;
}

export function eventHandlers(log: EventLog, limits: StreamLimits = { maxBacklogBytes: EVENT_LIMITS.maxStreamBacklogBytes, heartbeatMs: EVENT_LIMITS.heartbeatMs }): Pick<Handlers, 'events'> {
  return {
    async events({ query, req, reply, caller }) {
      const filter = eventFilter(caller, query.sandbox_id, query.kinds);
      const resumeFrom = lastEventId(req.headers['last-event-id']) ?? query.since;
      if (query.follow === false) {
        const since = resumeFrom ?? -1;
        const events = await log.read(since, filter, query.limit ?? EVENT_LIMITS.maxPage);
        return { status: 200, body: { events, next_since: events.at(-1)?.id ?? Math.max(since, -1), oldest: log.oldestId } };
      }
      reply.hijack();
      streamEvents(reply.raw, log, filter, resumeFrom, limits);
      return 'sent';
    },
  };
}

export function streamEvents(out: ServerResponse, log: EventLog, filter: EventFilter, resumeFrom: number | undefined, limits: StreamLimits): void {
  let sent = resumeFrom ?? log.lastId;
  let catchingUp = true;
  let ended = false;
  const live: ForkdEventT[] = [];
  let liveBytes = 0;
  const end = (code: string, message: string): void => {
    if (ended) return;
    ended = true;
    unsubscribe();
    clearInterval(heartbeat);
    if (!out.destroyed) {
      out.write(`event: error\ndata: ${JSON.stringify({ code, message, resume_since: sent })}\n\n`);
      out.end();
    }
  };
  const write = (e: ForkdEventT): void => {
    if (ended || e.id <= sent) return;
    out.write(sseFrame(e));
    sent = e.id;
    if (out.writableLength > limits.maxBacklogBytes) end('FORKD_E_RATE_LIMITED', `the client reads the event stream too slowly (${out.writableLength} bytes waiting, limit ${limits.maxBacklogBytes}): resume with since=${sent}`);
  };
  const unsubscribe = log.subscribe((e) => {
    if (ended || !matches(e, filter)) return;
    if (!catchingUp) return write(e);
    live.push(e);
    liveBytes += JSON.stringify(e).length;
    if (liveBytes > limits.maxBacklogBytes) end('FORKD_E_RATE_LIMITED', `events arrived faster than the stream caught up: resume with since=${sent}`);
  }, () => end('FORKD_E_UNAVAILABLE', 'the daemon is stopping: resume after it restarts'));
  const cut = log.lastId;
  out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
  // A comment at once: clients and proxies see the stream open before the first event.
  out.write(`: forkd events from ${sent + 1}\nretry: 2000\n\n`);
  const heartbeat = setInterval(() => {
    if (!ended && !out.destroyed) out.write(': ping\n\n');
  }, limits.heartbeatMs);
  heartbeat.unref();
  out.once('close', () => {
    ended = true;
    unsubscribe();
    clearInterval(heartbeat);
  });
  void (async () => {
    try {
      // Catch-up, page by page, up to the offset current when we subscribed.
      for (let from = sent; from < cut && !ended;) {
        const page = await log.read(from, filter, EVENT_LIMITS.maxPage);
        const upTo = page.filter((e) => e.id <= cut);
        for (const e of upTo) write(e);
        if (page.length < EVENT_LIMITS.maxPage || upTo.length < page.length) break;
        from = page.at(-1)!.id;
        if (out.writableLength > 0) await new Promise((r) => {
          out.once('drain', r);
          out.once('close', r);
        });
      }
      catchingUp = false;
      for (const e of live.splice(0)) write(e);
    } catch (e) {
      end('FORKD_E_INTERNAL', e instanceof ForkdError ? e.message : 'reading the event log failed');
    }
  })();
}
