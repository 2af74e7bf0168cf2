/** `forkd events`: the daemon's lifecycle events, a page of past ones or followed live (--follow). */
import type { Command } from 'commander';
import { EVENT_KINDS } from '@forkd/api';
import { ForkdError } from '@forkd/protocol';
import type { Controller, ForkdEvent } from '@forkd/sdk';
import type { CliContext } from '../client.js';
import { escapeControls, parseIntStrict, printJson } from '../output.js';

interface EventsFlags {
  follow?: boolean;
  since?: string;
  sandbox?: string[];
  kinds?: string;
  limit?: string;
  json?: boolean;
}

/** One event as a line: offset, time, kind, sandbox, snapshot, details (guest-influenced text escaped). */
export function eventLine(e: ForkdEvent): string {
  const details = Object.entries(e.details).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return escapeControls(`${String(e.id).padStart(6)}  ${e.time}  ${e.kind.padEnd(16)} ${e.sandbox_id ?? '-'}  ${e.snapshot_tag ?? '-'}  ${e.owner}  ${details}`);
}

function atLeast(flag: string, v: string, min: number): number {
  const n = parseIntStrict(flag, v);
  if (n < min) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${flag} must be at least ${min}; got ${n}`);
  return n;
}

export async function eventsCmd(c: Controller, o: EventsFlags): Promise<void> {
  const kinds = o.kinds ? o.kinds.split(',').map((k) => k.trim()).filter(Boolean) : undefined;
  for (const k of kinds ?? []) if (!(EVENT_KINDS as readonly string[]).includes(k)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--kinds: unknown kind ${JSON.stringify(k)} (one of ${EVENT_KINDS.join(', ')})`);
  const since = o.since !== undefined ? atLeast('--since', o.since, -1) : undefined;
  const filter = { ...(o.sandbox?.length ? { sandboxIds: o.sandbox } : {}), ...(kinds ? { kinds } : {}) };
  if (!o.follow) {
    const page = await c.eventsPage({ ...filter, since: since ?? -1, ...(o.limit ? { limit: atLeast('--limit', o.limit, 1) } : {}) });
    if (o.json) return printJson(page);
    for (const e of page.events) process.stdout.write(`${eventLine(e)}\n`);
    if (page.events.length === 0) process.stdout.write('no events\n');
    return;
  }
  // Ctrl-C ends the loop; one JSON object per line with --json (NDJSON), so it pipes into jq.
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  for await (const e of c.events({ ...filter, ...(since !== undefined ? { since } : {}), signal: ac.signal })) {
    process.stdout.write(o.json ? `${JSON.stringify(e)}\n` : `${eventLine(e)}\n`);
  }
}

export function registerEventsCommand(program: Command, { run, client }: CliContext): void {
  program.command('events').description('lifecycle events of your sandboxes and snapshots (created, killed, timed_out, oom, branched, forked, paused, resumed...); --follow streams them')
    .option('-f, --follow', 'keep streaming new events (resumes by itself if the daemon restarts)')
    .option('--since <offset>', 'events after this offset (-1: the oldest kept); default: all kept, or only new ones with --follow')
    .option('--sandbox <id>', 'only this sandbox (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--kinds <k1,k2>', `only these kinds (${EVENT_KINDS.join(', ')})`)
    .option('--limit <n>', 'most events without --follow')
    .option('--json', 'JSON output (with --follow: one event per line)')
    .action(run(async (o: EventsFlags) => eventsCmd(await client(), o)));
}
