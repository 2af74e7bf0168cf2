/**
 * Workspaces: named long-lived sandboxes. Suspend captures the sandbox (memory, devices, disk)
 * as a snapshot layer and stops its VM; resume restores it from that layer with the same sandbox
 * id, envs and metadata. Records are journaled, state layers are on disk: a workspace survives a
 * daemon restart and a host reboot. Suspend/resume cycles grow a chain of layers, so a chain of
 * MAX_LAYERS of the workspace's own layers is compacted into one flat snapshot. Both snapshots
 * are made through SnapshotWrites, so their tags are reserved like any other write's.
 */
import type { Logger } from 'pino';
import { ForkdError, toForkdError } from '@forkd/protocol';
import type { Engine } from '@forkd/engine';
import type { Journal } from '../state/journal.js';
import type { SandboxRegistry } from '../sandboxes/registry.js';
import type { EgressRecord } from '../sandboxes/egress.js';
import type { QuotaValues } from '../quotas/policy.js';
import type { SnapshotWrites } from '../snapshots/writes.js';
import type { Caller } from '../http/auth.js';
import { NO_EVENTS, type EventSink } from '../events/log.js';
import type { SnapshotOwners } from '../tenancy/snapshot-owners.js';
import { canSee, ownerOf } from '../tenancy/access.js';
import { assertDeletable } from '../snapshots/deletion.js';

export interface WorkspaceRecord {
  name: string;
  /** The snapshot it was created from. */
  snapshot_tag: string;
  status: 'running' | 'suspended';
  sandbox_id: string;
  state_tag: string | null;
  created_at_unix: number;
  suspended_at_unix: number | null;
  metadata: Record<string, string>;
  envs: Record<string, string>;
  seq: number;
  warning: string | null;
  /** The identity that created it (absent in records from before tenancy: the local admin's). */
  owner?: string;
  /** Its sandbox has its own network (kept on resume). Absent in older records: false. */
  network?: boolean;
  /** Its sandbox's egress policy as of create or the last suspend (kept on resume). */
  egress?: EgressRecord | null;
  /** The limits its sandbox runs with (resolved, wire names), kept on resume. Absent in older records: none. */
  quotas?: QuotaValues;
}

const KIND = 'workspace';

export interface CreateRequest {
  name: string;
  snapshot_tag?: string;
  sandbox_id?: string;
  metadata?: Record<string, string>;
  envs?: Record<string, string>;
  network?: boolean;
  /** A new sandbox's limits (wire names; the daemon's defaults and maxima apply) and egress policy. */
  quotas?: QuotaValues;
  egress?: EgressRecord | null;
}

/** What a resume may change: the network, egress policy and limits the workspace runs with from now on. */
export interface ResumeChanges {
  network?: boolean;
  egress?: EgressRecord;
  /** Merged over the recorded limits. */
  quotas?: QuotaValues;
}
const MAX_LAYERS = 3;

export class Workspaces {
  /** paused / resumed events (the sandbox's own created / killed come from the registry). */
  events: EventSink = NO_EVENTS;

  constructor(
    private readonly engine: Engine,
    private readonly journal: Journal,
    private readonly sandboxes: SandboxRegistry,
    private readonly writes: SnapshotWrites,
    private readonly owners: SnapshotOwners,
    private readonly log: Logger,
  ) {}

  /** After a restart: a running workspace whose VM is gone falls back to its last saved state. */
  async reconcile(): Promise<void> {
    for (const w of this.journal.all<WorkspaceRecord>(KIND)) {
      if (w.status !== 'running' || this.sandboxes.list().some((l) => l.rec.id === w.sandbox_id)) continue;
      await this.put({ ...w, status: 'suspended', warning: `its VM was lost; resume restores ${w.state_tag ? `the state saved at the last suspend (${w.state_tag})` : `a fresh sandbox from ${w.snapshot_tag}`}` });
    }
  }

  /** Workspaces; with `by`, those that caller may see. */
  list(by: Caller | null = null): WorkspaceRecord[] {
    return this.journal.all<WorkspaceRecord>(KIND).filter((w) => !by || canSee(by, ownerOf(w))).sort((a, b) => a.created_at_unix - b.created_at_unix || a.name.localeCompare(b.name));
  }

  /** A workspace; another identity's is answered as a missing one. null: the daemon itself. */
  get(name: string, by: Caller | null): WorkspaceRecord {
    const w = this.journal.get<WorkspaceRecord>(KIND, name);
    if (!w || (by && !canSee(by, ownerOf(w)))) throw new ForkdError('FORKD_E_WORKSPACE_NOT_FOUND', `no workspace ${name}`, { name });
    return w;
  }

  private put(w: WorkspaceRecord): Promise<void> {
    return this.journal.put(KIND, w.name, w);
  }

  /** Names being created: reserved before the spawn, so two creates of one name cannot both start a VM. */
  private readonly creating = new Set<string>();

