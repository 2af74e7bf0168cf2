/** Branch, fork, snapshot-diff and compact: every new snapshot goes through SnapshotWrites. */
import crypto from 'node:crypto';
import type { ProgressEvent } from '@forkd/engine';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { snapshotView } from './snapshots.js';
import { sandboxInfo } from './views.js';
import type { JobKind } from '../jobs.js';
import type { Writing } from '../snapshots/writes.js';

type BranchRoutes = 'branch' | 'fork' | 'diffSnapshot' | 'compactSnapshot';

/** forkd's default tag shape: <kind>-<id>-<unix>-<seq4hex> (here with random hex). */
export function defaultTag(kind: string, id: string): string {
  return `${kind}-${id.slice(3, 11)}-${Math.floor(Date.now() / 1000)}-${crypto.randomBytes(2).toString('hex')}`;
}

export function branchingHandlers(s: DaemonServices): Pick<Handlers, BranchRoutes> {
  /** Reserves the tag, runs the work now (wait) or as a job (202), and releases the tag after. */
  async function write(w: Omit<Writing, 'since' | 'job'>, kind: JobKind, wait: boolean, okStatus: number, work: (progress: (ev: ProgressEvent) => void) => Promise<unknown>) {
    await s.writes.reserve(w);
    const guarded = async (progress: (ev: ProgressEvent) => void) => {
      try {
        return await work(progress);
      } finally {
        s.writes.release(w.tag);
      }
    };
    if (wait) return { status: okStatus, body: await guarded(() => undefined) };
    try {
      const { job } = await s.jobs.start(kind, guarded, { exclusive: false, describe: (v) => v });
      s.writes.setJob(w.tag, job.id);
      return { status: 202, body: job };
    } catch (e) {
      s.writes.release(w.tag);
      throw e;
    }
  }

  async function capture(id: string, tag: string, mode: 'full' | 'live', progress: (ev: ProgressEvent) => void) {
    const live = s.sandboxes.get(id);
    const r = await s.captures.run(() => s.engine.branch(live.sb, { tag, mode, onProgress: progress }));
    await s.sandboxes.update(live, { branch_count: live.rec.branch_count + 1 });
    if (r.liveCaptureFailed) s.log.warn({ sandbox: id, tag, cause: r.liveCaptureFailed }, 'a live capture did not restore; it was redone with the sandbox stopped');
    s.metrics.branchPause.observe({ mode: r.mode }, r.pauseMs / 1000);
    return r;
  }

  return {
    async branch({ params, body }) {
      const live = s.sandboxes.get(params.id);
      const tag = body.tag ?? defaultTag('branch', live.rec.id);
      const mode = body.mode === 'full' || body.mode === 'diff' ? 'full' : 'live';
      return write({ tag, kind: 'branch', source: live.rec.snapshot_tag }, 'snapshot.branch', body.wait !== false, 201, async (progress) => {
        await capture(params.id, tag, mode, progress);
        return snapshotView(await s.engine.getSnapshot(tag), 0);
      });
    },
    async fork({ params, body }) {
      const live = s.sandboxes.get(params.id);
      const tag = defaultTag('fork', live.rec.id);
      const r = await write({ tag, kind: 'branch', source: live.rec.snapshot_tag }, 'snapshot.branch', true, 201, (progress) => capture(params.id, tag, body.mode ?? 'live', progress));
      const { pauseMs } = r.body as { pauseMs: number };
      const kids = await s.sandboxes.spawn({
        tag,
        n: body.count,
        ...(body.timeout_ms !== undefined ? { timeoutMs: body.timeout_ms } : {}),
        metadata: { ...live.rec.metadata, ...(body.metadata ?? {}) },
        envs: live.rec.envs,
      }).catch(async (e: unknown) => {
        // All or nothing: without its children the fork's capture is an orphan.
        await s.engine.removeSnapshot(tag).catch(() => undefined);
        throw e;
      });
      return { status: 201, body: { snapshot_tag: tag, pause_ms: pauseMs, sandboxes: kids.map(sandboxInfo) } };
    },
    async diffSnapshot({ params, body }) {
      await s.engine.getSnapshot(params.tag);
      return write({ tag: body.to, kind: 'diff', source: params.tag }, 'snapshot.diff', body.wait !== false, 201, async (progress) => {
        await s.engine.diffSnapshot({ from: params.tag, to: body.to, cmd: body.cmd, timeoutMs: Math.round(body.timeout_secs * 1000), onProgress: progress });
        return snapshotView(await s.engine.getSnapshot(body.to), 0);
      });
    },
    async compactSnapshot({ params, body }) {
      await s.engine.getSnapshot(params.tag);
      return write({ tag: body.to, kind: 'compact', source: params.tag }, 'snapshot.compact', body.wait !== false, 200, async (progress) => {
        await s.engine.compactSnapshot({ from: params.tag, to: body.to, onProgress: progress });
        return snapshotView(await s.engine.getSnapshot(body.to), 0);
      });
    },
  };
}
