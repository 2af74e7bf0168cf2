/**
 * The checks every snapshot deletion goes through, DELETE /v1/snapshots and workspace delete alike
 * (V4): no sandbox runs from a doomed snapshot (a caller may override for its own with force), and
 * nothing is being written to or from one. Dependents are the engine's check (removeSnapshot
 * refuses a snapshot with layers on it unless cascade).
 */
import { ForkdError } from '@forkd/protocol';
import type { SandboxRegistry } from '../sandboxes/registry.js';
import type { SnapshotWrites } from './writes.js';
import type { Caller } from '../http/auth.js';

export interface DeletionCheck {
  /** The snapshots that would go (the tag, and its dependents with cascade). */
  doomed: string[];
  /** Sandboxes that may be left running from them (force). */
  force: boolean;
  /** Whose request: sandboxes and writes it cannot see are counted, never named. null: the daemon's own. */
  by: Caller | null;
  /** Sandboxes not counted (a workspace's own, killed by the delete itself). */
  ignore?: string[];
}

export function assertDeletable(sandboxes: SandboxRegistry, writes: SnapshotWrites, c: DeletionCheck): void {
  const ignore = new Set(c.ignore ?? []);
  const users = c.doomed.flatMap((t) => sandboxes.usage(t)).filter((id) => !ignore.has(id));
  const mine = new Set(c.by ? c.doomed.flatMap((t) => sandboxes.list({ tag: t, visibleTo: c.by! }).map((e) => e.rec.id)) : users);
  const others = users.filter((id) => !mine.has(id));
  const where = c.doomed.join(', ');
  if (others.length > 0) {
    throw new ForkdError('FORKD_E_IN_USE', `${others.length} sandbox(es) of other identities run from ${where}: it cannot be deleted while they run`, { other_sandboxes: others.length });
  }
  if (users.length > 0 && !c.force) {
    throw new ForkdError('FORKD_E_IN_USE', `sandboxes run from ${where}: ${users.join(', ')} (kill them first, or force=true)`, { sandboxes: users });
  }
  const busy = writes.list().filter((w) => w.status === 'writing' && (c.doomed.includes(w.tag) || (w.source !== null && c.doomed.includes(w.source))));
  if (busy.length > 0) {
    const named = new Set(writes.list(c.by).map((w) => w.tag));
    const shown = busy.map((w) => (named.has(w.tag) ? w.tag : 'another identity\'s snapshot'));
    throw new ForkdError('FORKD_E_IN_USE', `snapshots are being written to or from ${where}: ${shown.join(', ')}`);
  }
}
