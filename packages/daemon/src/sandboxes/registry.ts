/**
 * Live sandboxes owned by the daemon. Every sandbox is journaled before it is acknowledged and
 * removed from the journal when it ends, so after a crash the daemon knows exactly which VMs it
 * owned: those the keeper still holds are adopted (agent reconnected), the rest are reaped.
 */
import type { Logger } from 'pino';
import { ForkdError, toForkdError } from '@forkd/protocol';
import type { AgentClient, Engine, KeeperVmT, Sandbox, SandboxTimings } from '@forkd/engine';
import type { Journal } from '../state/journal.js';
import type { Metrics } from '../metrics.js';

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
}

export class Live {
  inflight = 0;
  timer: NodeJS.Timeout | null = null;
  ending = false;
  constructor(public rec: SandboxRecord, readonly sb: Sandbox) {}
}

export interface RegistryLimits {
  maxSandboxes: number;
  maxCallsPerSandbox: number;
  maxSpawnInFlight: number;
}

export interface SpawnRequest {
  tag: string;
  n: number;
  timeoutMs?: number;
  metadata?: Record<string, string>;
  envs?: Record<string, string>;
  workspace?: string | null;
  /** Fixed sandbox ids (a resumed workspace keeps its id). */
  ids?: string[];
}

const KIND = 'sandbox';

export type EndReason = 'killed' | 'timeout' | 'exited' | 'shutdown';

