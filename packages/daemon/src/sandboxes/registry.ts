/**
 * The sandboxes owned by the daemon. Every sandbox is journaled before it is acknowledged and
 * removed from the journal when it ends, so after a crash the daemon knows exactly which VMs it
 * owned: those the keeper still holds are adopted (agent reconnected), the rest are reaped.
 */
import type { Logger } from 'pino';
import { ForkdError, toForkdError } from '@forkd/protocol';
import type { ChildVariant, Engine, KeeperVmT, Sandbox, SandboxTimings } from '@forkd/engine';
import type { AllowGuestForkT, VaryValuesT } from '@forkd/protocol';
import type { Journal } from '../state/journal.js';
import type { Metrics } from '../metrics.js';
import type { Admission } from './admission.js';
import { NO_QUOTA_POLICY, engineQuotas, resolveQuotas, type QuotaPolicy, type QuotaValues } from '../quotas/policy.js';
import { egressRequest, type EgressRecord } from './egress.js';
import type { Caller } from '../http/auth.js';
import { canSee, ownerOf } from '../tenancy/access.js';

export interface SandboxRecord {
  id: string;
  snapshot_tag: string;
  pid: number;
  dir: string;
  language: 'python' | 'js';
  timings: SandboxTimings;
  created_at_unix: number;
  expires_at_unix_ms: number | null;
  metadata: Record<string, string>;
  envs: Record<string, string>;
  branch_count: number;
  workspace: string | null;
  /** The limits it runs with (wire names); absent in records of older daemons. */
  quotas?: QuotaValues;
  /** The egress policy asked for (absent in records journaled before egress existed). */
  egress?: EgressRecord | null;
  /** The identity that spawned it (absent in records from before tenancy: the local admin's). */
  owner?: string;
  /** Spawned with its own way out (absent in records of older daemons: false). */
  network?: boolean;
  /** May its guest fork itself, and how many guest forks deep it is (absent or null: not allowed). */
  guest_fork?: GuestForkPermission | null;
  /** A fork child's index, values and seed (absent or null: not a fork child). */
  variant?: { index: number; values: VaryValuesT; seed: number } | null;
}

/** allow_guest_fork as a sandbox carries it down its lineage: depth counts the guest forks above it. */
export type GuestForkPermission = AllowGuestForkT & { depth: number };

/** A sandbox the daemon owns: its journaled record, the engine's sandbox, and the daemon's bookkeeping. */
export class SandboxEntry {
  inflight = 0;
  timer: NodeJS.Timeout | null = null;
  ending = false;
  /** Set when it ended on its own ('oom': killed by its memory limit). */
  endReason: 'oom' | 'exited' | null = null;
  constructor(public rec: SandboxRecord, readonly sb: Sandbox) {}
}

export interface RegistryLimits {
  maxCallsPerSandbox: number;
  /** Operator defaults and maxima of per-sandbox limits. */
  quotas?: QuotaPolicy;
}

/** Sandboxes that ended on their own stay visible (GET) this long, so callers learn why. */
const ENDED_KEEP_MS = 10 * 60 * 1000;
const ENDED_KEEP_MAX = 1024;

export interface SpawnRequest {
  tag: string;
  /** The identity the new sandboxes belong to. */
  owner: string;
  n: number;
  timeoutMs?: number;
  metadata?: Record<string, string>;
  envs?: Record<string, string>;
  egress?: EgressRecord | null;
  workspace?: string | null;
  /** Fixed sandbox ids (a resumed workspace keeps its id). */
  ids?: string[];
  /** Limits asked for (wire names); the daemon's defaults and maxima apply. */
  quotas?: QuotaValues;
  /** Each child gets its own network (namespace, unique address, egress policy). */
  network?: boolean;
  /** Child i's values and seed (a fork with variations); length n. */
  variants?: ChildVariant[];
  /** The children may fork themselves from inside (allow_guest_fork with its depth). */
  guestFork?: GuestForkPermission | null;
}

const KIND = 'sandbox';

export type EndReason = 'killed' | 'timeout' | 'exited' | 'oom' | 'shutdown';

