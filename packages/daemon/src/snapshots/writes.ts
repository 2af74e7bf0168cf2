/**
 * The one road by which the daemon makes a snapshot (create, branch, fork, diff, compact,
 * workspace suspend and its compaction): `produce` reserves the tag, so two writers cannot race
 * for it, runs the work inline or as a job, and releases the tag. While the work runs the tag is
 * listed as status "writing" (not bootable) and spawning from it is a 409.
 *
 * A write that fails in the background (wait=false: nobody is there to receive the error) stays
 * listed as status "failed", with the error, until its tag is written again or deleted. Failed
 * entries live in memory only (a restart forgets them; the job record keeps the error).
 */
import { ForkdError, toForkdError } from '@forkd/protocol';
import type { Engine, ProgressEvent } from '@forkd/engine';
import type { Jobs, JobT } from '../jobs.js';
import { CHILD_START_BYTES, type Admission, type Ask } from '../sandboxes/admission.js';
import type { Caller } from '../http/auth.js';
import { canSee } from '../tenancy/access.js';
import { notFound, type SnapshotOwners } from '../tenancy/snapshot-owners.js';
import { NO_EVENTS, type EventSink } from '../events/log.js';

export type WriteKind = 'create' | 'branch' | 'diff' | 'compact';

export interface Writing {
  tag: string;
  kind: WriteKind;
  /** The snapshot the new one derives from (null for creations from a recipe). */
  source: string | null;
  /** The sandbox captured (branches). */
  sandbox: string | null;
  job: string | null;
  since: number;
  status: 'writing' | 'failed';
  /** Why a background write failed (status "failed"). */
  error: string | null;
  /** The identity the snapshot will belong to. */
  owner: string;
}

export interface WriteRequest {
  tag: string;
  kind: WriteKind;
  source: string | null;
  sandbox?: string;
  /** The identity the snapshot will belong to (recorded once it is written). */
  owner: string;
  /** true: run now and answer with the result; false: run as a job and answer at once. */
  wait: boolean;
  /** A creation's guest memory (the other kinds take their source's). */
  memMib?: number;
  /** The tag may exist: the work replaces (or keeps) that snapshot (a template rebuild; the caller checked it may change it). */
  replace?: boolean;
}

export type Produced<T> = { waited: true; result: T } | { waited: false; job: JobT; writing: Writing };

const KEEP_FAILED = 100;

export class SnapshotWrites {
  private readonly writing = new Map<string, Writing>();
  /** snapshot_created, once a write is recorded with its owner. */
  events: EventSink = NO_EVENTS;

  constructor(private readonly engine: Engine, private readonly jobs: Jobs, private readonly admission: Admission, private readonly owners: SnapshotOwners) {}

  produce<T>(req: WriteRequest & { wait: true }, work: (progress: (ev: ProgressEvent) => void) => Promise<T>): Promise<{ waited: true; result: T }>;
  produce<T>(req: WriteRequest, work: (progress: (ev: ProgressEvent) => void) => Promise<T>): Promise<Produced<T>>;
  async produce<T>(req: WriteRequest, work: (progress: (ev: ProgressEvent) => void) => Promise<T>): Promise<Produced<T>> {
    // Admitted before anything is reserved or written: a refusal is the caller's answer, not a failed job.
    const ticket = await this.admission.admit(await this.ask(req));
    let w: Writing;
    try {
      w = await this.reserve(req);
    } catch (e) {
      ticket.release();
      throw e;
    }
    const guarded = async (progress: (ev: ProgressEvent) => void): Promise<T> => {
      try {
        const r = await work(progress);
        // Owned before it is answered for: until then it is the local admin's (invisible to users).
        await this.owners.record(await this.engine.getSnapshot(req.tag), req.owner);
        this.drop(w);
        this.events.emit({ owner: req.owner, kind: 'snapshot_created', sandbox_id: req.sandbox ?? null, snapshot_tag: req.tag, details: { how: req.kind, source: req.source } });
        return r;
      } catch (e) {
        if (req.wait) this.drop(w);
        else this.fail(w, e);
        throw e;
      } finally {
        ticket.release();
      }
    };
    // A creation boots a VM from scratch, so it always queues behind other heavy jobs (waited for
    // or not); captures start at once (the admission bounds them) since they pause a running sandbox.
    const queued = req.kind === 'create';
    if (req.wait && !queued) return { waited: true, result: await guarded(() => undefined) };
    let started;
    try {
      started = await this.jobs.start(`snapshot.${req.kind}`, req.owner, guarded, { exclusive: queued });
    } catch (e) {
      ticket.release();
      this.drop(w);
      throw e;
    }
    w.job = started.job.id;
    if (req.wait) return { waited: true, result: await started.done };
    return { waited: false, job: started.job, writing: w };
  }