export class SandboxRegistry {
  private readonly live = new Map<string, Live>();
  private spawning = 0;
  /** Told whenever a sandbox ends (workspaces fall back to their saved state). */
  onEnded: ((rec: SandboxRecord, reason: EndReason) => Promise<void>) | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly journal: Journal,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly limits: RegistryLimits,
  ) {}

  get count(): number {
    return this.live.size;
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
          const sb = await this.engine.adopt({ dir: rec.dir, pid: rec.pid, tag: rec.snapshot_tag, language: rec.language, timings: rec.timings, createdAt: new Date(rec.created_at_unix * 1000) });
          this.track(new Live(rec, sb));
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

  list(filter: { tag?: string; metadata?: [string, string] } = {}): Live[] {
    return [...this.live.values()].filter((l) =>
      !l.ending && (!filter.tag || l.rec.snapshot_tag === filter.tag) && (!filter.metadata || l.rec.metadata[filter.metadata[0]] === filter.metadata[1]));
  }

  /** Live sandboxes restored from a snapshot (for delete checks and listings). */
  usage(tag: string): string[] {
    return this.list({ tag }).map((l) => l.rec.id);
  }

  /** A request for more children than the daemon ever runs or starts at once can never succeed: a 400, not "retry". */
  private assertSatisfiable(n: number): void {
    const { maxSandboxes, maxSpawnInFlight } = this.limits;
    if (n > maxSandboxes) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `n=${n} is more than this daemon ever runs at once (max-sandboxes ${maxSandboxes})`, { n, max_sandboxes: maxSandboxes });
    }
    if (n > maxSpawnInFlight) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `n=${n} is more than this daemon starts at once (${maxSpawnInFlight}); spawn in smaller batches`, { n, max_spawn_in_flight: maxSpawnInFlight });
    }
  }

  get(id: string): Live {
    const l = this.live.get(id);
    if (!l || l.ending) throw new ForkdError('FORKD_E_SANDBOX_NOT_FOUND', `no sandbox ${id}`, { id });
    return l;
  }

  async spawn(req: SpawnRequest): Promise<Live[]> {
    this.assertSatisfiable(req.n);
    if (this.live.size + this.spawning + req.n > this.limits.maxSandboxes) {
      throw new ForkdError('FORKD_E_CAPACITY', `this daemon runs at most ${this.limits.maxSandboxes} sandboxes (${this.live.size} live, ${this.spawning} starting); kill some first`, { max: this.limits.maxSandboxes });
    }
    if (this.spawning + req.n > this.limits.maxSpawnInFlight) {
      throw new ForkdError('FORKD_E_RATE_LIMITED', `at most ${this.limits.maxSpawnInFlight} children may be starting at once; retry shortly`, { max: this.limits.maxSpawnInFlight });
    }
    this.spawning += req.n;
    const t0 = Date.now();
    let sbs: Sandbox[] = [];
    try {
      sbs = await this.engine.spawn({ tag: req.tag, n: req.n, ...(req.ids ? { ids: req.ids } : {}) });
      const envs = req.envs ?? {};
      if (Object.keys(envs).length > 0) await Promise.all(sbs.map((sb) => applyEnvs(sb, envs)));
      const now = Date.now();
      const lives = sbs.map((sb) => new Live({
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
      }, sb));
      // Acknowledged only once journaled: after a crash the successor knows these VMs are ours.
      await Promise.all(lives.map((l) => this.journal.put(KIND, l.rec.id, l.rec)));
      for (const l of lives) {
        this.track(l);
        this.metrics.spawnReady.observe(l.rec.timings.spawn_to_ready_ms / 1000);
      }
      this.metrics.sandboxesSpawned.inc(lives.length);
      this.metrics.spawnRequest.observe((Date.now() - t0) / 1000);
      sbs = [];
      return lives;
    } finally {
      this.spawning -= req.n;
      await Promise.all(sbs.map((sb) => sb.kill())); // only on failure
    }
  }

  private track(l: Live): void {
    this.live.set(l.rec.id, l);
    this.armTimer(l);
    void l.sb.exited.then(() => {
      if (l.ending) return;
      this.log.warn({ sandbox: l.rec.id }, 'sandbox VM exited on its own');
      void this.end(l, 'exited');
    });
  }

  private armTimer(l: Live): void {
    if (l.timer) clearTimeout(l.timer);
    l.timer = null;
    if (l.rec.expires_at_unix_ms === null) return;
    const ms = Math.max(0, l.rec.expires_at_unix_ms - Date.now());
    l.timer = setTimeout(() => void this.end(l, 'timeout'), ms);
    l.timer.unref();
  }

  /** Kill timeoutMs from now; null: never. */
  async setTimeout(id: string, timeoutMs: number | null): Promise<Live> {
    const l = this.get(id);
    l.rec = { ...l.rec, expires_at_unix_ms: timeoutMs === null ? null : Date.now() + timeoutMs };
    await this.journal.put(KIND, l.rec.id, l.rec);
    this.armTimer(l);
    return l;
  }

  async update(l: Live, patch: Partial<SandboxRecord>): Promise<void> {
    l.rec = { ...l.rec, ...patch };
    await this.journal.put(KIND, l.rec.id, l.rec);
  }

  async kill(id: string): Promise<void> {
    await this.end(this.get(id), 'killed');
  }

  private async end(l: Live, reason: EndReason): Promise<void> {
    if (l.ending) return;
    l.ending = true;
    if (l.timer) clearTimeout(l.timer);
    await l.sb.kill();
    this.live.delete(l.rec.id);
    this.metrics.sandboxesEnded.inc({ reason });
    await this.journal.delete(KIND, l.rec.id).catch((e: unknown) => this.log.error({ err: String(e) }, 'journal write failed'));
    if (reason !== 'killed') this.log.info({ sandbox: l.rec.id, reason }, 'sandbox ended');
    if (reason !== 'shutdown') await this.onEnded?.(l.rec, reason).catch((e: unknown) => this.log.error({ err: String(e) }, 'onEnded failed'));
  }

  /**
   * Runs an agent call for a sandbox with a per-sandbox cap on concurrent calls (429 beyond it),
   * records its latency, and turns a dead VM into FORKD_E_SANDBOX_NOT_RUNNING.
   */
  async withAgent<T>(id: string, call: string, fn: (agent: AgentClient, l: Live) => Promise<T>): Promise<T> {
    const l = this.get(id);
    if (l.inflight >= this.limits.maxCallsPerSandbox) {
      throw new ForkdError('FORKD_E_RATE_LIMITED', `sandbox ${id} already has ${l.inflight} calls in flight (limit ${this.limits.maxCallsPerSandbox})`, { id });
    }
    l.inflight++;
    const stop = this.metrics.agentCall.startTimer({ call });
    try {
      return await fn(l.sb.agent, l);
    } catch (e) {
      if (!l.sb.alive || l.ending) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `sandbox ${id} is no longer running`, { id });
      throw e;
    } finally {
      l.inflight--;
      stop();
    }
  }

  async killAll(reason: 'shutdown' | 'killed' = 'shutdown'): Promise<void> {
    await Promise.all([...this.live.values()].map((l) => this.end(l, reason)));
  }
}

/** Spawn-time environment: for every later exec (merged per call) and both interpreters. */
async function applyEnvs(sb: Sandbox, envs: Record<string, string>): Promise<void> {
  const json = JSON.stringify(envs);
  const code = sb.language === 'python' ? `import os as _forkd_os, json as _forkd_json\n_forkd_os.environ.update(_forkd_json.loads(${JSON.stringify(json)}))` : `Object.assign(process.env, ${json}); undefined`;
  const r = await sb.agent.eval(sb.language, code, { timeoutMs: 30_000 });
  if (!r.ok) throw new ForkdError('FORKD_E_AGENT_ERROR', `could not set envs in sandbox ${sb.id}: ${r.error?.message ?? ''}`);
}