export class SandboxRegistry {
  private readonly entries = new Map<string, SandboxEntry>();
  /** Sandboxes that ended on their own, by id (oldest first), kept for ENDED_KEEP_MS. */
  private readonly ended = new Map<string, { entry: SandboxEntry; at: number }>();
  /** Told of every sandbox that starts being tracked (spawned or adopted after the hook is set): guest fork watches. */
  onTracked: ((entry: SandboxEntry) => void) | null = null;
  /** Told whenever a sandbox ends (workspaces fall back to their saved state). */
  onEnded: ((rec: SandboxRecord, reason: EndReason) => Promise<void>) | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly journal: Journal,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly limits: RegistryLimits,
    private readonly admission: Admission,
  ) {}

  get count(): number {
    return this.entries.size;
  }

  /** After a restart: adopt journaled sandboxes the keeper still holds; reap everything else. */
  async restore(inherited: KeeperVmT[]): Promise<{ adopted: string[]; reaped: string[] }> {
    const held = new Map(inherited.map((v) => [v.pid, v]));
    const adopted: string[] = [];
    const reaped: string[] = [];
    const records = this.journal.all<SandboxRecord>(KIND);
    const claimed = records.map((rec) => {
      const vm = held.get(rec.pid);
      held.delete(rec.pid);
      if (!vm) this.log.warn({ sandbox: rec.id, pid: rec.pid }, 'the keeper no longer holds this sandbox\'s VM; reaping its record');
      else if (vm.run_dir !== rec.dir) this.log.warn({ sandbox: rec.id, pid: rec.pid, run_dir: vm.run_dir, recorded: rec.dir }, 'the keeper\'s VM with this pid is another VM; reaping the record');
      return { rec, vm: vm && vm.run_dir === rec.dir ? vm : null };
    });
    // In parallel: each adoption may wait seconds for a VM on a loaded host.
    await Promise.all(claimed.map(async ({ rec, vm }) => {
      if (vm) {
        try {
          const sb = await this.engine.adopt({ dir: rec.dir, pid: rec.pid, tag: rec.snapshot_tag, language: rec.language, timings: rec.timings, createdAt: new Date(rec.created_at_unix * 1000), envs: rec.envs });
          this.track(new SandboxEntry(rec, sb));
          adopted.push(rec.id);
          return;
        } catch (e) {
          this.log.warn({ sandbox: rec.id, err: toForkdError(e).message }, 'could not adopt sandbox; reaping it');
        }
      }
      await this.engine.reap(rec.pid, rec.dir).catch(() => undefined);
      reaped.push(rec.id);
      this.metrics.sandboxesEnded.inc({ reason: 'lost' });
      await this.journal.delete(KIND, rec.id);
    }));
    // VMs nobody recorded (spawned but never acknowledged before a crash).
    for (const vm of held.values()) {
      this.log.info({ pid: vm.pid, run_dir: vm.run_dir }, 'reaping a VM that was never acknowledged');
      await this.engine.reap(vm.pid, vm.run_dir).catch(() => undefined);
    }
    return { adopted, reaped };
  }

  /** Live sandboxes; with `visibleTo`, only those that caller may see. */
  list(filter: { tag?: string; metadata?: [string, string]; visibleTo?: Caller } = {}): SandboxEntry[] {
    return [...this.entries.values()].filter((entry) =>
      !entry.ending && (!filter.visibleTo || canSee(filter.visibleTo, ownerOf(entry.rec))) && (!filter.tag || entry.rec.snapshot_tag === filter.tag) && (!filter.metadata || entry.rec.metadata[filter.metadata[0]] === filter.metadata[1]));
  }

  /** Running sandboxes restored from a snapshot (for delete checks and listings). */
  usage(tag: string): string[] {
    return this.list({ tag }).map((entry) => entry.rec.id);
  }

  /**
   * A live sandbox. `by` is the caller it is looked up for: another identity's sandbox is answered
   * exactly as a missing one. null: the daemon itself (workspaces, restarts).
   */
  get(id: string, by: Caller | null): SandboxEntry {
    const entry = this.entries.get(id);
    if (!entry || entry.ending || (by && !canSee(by, ownerOf(entry.rec)))) throw new ForkdError('FORKD_E_SANDBOX_NOT_FOUND', `no sandbox ${id}`, { id });
    return entry;
  }

  /** A live sandbox, or one that ended on its own a short while ago (its end_reason says why). */
  describe(id: string, by: Caller | null): SandboxEntry {
    const gone = this.ended.get(id);
    if (gone && Date.now() - gone.at < ENDED_KEEP_MS && (!by || canSee(by, ownerOf(gone.entry.rec)))) return gone.entry;
    return this.get(id, by);
  }

  async spawn(req: SpawnRequest): Promise<SandboxEntry[]> {
    const quotas = resolveQuotas(this.limits.quotas ?? NO_QUOTA_POLICY, req.quotas ?? {});
    const ticket = await this.admission.admit({ what: 'spawn', spawns: req.n, tag: req.tag });
    const t0 = Date.now();
    let sbs: Sandbox[] = [];
    try {
      sbs = await this.engine.spawn({ tag: req.tag, n: req.n, ...(req.ids ? { ids: req.ids } : {}), ...(req.variants ? { variants: req.variants } : {}), quotas: engineQuotas(quotas), ...(req.network ? { network: true, ...(req.egress ? { egress: egressRequest(req.egress) } : {}) } : {}) });
      const envs = req.envs ?? {};
      await Promise.all(sbs.map((sb) => sb.setEnvs(envs)));
      const now = Date.now();
      const entries = sbs.map((sb) => new SandboxEntry({
        id: sb.id,
        snapshot_tag: req.tag,
        pid: sb.pid,
        dir: sb.dir,
        language: sb.language,
        timings: sb.timings,
        created_at_unix: Math.floor(now / 1000),
        expires_at_unix_ms: req.timeoutMs ? now + req.timeoutMs : null,
        metadata: req.metadata ?? {},
        envs,
        branch_count: 0,
        workspace: req.workspace ?? null,
        quotas,
        egress: req.egress ?? null,
        owner: req.owner,
        network: req.network ?? false,
        guest_fork: req.guestFork ?? null,
        variant: sb.variant ? { index: sb.variant.index, values: sb.variant.values, seed: sb.variant.seed } : null,
      }, sb));
      // Acknowledged only once journaled: after a crash the successor knows these VMs are ours.
      await Promise.all(entries.map((entry) => this.journal.put(KIND, entry.rec.id, entry.rec)));
      for (const entry of entries) {
        this.track(entry);
        this.metrics.spawnReady.observe(entry.rec.timings.spawn_to_ready_ms / 1000);
      }
      this.metrics.sandboxesSpawned.inc(entries.length);
      this.metrics.spawnRequest.observe((Date.now() - t0) / 1000);
      sbs = [];
      return entries;
    } finally {
      ticket.release(); // tracked sandboxes are counted as live from here
      await Promise.all(sbs.map((sb) => sb.kill())); // only on failure
    }
  }

  private track(entry: SandboxEntry): void {
    this.entries.set(entry.rec.id, entry);
    this.onTracked?.(entry);
    this.armTimer(entry);
    void entry.sb.endCause.then((cause) => {
      if (entry.ending) return;
      const reason = cause === 'oom' ? 'oom' : 'exited';
      this.log.warn({ sandbox: entry.rec.id, reason }, reason === 'oom' ? 'sandbox killed by its memory limit' : 'sandbox VM exited on its own');
      entry.endReason = reason;
      this.remember(entry);
      void this.end(entry, reason);
    });
  }

  private remember(entry: SandboxEntry): void {
    const now = Date.now();
    this.ended.set(entry.rec.id, { entry, at: now });
    for (const [id, e] of this.ended) {
      if (this.ended.size <= ENDED_KEEP_MAX && now - e.at < ENDED_KEEP_MS) break;
      this.ended.delete(id);
    }
  }

  private armTimer(entry: SandboxEntry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (entry.rec.expires_at_unix_ms === null) return;
    const ms = Math.max(0, entry.rec.expires_at_unix_ms - Date.now());
    entry.timer = setTimeout(() => void this.end(entry, 'timeout'), ms);
    entry.timer.unref();
  }

  /** Kill timeoutMs from now; null: never. */
  async setTimeout(id: string, by: Caller | null, timeoutMs: number | null): Promise<SandboxEntry> {
    const entry = this.get(id, by);
    entry.rec = { ...entry.rec, expires_at_unix_ms: timeoutMs === null ? null : Date.now() + timeoutMs };
    await this.journal.put(KIND, entry.rec.id, entry.rec);
    this.armTimer(entry);
    return entry;
  }

  async update(entry: SandboxEntry, patch: Partial<SandboxRecord>): Promise<void> {
    entry.rec = { ...entry.rec, ...patch };
    await this.journal.put(KIND, entry.rec.id, entry.rec);
  }

  async kill(id: string, by: Caller | null): Promise<void> {
    await this.end(this.get(id, by), 'killed');
  }

  private async end(entry: SandboxEntry, reason: EndReason): Promise<void> {
    if (entry.ending) return;
    entry.ending = true;
    if (entry.timer) clearTimeout(entry.timer);
    await entry.sb.kill();
    this.entries.delete(entry.rec.id);
    this.metrics.sandboxesEnded.inc({ reason });
    await this.journal.delete(KIND, entry.rec.id).catch((e: unknown) => this.log.error({ err: String(e) }, 'journal write failed'));
    if (reason !== 'killed') this.log.info({ sandbox: entry.rec.id, reason }, 'sandbox ended');
    if (reason !== 'shutdown') await this.onEnded?.(entry.rec, reason).catch((e: unknown) => this.log.error({ err: String(e) }, 'onEnded failed'));
  }

  /**
   * Runs a call into a sandbox's guest with a per-sandbox cap on concurrent calls (429 beyond it),
   * records its latency, and turns a dead VM into FORKD_E_SANDBOX_NOT_RUNNING.
   */
  async withSandbox<T>(id: string, by: Caller | null, call: string, fn: (sandbox: Sandbox, entry: SandboxEntry) => Promise<T>): Promise<T> {
    const entry = this.get(id, by);
    if (entry.inflight >= this.limits.maxCallsPerSandbox) {
      throw new ForkdError('FORKD_E_RATE_LIMITED', `sandbox ${id} already has ${entry.inflight} calls in flight (limit ${this.limits.maxCallsPerSandbox})`, { id });
    }
    entry.inflight++;
    const stop = this.metrics.agentCall.startTimer({ call });
    try {
      return await fn(entry.sb, entry);
    } catch (e) {
      if (!entry.sb.alive || entry.ending) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `sandbox ${id} is no longer running`, { id });
      throw e;
    } finally {
      entry.inflight--;
      stop();
    }
  }

  async killAll(reason: 'shutdown' | 'killed' = 'shutdown'): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.end(entry, reason)));
  }
}
