/**
 * Branch, fork, snapshot-diff and compact: each makes its snapshot through SnapshotWrites.produce
 * (tag reserved, run inline or as a job, released), as snapshot creation and workspace suspend do.
 */
import type { ProgressEvent } from '@forkd/engine';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { snapshotView, writingView } from './snapshots.js';
import { sandboxInfo } from './views.js';
import type { SandboxEntry } from '../sandboxes/registry.js';
import { assertCallerTag } from './tags.js';
import { captureSandbox, defaultTag, forkSandbox } from './fork.js';

type BranchRoutes = 'branch' | 'fork' | 'diffSnapshot' | 'compactSnapshot';

export function branchingHandlers(s: DaemonServices): Pick<Handlers, BranchRoutes> {
  const capture = (live: SandboxEntry, tag: string, mode: 'full' | 'live', progress: (ev: ProgressEvent) => void) => captureSandbox(s, live, tag, mode, progress);

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
      const out = await forkSandbox(s, live, {
        count: body.count,
        owner: caller.identity,
        ...(body.vary !== undefined ? { vary: body.vary } : {}),
        ...(body.seeds !== undefined ? { seeds: body.seeds } : {}),
        ...(body.mode !== undefined ? { mode: body.mode } : {}),
        ...(body.timeout_ms !== undefined ? { timeoutMs: body.timeout_ms } : {}),
        ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
      });
      const children = out.entries.map((e) => ({ id: e.rec.id, index: e.rec.variant!.index, values: e.rec.variant!.values, seed: e.rec.variant!.seed }));
      return { status: 201, body: { snapshot_tag: out.tag, pause_ms: out.pauseMs, fork_ms: out.forkMs, sandboxes: out.entries.map(sandboxInfo), children } };
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