  /**
   * What a write holds while it runs. Every write puts about a RAM image in the store (a layer is
   * sparse, but a guest may have dirtied all of it); creations and diffs boot a VM, a live branch
   * boots a receiver VM to prove its capture, and all but creations (queued one at a time) take a
   * capture slot.
   */
  private async ask(req: WriteRequest): Promise<Ask> {
    const memMib = req.memMib ?? (req.source ? (await this.engine.getSnapshot(req.source)).manifest.machine.mem_mib : 0);
    const image = memMib * 1024 * 1024;
    const what = req.kind === 'create' ? 'snapshot creation' : req.kind;
    switch (req.kind) {
      case 'create': return { what, vms: 1, memBytes: image, diskBytes: image };
      case 'branch': return { what, vms: 1, capture: true, memBytes: CHILD_START_BYTES, diskBytes: image };
      case 'diff': return { what, vms: 1, capture: true, memBytes: CHILD_START_BYTES, diskBytes: image };
      case 'compact': return { what, capture: true, diskBytes: image };
    }
  }

  private async reserve(req: WriteRequest): Promise<Writing> {
    const inFlight = (): void => {
      if (this.writing.get(req.tag)?.status === 'writing') throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `tag ${req.tag} is unavailable: a snapshot with it is being written (tags are shared by every identity; pick another)`, { tag: req.tag });
    };
    inFlight();
    const exists = await this.engine.getSnapshot(req.tag).then(() => true, (e: unknown) => !(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND'));
    // Tags are global across identities: the answer says the tag is taken, not whose it is.
    if (exists && !req.replace) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `tag ${req.tag} is unavailable: a snapshot with it exists (tags are shared by every identity; pick another)`, { tag: req.tag });
    inFlight();
    // Writing a tag again replaces a failed entry of it.
    const w: Writing = { tag: req.tag, kind: req.kind, source: req.source, sandbox: req.sandbox ?? null, job: null, since: Date.now(), status: 'writing', error: null, owner: req.owner };
    this.writing.delete(req.tag);
    this.writing.set(req.tag, w);
    return w;
  }

  private drop(w: Writing): void {
    if (this.writing.get(w.tag) === w) this.writing.delete(w.tag);
  }

  private fail(w: Writing, e: unknown): void {
    w.status = 'failed';
    w.error = toForkdError(e).message;
    const failed = this.list().filter((x) => x.status === 'failed');
    for (const old of failed.slice(0, Math.max(0, failed.length - KEEP_FAILED))) this.writing.delete(old.tag);
  }

  /** A write in flight or failed; with `by`, only one that caller may see. */
  get(tag: string, by: Caller | null = null): Writing | undefined {
    const w = this.writing.get(tag);
    return w && (!by || canSee(by, w.owner)) ? w : undefined;
  }

  /** Writes in flight and failed background writes, oldest first (with `by`: those that caller may see). */
  list(by: Caller | null = null): Writing[] {
    return [...this.writing.values()].filter((w) => !by || canSee(by, w.owner));
  }

  /** Drops a failed entry (DELETE of its tag) the caller may see; false when there is none. */
  forgetFailed(tag: string, by: Caller): boolean {
    return this.get(tag, by)?.status === 'failed' && this.writing.delete(tag);
  }

  /** A spawn from a tag still being written is a conflict, not a missing snapshot (for whom may see it). */
  assertNotWriting(tag: string, by: Caller | null): void {
    const w = this.writing.get(tag);
    if (w?.status === 'writing' && by && !canSee(by, w.owner)) throw notFound(tag);
    if (w?.status === 'writing') throw new ForkdError('FORKD_E_CONFLICT', `snapshot ${tag} is still being written${w.job ? ` (job ${w.job})` : ''}`, { tag, job: w.job });
  }
}

/** Bytes the snapshot store holds: every snapshot's files as allocated on disk. */
export async function storeBytes(engine: Engine): Promise<number> {
  let total = 0;
  for (const e of await engine.listSnapshots()) {
    const f = e.manifest.files;
    total += f.memory.physical_bytes + f.disk.physical_bytes + f.vmstate.bytes;
  }
  return total;
}
