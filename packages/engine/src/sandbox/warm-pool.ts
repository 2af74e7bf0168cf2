/**
 * A warm pool: children of a snapshot whose QEMU was started ahead and whose device state is
 * already loaded, paused (-S) until a spawn takes them. A spawn then only runs `cont` and waits
 * for the agent; the QEMU exec, the launch chain, the overlay, the network namespace and the
 * migration were paid earlier, in the background, while no spawn was running.
 *
 * Only children with the default settings are pooled: no limits (cgroups, disk cap), no way out
 * (`network`), no fixed id. Those are decided when QEMU starts (cgroup join before exec, nsenter,
 * run dir name), so a spawn that asks for any of them starts its children the normal way.
 *
 * The pool owns its VMs like a spawn does: each is a Vm with a run dir, started by the same starter
 * (the keeper under the daemon), so a crash or kill -9 leaves them to the same sweep (a restarted
 * daemon reaps keeper VMs nobody recorded; without one the keeper kills them after its grace).
 */
import os from 'node:os';
import { promises as fs } from 'node:fs';
import type { AgentClient } from '../agent-client/index.js';
import type { Vm } from '../vm/vm.js';

/** A started, loaded, paused child waiting in the pool. */
export interface PooledChild {
  vm: Vm;
  tag: string;
  /** The snapshot it was loaded from (poolKey): a recreated or changed snapshot never hands out old children. */
  key: string;
  /** Its agent channel, connected while it waited. */
  agent: Promise<AgentClient>;
  startedAt: number;
  /** Called by the taker before `cont`: back to normal priority. */
  claim(): Promise<void>;
}

export interface WarmPoolDeps {
  /** Starts one pooled child of tag (throws when the snapshot is gone or cannot restore here). */
  fill(tag: string): Promise<PooledChild>;
  /** The snapshot key a child of tag must have now, or null when the snapshot is gone. */
  currentKey(tag: string): Promise<string | null>;
  /** Whether one more VM fits under the owner's caps now (the daemon's admission). Default: yes. */
  hasRoom?: () => boolean;
  /** Told about fill failures (the daemon logs them). */
  onError?: (tag: string, err: unknown) => void;
  /** Clock (tests). */
  now?: () => number;
}

export interface WarmPoolSettings {
  /** Demand sizing: a tag's pool is refilled up to the children taken from it in the last window, at most this many (0: off). */
  demandMax: number;
  demandWindowMs: number;
  /** After a failed fill, a tag is not retried for this long. */
  failureBackoffMs: number;
}

/** How often a pool below target looks for room again while the owner's caps are full. */
const ROOM_POLL_MS = 1000;

export const DEFAULT_POOL_SETTINGS: WarmPoolSettings = { demandMax: 0, demandWindowMs: 60_000, failureBackoffMs: 30_000 };

export interface WarmPoolTagState {
  tag: string;
  /** Paused children ready to take. */
  ready: number;
  /** Being started now. */
  starting: number;
  /** Operator's size (--warm-pool TAG=N). */
  configured: number;
  /** What the pool refills to now (configured, or recent demand if larger). */
  target: number;
  /** Children spawned from the pool / started the normal way for lack of one. */
  hits: number;
  misses: number;
  pids: number[];
  last_error: string | null;
}

interface TagPool {
  ready: PooledChild[];
  starting: number;
  configured: number;
  takes: number[];
  hits: number;
  misses: number;
  failedAt: number;
  lastError: string | null;
}

