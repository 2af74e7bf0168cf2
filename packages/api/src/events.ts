/**
 * Lifecycle events (issue 10 §4): one shape for the SSE stream (GET /v1/events), the JSON page,
 * the webhooks' POST bodies and both SDKs. Offsets (`id`) grow by one per event across restarts.
 */
import { z } from 'zod';
import { EVENT_LIMITS } from '@forkd/protocol';
import { Identity, SandboxId, Tag, QueryBool } from './common.js';

/**
 * created: a sandbox answered after a spawn (or a workspace create/resume spawn). killed: ended by a
 * request (details.reason: request, shutdown, workspace_deleted). timed_out, oom (its memory limit),
 * exited (the VM stopped on its own), lost (gone when the daemon restarted). branched: a capture of a
 * running sandbox became a snapshot; forked: children were spawned from such a capture. paused /
 * resumed: a workspace was suspended to disk / restored. snapshot_created / snapshot_deleted.
 */
export const EVENT_KINDS = ['created', 'killed', 'timed_out', 'oom', 'exited', 'lost', 'branched', 'forked', 'paused', 'resumed', 'snapshot_created', 'snapshot_deleted'] as const;
export const EventKind = z.enum(EVENT_KINDS);
export type EventKindT = z.infer<typeof EventKind>;

export const ForkdEvent = z.object({
  /** The event's offset: resume after it with ?since=<id> or Last-Event-ID. */
  id: z.number().int().nonnegative(),
  /** ISO 8601 UTC, and the same instant in unix ms. */
  time: z.string(),
  time_unix_ms: z.number().int(),
  /** The identity (tenant) whose resource it is: it alone (and admins) see the event. */
  owner: Identity,
  kind: EventKind,
  sandbox_id: SandboxId.nullable(),
  snapshot_tag: Tag.nullable(),
  /** Kind-specific: reason, children, pause_ms, source snapshot... (at most EVENT_LIMITS.maxDetailsBytes of JSON). */
  details: z.record(z.string(), z.unknown()),
});
export type ForkdEventT = z.infer<typeof ForkdEvent>;

const Offset = z.coerce.number().int().min(-1);
const csv = (max: number, item: z.ZodType, what: string) => z.string().max(4096).transform((s, ctx) => {
  const parts = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length > max) ctx.addIssue({ code: 'custom', message: `at most ${max} ${what}` });
  for (const p of parts) if (!item.safeParse(p).success) ctx.addIssue({ code: 'custom', message: `invalid ${what.replace(/s$/, '')} ${JSON.stringify(p.slice(0, 40))}` });
  return parts;
});

/**
 * since: events after this offset (-1: from the oldest kept; absent: only new ones when following,
 * the oldest kept otherwise). follow=false answers one JSON page instead of a stream.
 */
export const EventsQuery = z.object({
  since: Offset.optional(),
  sandbox_id: csv(EVENT_LIMITS.maxFilterSandboxes, SandboxId, 'sandbox ids').optional(),
  kinds: csv(EVENT_LIMITS.maxFilterKinds, EventKind, 'kinds').optional(),
  follow: QueryBool.optional(),
  limit: z.coerce.number().int().min(1).max(EVENT_LIMITS.maxPage).optional(),
}).strict();

export const EventsPage = z.object({
  events: z.array(ForkdEvent),
  /** Resume after this offset next time (the last event's id, or since when none matched). */
  next_since: z.number().int(),
  /** The oldest offset still kept: a since older than it lost events to retention. */
  oldest: z.number().int().nullable(),
});

/** The stream's last event when the daemon ends it (a reader too slow, the daemon stopping). */
export const EventStreamError = z.object({ code: z.string(), message: z.string(), resume_since: z.number().int() });
