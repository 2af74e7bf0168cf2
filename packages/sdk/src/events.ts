/**
 * Lifecycle events (GET /v1/events) as an async iterator: server-sent events parsed here, resumed
 * after the last event seen when the daemon ends the stream (a restart, a slow read) or the
 * connection drops, so a caller sees every event once, in offset order, until it stops iterating.
 */
import { EVENT_LIMITS } from '@forkd/protocol';
import { routes, type ForkdEventT, type QueryOf } from '@forkd/api';
import { isForkdErrorCode } from '@forkd/protocol';
import { errorFor, ForkdSdkError } from './errors.js';
import { expectOk, readJson, send, type Endpoint } from './transport.js';

export type ForkdEvent = ForkdEventT;

export interface EventsOpts {
  /** Events after this offset (-1: from the oldest kept). Default: only new events. */
  since?: number;
  sandboxIds?: string[];
  kinds?: string[];
  /** Stop iterating (the request is aborted). */
  signal?: AbortSignal;
  /** Reconnect after the stream ends or drops (default true); at most this many times in a row without an event. */
  reconnect?: boolean;
  maxReconnects?: number;
}

/** One SSE frame's fields (`id`, `event`, `data`, comments dropped). */
export interface SseFrame { id?: string; event?: string; data?: string }

/** The longest frame the client buffers (a daemon event is far smaller). */
const MAX_FRAME_CHARS = 1024 * 1024;

/** Splits SSE text into frames; feed chunks, get whole frames back (the rest is kept). */
export class SseParser {
  private buf = '';
  /** Comment lines (without the colon), e.g. the daemon's `forkd events from N` opening. */
  onComment: ((text: string) => void) | null = null;
  push(chunk: string): SseFrame[] {
    this.buf += chunk.replace(/\r\n?/g, '\n');
    const out: SseFrame[] = [];
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const f: SseFrame = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.onComment?.(line.slice(1).trim());
        if (line === '' || line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'data') f.data = f.data === undefined ? value : `${f.data}\n${value}`;
        else if (field === 'id' || field === 'event') f[field] = value;
      }
      if (f.data !== undefined || f.event !== undefined) out.push(f);
    }
    if (this.buf.length > MAX_FRAME_CHARS) throw errorFor('FORKD_E_PAYLOAD_TOO_LARGE', `the event stream sent a frame longer than ${MAX_FRAME_CHARS} characters`);
    return out;
  }
}

function query(o: EventsOpts, since: number | undefined, follow: boolean): Record<string, string> {
  return {
    ...(since !== undefined ? { since: String(since) } : {}),
    ...(o.sandboxIds?.length ? { sandbox_id: o.sandboxIds.join(',') } : {}),
    ...(o.kinds?.length ? { kinds: o.kinds.join(',') } : {}),
    ...(follow ? {} : { follow: 'false' }),
  };
}

/** One page of past events (no stream). */
export async function eventsPage(ep: Endpoint, o: EventsOpts & { limit?: number } = {}) {
  const q = { ...query(o, o.since ?? -1, false), ...(o.limit ? { limit: String(o.limit) } : {}) } as QueryOf<'events'>;
  return readJson<{ events: ForkdEvent[]; next_since: number; oldest: number | null }>(await send(ep, { method: 'GET', path: routes.events.path, query: q as Record<string, string>, ...(o.signal ? { signal: o.signal } : {}) }));
}

/** Follows the event stream; ends only when the caller stops iterating or aborts (or reconnects run out). */
export async function* followEvents(ep: Endpoint, o: EventsOpts = {}): AsyncGenerator<ForkdEvent> {
  let since = o.since;
  let failures = 0;
  const maxReconnects = o.maxReconnects ?? 10;
  for (;;) {
    if (o.signal?.aborted) return;
    let ended = null as { code: string; message: string; resume_since: number } | null;
    try {
      const res = await send(ep, { method: 'GET', path: routes.events.path, query: query(o, since, true), timeoutMs: 30_000, ...(o.signal ? { signal: o.signal } : {}) });
      await expectOk(res);
      const parser = new SseParser();
      // Only new events were asked for: the daemon's opening comment says where it started, so a
      // reconnect resumes there instead of skipping what happened in between.
      if (since === undefined) parser.onComment = (t) => {
        const m = /^forkd events from (-?\d+)$/.exec(t);
        if (m && since === undefined) since = Number(m[1]) - 1;
      };
      res.stream.setEncoding('utf8');
      // An idle stream still gets a comment every heartbeatMs: silence past three of them is a dead connection.
      const idle = EVENT_LIMITS.heartbeatMs * 3;
      const timer = setTimeout(() => res.stream.destroy(errorFor('FORKD_E_TIMEOUT', 'the event stream went silent')), idle);
      try {
        for await (const chunk of res.stream as AsyncIterable<string>) {
          timer.refresh();
          for (const f of parser.push(chunk)) {
            if (f.event === 'error') {
              ended = JSON.parse(f.data ?? '{}') as typeof ended;
              continue;
            }
            if (f.data === undefined) continue;
            const e = JSON.parse(f.data) as ForkdEvent;
            since = e.id;
            failures = 0;
            yield e;
          }
        }
      } finally {
        clearTimeout(timer);
        res.stream.destroy();
      }
    } catch (e) {
      if (o.signal?.aborted) return;
      // Errors the daemon answered (bad filter, unauthorized) do not get better by retrying.
      if (e instanceof ForkdSdkError && !['FORKD_E_UNAVAILABLE', 'FORKD_E_TIMEOUT'].includes(e.code)) throw e;
      if (o.reconnect === false || ++failures > maxReconnects) throw e;
    }
    if (ended) {
      since = ended.resume_since;
      if (o.reconnect === false || ++failures > maxReconnects) throw errorFor(isForkdErrorCode(ended.code) ? ended.code : 'FORKD_E_UNAVAILABLE', ended.message, { resume_since: ended.resume_since });
    } else if (o.reconnect === false) return;
    await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** Math.min(failures, 6))));
  }
}
