/**
 * Branch, fork, snapshot-diff and compact: each makes its snapshot through SnapshotWrites.produce
 * (tag reserved, run inline or as a job, released), as snapshot creation and workspace suspend do.
 */
import crypto from 'node:crypto';
import type { ProgressEvent } from '@forkd/engine';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { snapshotView, writingView } from './snapshots.js';
import { sandboxInfo } from './views.js';
import type { SandboxEntry } from '../sandboxes/registry.js';
import { assertCallerTag } from './tags.js';
import { ownerOf } from '../tenancy/access.js';

type BranchRoutes = 'branch' | 'fork' | 'diffSnapshot' | 'compactSnapshot';

/** forkd's default tag shape: <kind>-<id>-<unix>-<seq4hex> (here with random hex). */
export function defaultTag(kind: string, id: string): string {
  return `${kind}-${id.slice(3, 11)}-${Math.floor(Date.now() / 1000)}-${crypto.randomBytes(2).toString('hex')}`;
}

export function branchingHandlers(s: DaemonServices): Pick<Handlers, BranchRoutes> {
  async function capture(live: SandboxEntry, tag: string, mode: 'full' | 'live', progress: (ev: ProgressEvent) => void) {
    const r = await s.engine.branch(live.sb, { tag, mode, onProgress: progress }); // admitted by s.writes.produce
    await s.sandboxes.update(live, { branch_count: live.rec.branch_count + 1 });
    if (r.liveCaptureFailed) s.log.warn({ sandbox: live.rec.id, tag, cause: r.liveCaptureFailed }, 'a live capture did not restore; it was redone with the sandbox stopped');
    s.metrics.branchPause.observe({ mode: r.mode }, r.pauseMs / 1000);
    s.events.emit({ owner: ownerOf(live.rec), kind: 'branched', sandbox_id: live.rec.id, snapshot_tag: tag, details: { source_snapshot: live.rec.snapshot_tag, mode: r.mode, pause_ms: r.pauseMs } });
    return r;
  }

  return {
    async branch({ params, body, caller }) {
      const live = s.sandboxes.get(params.id, caller);
      const tag = body.tag !== undefined ? assertCallerTag(body.tag) : defaultTag('branch', live.rec.id);
      const mode = body.mode === 'full' || body.mode === 'diff' ? 'full' : 'live';
      const wait = body.wait !== false;
      // The 202 answer is shaped like the source; read it before anything is reserved.
      const source = wait ? null : await s.engine.getSnapshot(live.rec.snapshot_tag);
      const r = await s.writes.produce({ tag, kind: 'branch', source: live.rec.snapshot_tag, sandbox: live.rec.id, owner: caller.identity, wait }, async (progress) => snapshotView((await capture(live, tag, mode, progress)).snapshot, 0, { owner: caller.identity, shared: false }));
      if (r.waited) return { status: 201, body: r.result };
      return { status: 202, body: { ...writingView(r.writing, source!), job_id: r.job.id } };
    },
    async fork({ params, body, caller }) {
      const live = s.sandboxes.get(params.id, caller);
      s.admission.assertSatisfiable(body.count); // before the capture: a count that never fits is a 400
      const tag = defaultTag('fork', live.rec.id);
      const r = await s.writes.produce({ tag, kind: 'branch', source: live.rec.snapshot_tag, sandbox: live.rec.id, owner: caller.identity, wait: true }, (progress) => capture(live, tag, body.mode ?? 'live', progress));
      const kids = await s.sandboxes.spawn({
        tag,
        owner: caller.identity,
        n: body.count,
        ...(body.timeout_ms !== undefined ? { timeoutMs: body.timeout_ms } : {}),
        metadata: { ...live.rec.metadata, ...(body.metadata ?? {}) },
        envs: live.rec.envs,
        cause: { kind: 'fork', from: live.rec.id },
      }).catch(async (e: unknown) => {
        // All or nothing: without its children the fork's capture is an orphan.
        await s.engine.removeSnapshot(tag).then(() => s.owners.forget(tag)).catch(() => undefined);
        throw e;
      });
      s.events.emit({ owner: ownerOf(live.rec), kind: 'forked', sandbox_id: live.rec.id, snapshot_tag: tag, details: { children: kids.map((k) => k.rec.id), pause_ms: r.result.pauseMs } });
      return { status: 201, body: { snapshot_tag: tag, pause_ms: r.result.pauseMs, sandboxes: kids.map(sandboxInfo) } };
    },
    async diffSnapshot({ params, body, caller }) {
      assertCallerTag(body.to);
      s.owners.assertVisible(caller, await s.engine.getSnapshot(params.tag));
      const r = await s.writes.produce({ tag: body.to, kind: 'diff', source: params.tag, owner: caller.identity, wait: body.wait !== false }, async (progress) => {
        const made = await s.engine.diffSnapshot({ from: params.tag, to: body.to, cmd: body.cmd, timeoutMs: Math.round(body.timeout_secs * 1000), onProgress: progress });
        return snapshotView(made, 0, { owner: caller.identity, shared: false });
      });
      return r.waited ? { status: 201, body: r.result } : { status: 202, body: r.job };
    },
    async compactSnapshot({ params, body, caller }) {
      assertCallerTag(body.to);
      s.owners.assertVisible(caller, await s.engine.getSnapshot(params.tag));
      const r = await s.writes.produce({ tag: body.to, kind: 'compact', source: params.tag, owner: caller.identity, wait: body.wait !== false }, async (progress) => {
        const made = await s.engine.compactSnapshot({ from: params.tag, to: body.to, onProgress: progress });
        return snapshotView(made, 0, { owner: caller.identity, shared: false });
      });
      return r.waited ? { status: 200, body: r.result } : { status: 202, body: r.job };
    },
  };
}
