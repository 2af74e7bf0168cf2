/**
 * Snapshot tags being written (creation, branch, diff, compact): reserved so two writers cannot
 * race for a tag, listed as status "writing" (not bootable), refused for spawning with a 409.
 */
import { ForkdError } from '@forkd/protocol';
import type { Engine } from '@forkd/engine';

export interface Writing {
  tag: string;
  kind: 'create' | 'branch' | 'diff' | 'compact';
  /** The snapshot the new one derives from (null for creations from a recipe). */
  source: string | null;
  job: string | null;
  since: number;
}

export class SnapshotWrites {
  private readonly writing = new Map<string, Writing>();

  constructor(private readonly engine: Engine) {}

  async reserve(w: Omit<Writing, 'since' | 'job'>): Promise<void> {
    if (this.writing.has(w.tag)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${w.tag} is being written right now`, { tag: w.tag });
    const exists = await this.engine.getSnapshot(w.tag).then(() => true, (e: unknown) => !(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND'));
    if (exists) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${w.tag} already exists`, { tag: w.tag });
    if (this.writing.has(w.tag)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${w.tag} is being written right now`, { tag: w.tag });
    this.writing.set(w.tag, { ...w, job: null, since: Date.now() });
  }

  setJob(tag: string, job: string): void {
    const w = this.writing.get(tag);
    if (w) w.job = job;
  }

  release(tag: string): void {
    this.writing.delete(tag);
  }

  get(tag: string): Writing | undefined {
    return this.writing.get(tag);
  }

  list(): Writing[] {
    return [...this.writing.values()];
  }

  /** A spawn from a tag still being written is a conflict, not a missing snapshot. */
  assertNotWriting(tag: string): void {
    const w = this.writing.get(tag);
    if (w) throw new ForkdError('FORKD_E_CONFLICT', `snapshot ${tag} is still being written${w.job ? ` (job ${w.job})` : ''}`, { tag, job: w.job });
  }
}

/** Runs at most `max` captures at once; beyond that a clear 503 rather than a queue of paused VMs. */
export class CaptureSlots {
  private used = 0;
  constructor(readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.max) throw new ForkdError('FORKD_E_CAPACITY', `at most ${this.max} branches run at once; retry shortly`, { max: this.max });
    this.used++;
    try {
      return await fn();
    } finally {
      this.used--;
    }
  }
}
