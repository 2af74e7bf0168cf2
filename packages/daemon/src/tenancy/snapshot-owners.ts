/**
 * Who owns each snapshot, and whether an admin shared it: journaled daemon-side (the engine knows
 * nothing of tenants). A record names the snapshot instance it was made for (its vmstate hash), so
 * a tag deleted outside the daemon and made again (`--local`) does not inherit the old owner.
 * Snapshots without a record (made before tenancy, or by the engine directly) belong to the
 * local admin identity and are not shared.
 */
import { ForkdError, LOCAL_IDENTITY } from '@forkd/protocol';
import type { SnapshotEntry } from '@forkd/engine';
import type { Journal } from '../state/journal.js';
import type { Caller } from '../http/auth.js';
import { canChange, canSee } from './access.js';

export interface SnapshotOwnerRecord {
  owner: string;
  shared: boolean;
  /** files.vmstate.sha256 of the snapshot the record is about. */
  instance: string;
}

export interface SnapshotOwnership {
  owner: string;
  shared: boolean;
}

const KIND = 'snapshot-owner';
const instanceOf = (e: SnapshotEntry): string => e.manifest.files.vmstate.sha256;

export class SnapshotOwners {
  constructor(private readonly journal: Journal) {}

  of(e: SnapshotEntry): SnapshotOwnership {
    const r = this.journal.get<SnapshotOwnerRecord>(KIND, e.tag);
    return r && r.instance === instanceOf(e) ? { owner: r.owner, shared: r.shared } : { owner: LOCAL_IDENTITY, shared: false };
  }

  /** Records the maker of a snapshot just written. */
  async record(e: SnapshotEntry, owner: string): Promise<void> {
    await this.journal.put(KIND, e.tag, { owner, shared: false, instance: instanceOf(e) } satisfies SnapshotOwnerRecord);
  }

  async setShared(e: SnapshotEntry, shared: boolean): Promise<SnapshotOwnership> {
    const o = this.of(e);
    await this.journal.put(KIND, e.tag, { owner: o.owner, shared, instance: instanceOf(e) } satisfies SnapshotOwnerRecord);
    return { owner: o.owner, shared };
  }

  /** After a delete (a stale record would be ignored anyway: this keeps the journal small). */
  async forget(tag: string): Promise<void> {
    if (this.journal.get(KIND, tag)) await this.journal.delete(KIND, tag);
  }

  visible(c: Caller, e: SnapshotEntry): boolean {
    const o = this.of(e);
    return canSee(c, o.owner, o.shared);
  }

  /** The entry if the caller may see it (spawn from it, read it); else not found, as for a missing tag. */
  assertVisible(c: Caller, e: SnapshotEntry): SnapshotEntry {
    if (!this.visible(c, e)) throw notFound(e.tag);
    return e;
  }

  /** The entry if the caller may change or delete it: not found when invisible, forbidden when only shared with it. */
  assertChangeable(c: Caller, e: SnapshotEntry): SnapshotEntry {
    const o = this.of(e);
    if (!canSee(c, o.owner, o.shared)) throw notFound(e.tag);
    if (!canChange(c, o.owner)) throw new ForkdError('FORKD_E_FORBIDDEN', `snapshot ${e.tag} is shared with you by an admin: you may spawn from it, not change or delete it`, { tag: e.tag });
    return e;
  }
}

export function notFound(tag: string): ForkdError {
  // Word for word the engine's answer for a missing tag: the two must not be told apart.
  return new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `no snapshot tagged ${JSON.stringify(tag)}`, { tag });
}
