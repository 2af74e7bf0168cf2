/**
 * Long-running operations as jobs: queued, run one heavy job at a time (a boot or a capture
 * saturates this host's cores), progress readable while they run, results kept after. Job
 * records are journaled: a job that was running when the daemon died is reported failed.
 */
import crypto from 'node:crypto';
import type { z } from 'zod';
import { ForkdError, LIMITS, LOCAL_IDENTITY, toForkdError, type ForkdErrorBody } from '@forkd/protocol';
import type { Caller } from './http/auth.js';
import { canSee } from './tenancy/access.js';
import type { Job } from '@forkd/api';
import type { Journal } from './state/journal.js';
import type { ProgressEvent } from '@forkd/engine';

export type JobT = z.output<typeof Job>;
export type JobKind = JobT['kind'];
const KEEP_FINISHED = 200;
const KIND = 'job';

export class Jobs {
  private readonly jobs = new Map<string, JobT>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly journal: Journal) {
    for (const j of journal.all<JobT>(KIND)) {
      j.owner ??= LOCAL_IDENTITY; // journaled before tenancy
      if (j.status === 'queued' || j.status === 'running') {
        j.status = 'failed';
        j.finished_at_unix = Math.floor(Date.now() / 1000);
        j.error = { code: 'FORKD_E_UNAVAILABLE', message: 'interrupted: the daemon restarted while this job ran' };
        journal.put(KIND, j.id, j).catch(() => undefined); // kept in memory; the next start marks it again
      }
      this.jobs.set(j.id, j);
    }
  }

  /** A job; another identity's is answered as a missing one. null: the daemon itself. */
  get(id: string, by: Caller | null = null): JobT {
    const j = this.jobs.get(id);
    if (!j || (by && !canSee(by, j.owner))) throw new ForkdError('FORKD_E_JOB_NOT_FOUND', `no job ${id}`, { id });
    return j;
  }

  get active(): JobT[] {
    return [...this.jobs.values()].filter((j) => j.status === 'queued' || j.status === 'running');
  }

  /**
   * Queues work; resolves with the acknowledged job record. `result()` of the returned handle
   * settles when the work does. exclusive=false runs at once instead of queueing.
   */
  async start<T>(kind: JobKind, owner: string, work: (progress: (ev: ProgressEvent) => void) => Promise<T>, opts: { exclusive?: boolean } = {}): Promise<{ job: JobT; done: Promise<T> }> {
    const job: JobT = {
      id: `job-${crypto.randomBytes(8).toString('hex')}`,
      kind,
      status: 'queued',
      created_at_unix: Math.floor(Date.now() / 1000),
      finished_at_unix: null,
      progress: { phase: 'queued', message: 'waiting for earlier jobs', fraction: null },
      result: null,
      error: null,
      owner,
    };
    this.jobs.set(job.id, job);
    await this.journal.put(KIND, job.id, job);
    const run = async (): Promise<T> => {
      job.status = 'running';
      job.progress = { phase: 'starting', message: '', fraction: null };
      try {
        const r = await work((ev) => {
          job.progress = { phase: ev.phase, message: ev.message, fraction: ev.fraction ?? null };
        });
        job.status = 'succeeded';
        job.result = r as unknown;
        job.progress = { ...job.progress, fraction: 1 };
        return r;
      } catch (e) {
        job.status = 'failed';
        job.error = recordedError(e);
        throw e;
      } finally {
        job.finished_at_unix = Math.floor(Date.now() / 1000);
        await this.journal.put(KIND, job.id, job).catch(() => undefined);
        this.prune();
      }
    };
    const done = opts.exclusive === false ? run() : (this.chain = this.chain.then(run, run)) as Promise<T>;
    done.catch(() => undefined);
    return { job, done };
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finished_at_unix !== null).sort((a, b) => a.finished_at_unix! - b.finished_at_unix!);
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) {
      this.jobs.delete(j.id);
      void this.journal.delete(KIND, j.id).catch(() => undefined);
    }
  }
}

/** A failed job's error as journaled and kept: a bounded message, and details only when small. */
function recordedError(e: unknown): ForkdErrorBody {
  const { code, message, details } = toForkdError(e).toJSON();
  const max = LIMITS.maxErrorMessageChars;
  const body: ForkdErrorBody = { code, message: message.length > max ? `${message.slice(0, max)}… (cut)` : message };
  if (details !== undefined && JSON.stringify(details).length <= max) body.details = details;
  return body;
}