  async create(b: CreateRequest, by: Caller): Promise<WorkspaceRecord> {
    // Names are global across identities: the answer says the name is taken, not whose it is.
    if (this.journal.get(KIND, b.name) || this.creating.has(b.name)) throw new ForkdError('FORKD_E_WORKSPACE_EXISTS', `workspace name ${b.name} is unavailable: it is in use (names are shared by every identity; pick another)`, { name: b.name });
    this.creating.add(b.name);
    try {
      return await this.createReserved(b, by);
    } finally {
      this.creating.delete(b.name);
    }
  }

  private async createReserved(b: CreateRequest, by: Caller): Promise<WorkspaceRecord> {
    let live;
    if (b.sandbox_id) {
      live = this.sandboxes.get(b.sandbox_id, by);
      if (live.rec.workspace) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${b.sandbox_id} already belongs to workspace ${live.rec.workspace}`);
      await this.sandboxes.update(live, { workspace: b.name, ...(b.metadata ? { metadata: { ...live.rec.metadata, ...b.metadata } } : {}) });
      await this.sandboxes.setTimeout(live.rec.id, null, null); // a workspace lives until deleted
    } else {
      this.owners.assertVisible(by, await this.engine.getSnapshot(b.snapshot_tag!));
      [live] = await this.sandboxes.spawn({ tag: b.snapshot_tag!, owner: by.identity, n: 1, workspace: b.name, ...(b.metadata ? { metadata: b.metadata } : {}), ...(b.envs ? { envs: b.envs } : {}), ...(b.network ? { network: true } : {}), ...(b.quotas ? { quotas: b.quotas } : {}), ...(b.egress ? { egress: b.egress } : {}) });
    }
    const w: WorkspaceRecord = {
      name: b.name,
      snapshot_tag: live!.rec.snapshot_tag,
      status: 'running',
      sandbox_id: live!.rec.id,
      state_tag: null,
      created_at_unix: Math.floor(Date.now() / 1000),
      suspended_at_unix: null,
      metadata: live!.rec.metadata,
      envs: live!.rec.envs,
      seq: 0,
      warning: null,
      // A sandbox made into a workspace keeps its owner (an admin may adopt a user's sandbox).
      owner: ownerOf(live!.rec),
      network: live!.rec.network ?? false,
      egress: live!.rec.egress ?? null,
      quotas: live!.rec.quotas ?? {},
    };
    await this.put(w);
    return w;
  }

  /** A workspace's VM ended without a suspend (killed, timed out, exited): back to its last saved state. */
  async sandboxEnded(sandboxId: string, reason: string): Promise<void> {
    if (this.suspending.has(sandboxId)) return;
    const w = this.list().find((x) => x.sandbox_id === sandboxId && x.status === 'running');
    if (!w) return;
    await this.put({ ...w, status: 'suspended', warning: `its VM ended (${reason}) without a suspend; resume restores ${w.state_tag ? `the state saved at the last suspend (${w.state_tag})` : `a fresh sandbox from ${w.snapshot_tag}`}` });
  }

  private readonly suspending = new Set<string>();
  /** Workspaces with a suspend, resume or delete under way: a second one at once is a 409, not a race. */
  private readonly busy = new Map<string, string>();

  private async exclusive<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
    const other = this.busy.get(name);
    if (other) throw new ForkdError('FORKD_E_CONFLICT', `workspace ${name} is busy: a ${other} is under way`, { name, busy: other });
    this.busy.set(name, what);
    try {
      return await fn();
    } finally {
      this.busy.delete(name);
    }
  }

  suspend(name: string, by: Caller | null): Promise<WorkspaceRecord> {
    this.get(name, by); // another identity's workspace is not found, busy or not
    return this.exclusive(name, 'suspend', () => this.suspendNow(name, by));
  }

  private async suspendNow(name: string, by: Caller | null): Promise<WorkspaceRecord> {
    const w = this.get(name, by);
    if (w.status !== 'running') throw new ForkdError('FORKD_E_CONFLICT', `workspace ${name} is not running (it is ${w.status})`, { name });
    const live = this.sandboxes.get(w.sandbox_id, null);
    // The sequence number is spent before the capture: a crash after it leaves a layer under a tag
    // that is never tried again (it is removed with the workspace), so the suspend can be retried.
    let seq = w.seq + 1;
    while ((await this.snapshotExists(stateTag(name, seq))) || (await this.snapshotExists(`${stateTag(name, seq)}c`))) seq++;
    await this.put({ ...w, seq });
    let tag = stateTag(name, seq);
    await this.writes.produce({ tag, kind: 'branch', source: live.rec.snapshot_tag, sandbox: live.rec.id, owner: ownerOf(w), wait: true }, () => this.engine.branch(live.sb, { tag, mode: 'full' }));
    this.suspending.add(live.rec.id);
    try {
      await this.sandboxes.kill(live.rec.id, null, 'suspend');
    } finally {
      this.suspending.delete(live.rec.id);
    }
    tag = await this.maybeCompact(name, tag, seq, ownerOf(w));
    const next: WorkspaceRecord = { ...w, status: 'suspended', state_tag: tag, suspended_at_unix: Math.floor(Date.now() / 1000), seq, warning: null, egress: live.rec.egress ?? null };
    await this.put(next);
    this.events.emit({ owner: ownerOf(w), kind: 'paused', sandbox_id: w.sandbox_id, snapshot_tag: tag, details: { workspace: name } });
    return next;
  }

  /** At a graceful stop that ends the VMs: each running workspace is suspended (a failure is logged; it is then reported lost at the next start). */
  async suspendAll(): Promise<void> {
    for (const w of this.list().filter((x) => x.status === 'running')) {
      await this.suspend(w.name, null).catch((e: unknown) => this.log.error({ workspace: w.name, err: toForkdError(e).message }, 'could not suspend a workspace at shutdown'));
    }
  }

  resume(name: string, by: Caller | null, changes: ResumeChanges = {}): Promise<WorkspaceRecord> {
    this.get(name, by);
    return this.exclusive(name, 'resume', () => this.resumeNow(name, by, changes));
  }

  private async resumeNow(name: string, by: Caller | null, changes: ResumeChanges): Promise<WorkspaceRecord> {
    const w = this.get(name, by);
    if (w.status !== 'suspended') throw new ForkdError('FORKD_E_CONFLICT', `workspace ${name} is already running`, { name });
    const network = changes.network ?? w.network ?? false;
    const egress = changes.egress ?? w.egress ?? null;
    const quotas = { ...(w.quotas ?? {}), ...(changes.quotas ?? {}) };
    const [live] = await this.sandboxes.spawn({ tag: w.state_tag ?? w.snapshot_tag, owner: ownerOf(w), n: 1, ids: [w.sandbox_id], workspace: name, cause: { kind: 'resume', from: w.state_tag ?? w.snapshot_tag }, metadata: w.metadata, envs: w.envs, quotas, ...(network ? { network: true } : {}), ...(egress ? { egress } : {}) });
    const next: WorkspaceRecord = { ...w, status: 'running', warning: null, network, egress, quotas: live!.rec.quotas ?? quotas };
    await this.put(next);
    this.events.emit({ owner: ownerOf(w), kind: 'resumed', sandbox_id: w.sandbox_id, snapshot_tag: w.state_tag ?? w.snapshot_tag, details: { workspace: name, spawn_to_ready_ms: live!.rec.timings?.spawn_to_ready_ms ?? null } }); // an event never fails a resume: a record without timings gives null
    return next;
  }

  /**
   * Deletes the workspace, its VM and its state snapshots, after the checks DELETE /v1/snapshots
   * makes (V4): refused while another sandbox runs from a state snapshot or one is being written
   * (a suspend in flight). A state layer someone built on stays, with its dependents.
   */
  remove(name: string, by: Caller | null): Promise<void> {
    this.get(name, by);
    return this.exclusive(name, 'delete', () => this.removeNow(name, by));
  }

  private async removeNow(name: string, by: Caller | null): Promise<void> {
    const w = this.get(name, by);
    const own = (await this.engine.listSnapshots()).map((e) => e.tag).filter((t) => isStateTag(name, t)).sort().reverse();
    if (this.suspending.has(w.sandbox_id)) throw new ForkdError('FORKD_E_IN_USE', `workspace ${name} is being suspended: delete it when that is done`, { name });
    assertDeletable(this.sandboxes, this.writes, { doomed: own, force: false, by, ignore: [w.sandbox_id] });
    if (w.status === 'running') await this.sandboxes.kill(w.sandbox_id, null, 'workspace_deleted').catch(() => undefined);
    for (const t of own) {
      await this.engine.removeSnapshot(t).then(() => this.owners.forget(t), (e: unknown) => this.log.warn({ workspace: name, tag: t, err: toForkdError(e).message }, 'kept a workspace state snapshot'));
    }
    await this.journal.delete(KIND, name);
  }

  private snapshotExists(tag: string): Promise<boolean> {
    return this.engine.getSnapshot(tag).then(() => true, (e: unknown) => !(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND'));
  }

  /** After MAX_LAYERS suspends stacked on each other, flatten them into one snapshot. */
  private async maybeCompact(name: string, tag: string, seq: number, owner: string): Promise<string> {
    const chain = await this.engine.ancestors(tag);
    const own = [...chain, tag].filter((t) => isStateTag(name, t));
    if (own.length < MAX_LAYERS) return tag;
    const flat = `${stateTag(name, seq)}c`;
    await this.writes.produce({ tag: flat, kind: 'compact', source: tag, owner, wait: true }, () => this.engine.compactSnapshot({ from: tag, to: flat }));
    for (const t of own.reverse()) {
      await this.engine.removeSnapshot(t).then(() => this.owners.forget(t)).catch((e: unknown) => this.log.warn({ workspace: name, tag: t, err: toForkdError(e).message }, 'kept an old workspace layer'));
    }
    return flat;
  }
}

function stateTag(name: string, seq: number): string {
  return `ws-${name}-s${String(seq).padStart(6, '0')}`;
}

/** Exactly this workspace's state tags (not those of a workspace whose name extends this one). */
function isStateTag(name: string, tag: string): boolean {
  const rest = tag.startsWith(`ws-${name}-s`) ? tag.slice(`ws-${name}-s`.length) : null;
  return rest !== null && /^\d{6}c?$/.test(rest);
}
