/**
 * Fork with variations, from outside (POST /v1/sandboxes/:id/fork) and from inside (a guest's
 * forkd.fork(), reported by the engine's watch): one capture of the running sandbox, then count
 * children from it, child i given its values and seed before it answers. The guest path checks
 * the sandbox's allow_guest_fork (count and depth) first; both count against the daemon's limits
 * through the same admission as any spawn.
 */
import crypto from 'node:crypto';
import { ForkdError, expandVary, type VaryT, type VaryValuesT } from '@forkd/protocol';
import { watchGuestForks, type ChildVariant, type Engine, type GuestForkHandler, type ProgressEvent } from '@forkd/engine';
import type { DaemonServices } from './context.js';
import type { SandboxEntry } from '../sandboxes/registry.js';
import { ownerOf } from '../tenancy/access.js';

/** forkd's default tag shape: <kind>-<id>-<unix>-<seq4hex> (here with random hex). */
export function defaultTag(kind: string, id: string): string {
  return `${kind}-${id.slice(3, 11)}-${Math.floor(Date.now() / 1000)}-${crypto.randomBytes(2).toString('hex')}`;
}

/** Captures a running sandbox as snapshot `tag` (admitted by the caller's s.writes.produce). */
export async function captureSandbox(s: DaemonServices, live: SandboxEntry, tag: string, mode: 'full' | 'live', progress: (ev: ProgressEvent) => void): Promise<Awaited<ReturnType<Engine['branch']>>> {
  const r = await s.engine.branch(live.sb, { tag, mode, onProgress: progress });
  await s.sandboxes.update(live, { branch_count: live.rec.branch_count + 1 });
  if (r.liveCaptureFailed) s.log.warn({ sandbox: live.rec.id, tag, cause: r.liveCaptureFailed }, 'a live capture did not restore; it was redone with the sandbox stopped');
  s.metrics.branchPause.observe({ mode: r.mode }, r.pauseMs / 1000);
  s.events.emit({ owner: ownerOf(live.rec), kind: 'branched', sandbox_id: live.rec.id, snapshot_tag: tag, details: { source_snapshot: live.rec.snapshot_tag, mode: r.mode, pause_ms: r.pauseMs } });
  return r;
}

/**
 * Runs `attempt` again while the daemon refuses it for capacity (captures or starts in flight) and
 * the deadline allows: a guest blocked in forkd.fork() waits for a slot rather than getting a
 * refusal it would have to retry itself (a beam's forks arrive together). Nothing has been
 * captured when those refusals come, so a retry forks the same instant of the caller.
 */
export async function retryWhileBusy<T>(attempt: () => Promise<T>, waitMs: number, sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms))): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await attempt();
    } catch (e) {
      const busy = e instanceof ForkdError && (e.code === 'FORKD_E_CAPACITY' || e.code === 'FORKD_E_RATE_LIMITED');
      if (!busy || Date.now() + delay > deadline) throw e;
      await sleep(delay);
    }
  }
}

export interface ForkRequest {
  count: number;
  owner: string;
  vary?: VaryT;
  seeds?: number[];
  mode?: 'full' | 'live';
  timeoutMs?: number;
  metadata?: Record<string, string>;
  /** A guest's forkd.fork(): the request its callers wait in (each child answers it as its own). */
  guestForkRequestId?: string;
  /** How long to wait for a capture slot when the daemon is busy (0: refuse at once, as REST does). */
  waitForCapacityMs?: number;
}

export interface ForkOutcome {
  tag: string;
  pauseMs: number;
  /** Request to every child ready with its values. */
  forkMs: number;
  entries: SandboxEntry[];
}

/** Each of n children's values and seed (seeds given, or fresh host randomness), checked against n. */
export function childVariants(n: number, vary: VaryT | undefined, seeds: number[] | undefined, guest: { requestId?: string; watch?: boolean } = {}): ChildVariant[] {
  const values: VaryValuesT[] = expandVary(vary, n);
  if (seeds !== undefined && seeds.length !== n) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `seeds lists ${seeds.length} seeds but there are ${n} children`, { seeds: seeds.length, count: n });
  return values.map((v, i) => ({ values: v, seed: seeds?.[i] ?? crypto.randomInt(0, 2 ** 32), ...(guest.requestId ? { guestForkRequestId: guest.requestId } : {}), ...(guest.watch ? { watchGuestForks: true } : {}) }));
}