export class WarmPool {
  private readonly tags = new Map<string, TagPool>();
  private readonly settings: WarmPoolSettings;
  /** Spawns in flight: the pool fills only while none runs, so it never competes with one. */
  private spawning = 0;
  private filling: Promise<void> | null = null;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly deps: WarmPoolDeps, settings: Partial<WarmPoolSettings> = {}) {
    this.settings = { ...DEFAULT_POOL_SETTINGS, ...settings };
    this.now = deps.now ?? Date.now;
  }

  /** The operator's pool size for a tag (0 removes it from the pool unless demand keeps it). */
  configure(tag: string, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`pool size must be a non-negative integer; got ${n}`);
    this.pool(tag).configured = n;
    this.kick();
  }

  /** VMs the pool holds (ready and starting): what counts against the owner's VM caps. */
  get size(): number {
    let n = 0;
    for (const p of this.tags.values()) n += p.ready.length + p.starting;
    return n;
  }

  state(): WarmPoolTagState[] {
    return [...this.tags.entries()].map(([tag, p]) => ({
      tag,
      ready: p.ready.length,
      starting: p.starting,
      configured: p.configured,
      target: this.target(tag, p),
      hits: p.hits,
      misses: p.misses,
      pids: p.ready.map((c) => c.vm.pid),
      last_error: p.lastError,
    }));
  }

  /**
   * Marks a spawn in flight (filling pauses) and takes up to n ready children of the snapshot
   * (key). Children of another key (the snapshot was recreated) are discarded on the way.
   * Call done() when the spawn has finished.
   */
  begin(tag: string, key: string, n: number): { taken: PooledChild[]; done: () => void } {
    this.spawning++;
    let ended = false;
    const done = () => {
      if (ended) return;
      ended = true;
      this.spawning--;
      this.kick();
    };
    const p = this.tags.get(tag);
    const taken: PooledChild[] = [];
    if (p) {
      const stale = p.ready.filter((c) => c.key !== key);
      p.ready = p.ready.filter((c) => c.key === key);
      for (const c of stale) void c.vm.kill().catch(() => undefined);
      while (taken.length < n && p.ready.length > 0) taken.push(p.ready.shift()!);
    }
    const pool = this.pool(tag);
    pool.hits += taken.length;
    pool.misses += n - taken.length;
    const t = this.now();
    for (let i = 0; i < n; i++) pool.takes.push(t);
    return { taken, done };
  }

  /** Spawns that take no pooled child still mark themselves (filling pauses while they run). */
  busy(): () => void {
    this.spawning++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.spawning--;
      this.kick();
    };
  }

  /** Kills a tag's pooled children (the snapshot is being deleted); its configured size stays for a recreated one. */
  async drain(tag: string): Promise<number> {
    const p = this.tags.get(tag);
    if (!p) return 0;
    const gone = p.ready;
    p.ready = [];
    await Promise.all(gone.map((c) => c.vm.kill().catch(() => undefined)));
    return gone.length;
  }

  /** Gives back up to n VMs' worth of room (the owner needs it for real work): oldest first, other tags before `prefer`. */
  reclaim(n: number, prefer?: string): number {
    const order = [...this.tags.entries()].sort(([a], [b]) => Number(a === prefer) - Number(b === prefer));
    let freed = 0;
    for (const [, p] of order) {
      while (freed < n && p.ready.length > 0) {
        const c = p.ready.shift()!;
        void c.vm.kill().catch(() => undefined);
        freed++;
      }
    }
    return freed;
  }

  /** Kills every pooled child and stops filling. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    await this.filling?.catch(() => undefined);
    await Promise.all([...this.tags.keys()].map((t) => this.drain(t)));
  }

  /** Starts the background fill unless one runs. */
  kick(): void {
    if (this.closed || this.filling) return;
    this.filling = this.fillLoop().finally(() => {
      this.filling = null;
    });
    this.filling.catch(() => undefined);
  }

  /** Waits until the current fill round ends (tests, benchmarks). */
  async settled(): Promise<void> {
    while (this.filling) await this.filling.catch(() => undefined);
  }

  private target(tag: string, p: TagPool): number {
    const { demandMax, demandWindowMs } = this.settings;
    if (demandMax <= 0) return p.configured;
    const since = this.now() - demandWindowMs;
    p.takes = p.takes.filter((t) => t >= since);
    return Math.max(p.configured, Math.min(demandMax, p.takes.length));
  }

  private pool(tag: string): TagPool {
    let p = this.tags.get(tag);
    if (!p) {
      p = { ready: [], starting: 0, configured: 0, takes: [], hits: 0, misses: 0, failedAt: -Infinity, lastError: null };
      this.tags.set(tag, p);
    }
    return p;
  }

  /** A tag below target but backing off after a failure gets another round when its backoff ends. */
  private retryLater(): void {
    if (this.retry || this.closed) return;
    const waiting = [...this.tags.entries()].filter(([tag, p]) => p.ready.length + p.starting < this.target(tag, p) && this.now() - p.failedAt < this.settings.failureBackoffMs);
    if (waiting.length === 0) return;
    this.retryIn(Math.min(...waiting.map(([, p]) => p.failedAt + this.settings.failureBackoffMs - this.now())));
  }

  private retryIn(ms: number): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.kick();
    }, Math.max(10, ms));
    this.retry.unref();
  }
  private retry: NodeJS.Timeout | null = null;

  /** The next tag below its target, or null. */
  private nextTag(): string | null {
    for (const [tag, p] of this.tags) {
      if (this.now() - p.failedAt < this.settings.failureBackoffMs) continue;
      if (p.ready.length + p.starting < this.target(tag, p)) return tag;
    }
    return null;
  }

  /** One child at a time, only while no spawn runs and the owner has room. */
  private async fillLoop(): Promise<void> {
    for (;;) {
      if (this.closed || this.spawning > 0) return;
      if (this.deps.hasRoom && !this.deps.hasRoom()) {
        // Room comes back when sandboxes end, which nobody tells the pool: look again shortly.
        if (this.nextTag() !== null) this.retryIn(ROOM_POLL_MS);
        return;
      }
      const tag = this.nextTag();
      if (tag === null) {
        this.retryLater();
        return;
      }
      const p = this.pool(tag);
      p.starting++;
      let child: PooledChild | null = null;
      try {
        child = await this.deps.fill(tag);
        p.lastError = null;
      } catch (e) {
        p.failedAt = this.now();
        p.lastError = e instanceof Error ? e.message : String(e);
        this.deps.onError?.(tag, e);
      } finally {
        p.starting--;
      }
      if (!child) continue;
      // Closed, over target, or the snapshot changed while it started: not kept.
      const key = await this.deps.currentKey(tag).catch(() => null);
      if (this.closed || key !== child.key || p.ready.length >= this.target(tag, p)) {
        await child.vm.kill().catch(() => undefined);
        if (key !== child.key) {
          // Changing or gone under us: wait like after a failure instead of starting the next one now.
          p.failedAt = this.now();
          p.lastError = key === null ? `snapshot ${tag} is gone` : `snapshot ${tag} changed while a child started`;
        }
        continue;
      }
      p.ready.push(child);
      const c = child;
      // A pooled VM that dies (keeper lost, killed by hand) leaves the pool.
      void c.vm.proc.exited.then(() => {
        p.ready = p.ready.filter((x) => x !== c);
      });
    }
  }
}

/**
 * Every thread of a process back to nice 0 (setpriority is per thread on Linux; QEMU's threads
 * inherited the launch niceness). Needs root; a pool that cannot renice does not nice (poolNice).
 */
export async function reniceProcess(pid: number, nice: number): Promise<void> {
  const tids = await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const t of tids) {
    try {
      os.setPriority(Number(t), nice);
    } catch {
      // a thread that just ended
    }
  }
}

/** Niceness pooled children start at: low priority when this process may raise it back (root), else none. */
export function poolNice(): number | undefined {
  return process.getuid?.() === 0 ? 10 : undefined;
}
