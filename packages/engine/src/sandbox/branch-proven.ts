/**
 * A live branch is proven before it is handed out: one child is restored from it and must answer.
 * Under TCG, QEMU 7.2's live pre-copy has lost guest writes now and then (a snapshot whose children
 * reset at restore), while stopped (full) captures never did (bench/README.md#live-branch-restore-probe).
 * When the probe child does not come up, the snapshot is removed and the capture is redone
 * stopped; the result says so. FORKD_BRANCH_CHECK=off skips the probe.
 */
import { toForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import type { Platform } from '../platform.js';
import { noProgress } from '../progress.js';
import { branchSourceOf, type Sandbox } from './sandbox.js';
import { spawnChildren } from './spawn.js';
import { branchSandbox, type BranchOptions, type BranchResult } from '../snapshot/branch.js';
import { SnapshotCatalog } from '../snapshot/catalog.js';

export interface ProvenBranchResult extends BranchResult {
  /** The mode of the capture that was kept (full when a live capture failed its probe). */
  mode: BranchOptions['mode'];
  /** Why a live capture was replaced, when it was. */
  liveCaptureFailed: string | null;
}

export async function branchProven(
  layout: HomeLayout,
  platform: Platform,
  sb: Sandbox,
  opts: BranchOptions,
  /** Restores one child from the capture and throws if it does not answer (tests pass their own). */
  probe: (tag: string) => Promise<void> = (tag) => probeRestore(layout, platform, tag, opts),
): Promise<ProvenBranchResult> {
  const onProgress = opts.onProgress ?? noProgress;
  const source = branchSourceOf(sb);
  const r = await branchSandbox(layout, source, opts);
  if (opts.mode !== 'live' || process.env.FORKD_BRANCH_CHECK === 'off') return { ...r, mode: opts.mode, liveCaptureFailed: null };
  onProgress({ phase: 'branch', message: 'checking the capture: restoring one child from it' });
  try {
    await probe(opts.tag);
    return { ...r, mode: 'live', liveCaptureFailed: null };
  } catch (e) {
    const why = toForkdError(e).message;
    onProgress({ phase: 'branch', message: `the live capture did not restore (${why}); capturing again with the sandbox stopped` });
    await new SnapshotCatalog(layout).remove(opts.tag);
    const again = await branchSandbox(layout, source, { ...opts, mode: 'full' });
    return { ...again, mode: 'full', liveCaptureFailed: why };
  }
}

async function probeRestore(layout: HomeLayout, platform: Platform, tag: string, opts: BranchOptions): Promise<void> {
  const [child] = await spawnChildren(layout, platform, { tag, n: 1, readyTimeoutMs: 30_000, ...(opts.starter ? { starter: opts.starter } : {}) });
  await child!.kill();
}