export async function forkSandbox(s: DaemonServices, live: SandboxEntry, req: ForkRequest): Promise<ForkOutcome> {
  const t0 = performance.now();
  // Before anything is captured: a bad vary is a 400. Children of a sandbox allowed to fork itself are watched too.
  const variants = childVariants(req.count, req.vary, req.seeds, { ...(req.guestForkRequestId ? { requestId: req.guestForkRequestId } : {}), watch: Boolean(live.rec.guest_fork) });
  s.admission.assertSatisfiable(req.count); // before the capture: a count that never fits is a 400
  const tag = defaultTag('fork', live.rec.id);
  const r = await retryWhileBusy(() => s.writes.produce({ tag, kind: 'branch', source: live.rec.snapshot_tag, sandbox: live.rec.id, owner: req.owner, wait: true }, (progress) => captureSandbox(s, live, tag, req.mode ?? 'live', progress)), req.waitForCapacityMs ?? 0);
  const parentFork = live.rec.guest_fork ?? null;
  const entries = await s.sandboxes.spawn({
    tag,
    owner: req.owner,
    n: req.count,
    ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
    metadata: { ...live.rec.metadata, ...(req.metadata ?? {}) },
    envs: live.rec.envs,
    variants,
    cause: { kind: 'fork', from: live.rec.id },
    // Children keep the permission; a guest fork's children are one generation deeper.
    guestFork: parentFork ? { ...parentFork, depth: parentFork.depth + (req.guestForkRequestId ? 1 : 0) } : null,
  }).catch(async (e: unknown) => {
    // All or nothing: without its children the fork's capture is an orphan.
    await s.engine.removeSnapshot(tag).then(() => s.owners.forget(tag)).catch(() => undefined);
    throw e;
  });
  s.events.emit({ owner: ownerOf(live.rec), kind: 'forked', sandbox_id: live.rec.id, snapshot_tag: tag, details: { children: entries.map((k) => k.rec.id), pause_ms: r.result.pauseMs, ...(req.guestForkRequestId ? { from_guest: true } : {}) } });
  return { tag, pauseMs: r.result.pauseMs, forkMs: Math.round((performance.now() - t0) * 10) / 10, entries };
}

/**
 * The daemon's side of a guest's fork: the permission and limits of the sandbox it came from, then
 * a fork. A guest fork is captured stopped (full): the caller is blocked in the call anyway, and a
 * full capture needs no probe restore before the children start.
 */
/** A guest fork waits this long for a capture slot before the guest gets FORKD_E_CAPACITY. */
const GUEST_FORK_CAPACITY_WAIT_MS = 120_000;

export function guestForkHandler(s: DaemonServices): GuestForkHandler {
  return async (sb, req) => {
    const live = s.sandboxes.get(sb.id, null);
    const allowed = live.rec.guest_fork;
    if (!allowed) throw new ForkdError('FORKD_E_GUEST_FORK_DENIED', `sandbox ${sb.id} may not fork itself: create it with allow_guest_fork`);
    if (req.count > allowed.max_count) {
      throw new ForkdError('FORKD_E_GUEST_FORK_LIMIT', `fork(${req.count}) asks for more children than allow_guest_fork.max_count (${allowed.max_count})`, { count: req.count, max_count: allowed.max_count });
    }
    if (allowed.depth >= allowed.max_depth) {
      throw new ForkdError('FORKD_E_GUEST_FORK_LIMIT', `this sandbox is ${allowed.depth} guest forks deep; allow_guest_fork.max_depth is ${allowed.max_depth}`, { depth: allowed.depth, max_depth: allowed.max_depth });
    }
    const out = await forkSandbox(s, live, { count: req.count, owner: ownerOf(live.rec), vary: req.vary, mode: 'full', guestForkRequestId: req.requestId, waitForCapacityMs: GUEST_FORK_CAPACITY_WAIT_MS });
    s.log.info({ sandbox: sb.id, children: out.entries.map((e) => e.rec.id), pause_ms: out.pauseMs, fork_ms: out.forkMs }, 'guest fork');
    return { children: out.entries.map((e) => e.rec.id), pauseMs: out.pauseMs };
  };
}

/** Watches every sandbox allowed to fork itself, from now on and those already tracked (adopted after a restart). */
export function watchGuestForkSandboxes(s: DaemonServices): void {
  const handler = guestForkHandler(s);
  const watch = (entry: SandboxEntry): void => {
    if (!entry.rec.guest_fork) return;
    const w = watchGuestForks(entry.sb, handler, (d) => {
      if (d.error) s.log.info({ sandbox: entry.rec.id, code: d.error.code, err: d.error.message }, 'guest fork refused or failed');
    });
    void entry.sb.exited.then(() => w.stop());
  };
  s.sandboxes.onTracked = watch;
  for (const entry of s.sandboxes.list()) watch(entry);
}
