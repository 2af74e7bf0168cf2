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
import type { SnapshotWrites } from '../snapshots/writes.js';

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
  /** Its sandbox has its own network (kept on resume). Absent in older records: false. */
  network?: boolean;
}

const KIND = 'workspace';
const MAX_LAYERS = 3;

export class Workspaces {
  constructor(
    private readonly engine: Engine,
    private readonly journal: Journal,
    private readonly sandboxes: SandboxRegistry,
    private readonly writes: SnapshotWrites,
    private readonly log: Logger,
  ) {}

  /** After a restart: a running workspace whose VM is gone falls back to its last saved state. */
  async reconcile(): Promise<void> {
    for (const w of this.journal.all<WorkspaceRecord>(KIND)) {
      if (w.status !== 'running' || this.sandboxes.list().some((l) => l.rec.id === w.sandbox_id)) continue;
      await this.put({ ...w, status: 'suspended', warning: `its VM was lost; resume restores ${w.state_tag ? `the state saved at the last suspend (${w.state_tag})` : `a fresh sandbox from ${w.snapshot_tag}`}` });
    }
  }

  list(): WorkspaceRecord[] {
    return this.journal.all<WorkspaceRecord>(KIND).sort((a, b) => a.created_at_unix - b.created_at_unix || a.name.localeCompare(b.name));
  }

  get(name: string): WorkspaceRecord {
    const w = this.journal.get<WorkspaceRecord>(KIND, name);
    if (!w) throw new ForkdError('FORKD_E_WORKSPACE_NOT_FOUND', `no workspace ${name}`, { name });
    return w;
  }

  private put(w: WorkspaceRecord): Promise<void> {
    return this.journal.put(KIND, w.name, w);
  }

  /** Names being created: reserved before the spawn, so two creates of one name cannot both start a VM. */
  private readonly creating = new Set<string>();

  async create(b: { name: string; snapshot_tag?: string; sandbox_id?: string; metadata?: Record<string, string>; envs?: Record<string, string>; network?: boolean }): Promise<WorkspaceRecord> {
    if (this.journal.get(KIND, b.name) || this.creating.has(b.name)) throw new ForkdError('FORKD_E_WORKSPACE_EXISTS', `workspace ${b.name} already exists`, { name: b.name });
    this.creating.add(b.name);
    try {
      return await this.createReserved(b);
    } finally {
      this.creating.delete(b.name);
    }
  }

  private async createReserved(b: { name: string; snapshot_tag?: string; sandbox_id?: string; metadata?: Record<string, string>; envs?: Record<string, string>; network?: boolean }): Promise<WorkspaceRecord> {
    let live;
    if (b.sandbox_id) {
      live = this.sandboxes.get(b.sandbox_id);
      if (live.rec.workspace) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${b.sandbox_id} already belongs to workspace ${live.rec.workspace}`);
      await this.sandboxes.update(live, { workspace: b.name, ...(b.metadata ? { metadata: { ...live.rec.metadata, ...b.metadata } } : {}) });
      await this.sandboxes.setTimeout(live.rec.id, null); // a workspace lives until deleted
    } else {
      [live] = await this.sandboxes.spawn({ tag: b.snapshot_tag!, n: 1, workspace: b.name, ...(b.metadata ? { metadata: b.metadata } : {}), ...(b.envs ? { envs: b.envs } : {}), ...(b.network ? { network: true } : {}) });
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
      network: live!.rec.network ?? false,
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

  async suspend(name: string): Promise<WorkspaceRecord> {
    const w = this.get(name);
    if (w.status !== 'running') throw new ForkdError('FORKD_E_CONFLICT', `workspace ${name} is not running (it is ${w.status})`, { name });
    const live = this.sandboxes.get(w.sandbox_id);
    // The sequence number is spent before the capture: a crash after it leaves a layer under a tag
    // that is never tried again (it is removed with the workspace), so the suspend can be retried.
    let seq = w.seq + 1;
    while ((await this.snapshotExists(stateTag(name, seq))) || (await this.snapshotExists(`${stateTag(name, seq)}c`))) seq++;
    await this.put({ ...w, seq });
    let tag = stateTag(name, seq);
    await this.writes.produce({ tag, kind: 'branch', source: live.rec.snapshot_tag, sandbox: live.rec.id, wait: true }, () => this.engine.branch(live.sb, { tag, mode: 'full' }));
    this.suspending.add(live.rec.id);
    try {
      await this.sandboxes.kill(live.rec.id);
    } finally {
      this.suspending.delete(live.rec.id);
    }
    tag = await this.maybeCompact(name, tag, seq);
    const next: WorkspaceRecord = { ...w, status: 'suspended', state_tag: tag, suspended_at_unix: Math.floor(Date.now() / 1000), seq, warning: null };
    await this.put(next);
    return next;
  }

  /** At a graceful stop that ends the VMs: each running workspace is suspended (a failure is logged; it is then reported lost at the next start). */
  async suspendAll(): Promise<void> {
    for (const w of this.list().filter((x) => x.status === 'running')) {
      await this.suspend(w.name).catch((e: unknown) => this.log.error({ workspace: w.name, err: toForkdError(e).message }, 'could not suspend a workspace at shutdown'));
    }
  }

  async resume(name: string): Promise<WorkspaceRecord> {
    const w = this.get(name);
    if (w.status !== 'suspended') throw new ForkdError('FORKD_E_CONFLICT', `workspace ${name} is already running`, { name });
    await this.sandboxes.spawn({ tag: w.state_tag ?? w.snapshot_tag, n: 1, ids: [w.sandbox_id], workspace: name, metadata: w.metadata, envs: w.envs, ...(w.network ? { network: true } : {}) });
    const next: WorkspaceRecord = { ...w, status: 'running', warning: null };
    await this.put(next);
    return next;
  }

  async remove(name: string): Promise<void> {
    const w = this.get(name);
    if (w.status === 'running') await this.sandboxes.kill(w.sandbox_id).catch(() => undefined);
    // Its state layers, newest first; one someone else built on stays (with its dependents).
    const own = (await this.engine.listSnapshots()).map((e) => e.tag).filter((t) => isStateTag(name, t)).sort().reverse();
    for (const t of own) {
      await this.engine.removeSnapshot(t).catch((e: unknown) => this.log.warn({ workspace: name, tag: t, err: toForkdError(e).message }, 'kept a workspace state snapshot'));
    }
    await this.journal.delete(KIND, name);
  }

  private snapshotExists(tag: string): Promise<boolean> {
    return this.engine.getSnapshot(tag).then(() => true, (e: unknown) => !(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND'));
  }

  /** After MAX_LAYERS suspends stacked on each other, flatten them into one snapshot. */
  private async maybeCompact(name: string, tag: string, seq: number): Promise<string> {
    const chain = await this.engine.ancestors(tag);
    const own = [...chain, tag].filter((t) => isStateTag(name, t));
    if (own.length < MAX_LAYERS) return tag;
    const flat = `${stateTag(name, seq)}c`;
    await this.writes.produce({ tag: flat, kind: 'compact', source: tag, wait: true }, () => this.engine.compactSnapshot({ from: tag, to: flat }));
    for (const t of own.reverse()) {
      await this.engine.removeSnapshot(t).catch((e: unknown) => this.log.warn({ workspace: name, tag: t, err: toForkdError(e).message }, 'kept an old workspace layer'));
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
