/**
 * Idle pause: a child nobody has called for a while is stopped (QMP `stop`) and started again
 * (`cont`, then the agent sets the guest clock) by the next thing that needs its guest: any agent
 * call, a connection to one of its exposed ports, a capture. A stopped QEMU costs no host CPU
 * (the running idle guest's timers cost ~2.5-6 ms/s under TCG, bench/README.md#idle-cost).
 *
 * Only a child that is really idle is stopped: no agent call in flight (a watched guest fork holds
 * one for good), no process the agent started still running (commands in the background, services),
 * no uplink (connections from outside could be waiting), and its QEMU used little CPU since the
 * last call (a busy interpreter thread). Anything else re-arms the check for later.
 */
/** What the pause needs of its VM and agent (small, so the logic is tested without a VM). */
export interface IdlePauseTarget {
  stop(): Promise<void>;
  cont(): Promise<void>;
  /** Sets the guest clock to the host's (agent `clock`, sent without passing through the gate). */
  syncClock(): Promise<void>;
  /** Whether the guest has work of its own running (agent processes, services). */
  guestBusy(): Promise<boolean>;
  /** QEMU's CPU time so far (ms). */
  cpuMs(): Promise<number>;
}

export interface IdlePauseSettings {
  /** Stop a child after this long without a call. */
  afterMs: number;
  /** Above this much QEMU CPU per second since the last call, the guest is working: not idle. */
  busyCpuMsPerSec?: number;
}

/** An idle guest costs ~2.5-6.5 ms of QEMU CPU per second under TCG; a working one hundreds. */
const DEFAULT_BUSY_CPU_MS_PER_SEC = 50;

export interface IdlePauseStats {
  paused: boolean;
  pauses: number;
  wakes: number;
  /** Total time spent stopped, the current pause included. */
  paused_ms: number;
  /** The last wake's cont + clock (ms), or null before the first. */
  last_wake_ms: number | null;
}

export class IdlePause {
  #state: 'running' | 'pausing' | 'paused' | 'waking' = 'running';
  #inflight = 0;
  #timer: NodeJS.Timeout | null = null;
  /** The transition in progress (stop or wake): callers arriving meanwhile wait for it. */
  #transition: Promise<void> = Promise.resolve();
  #idleSince = { at: performance.now(), cpuMs: null as number | null };
  #closed = false;
  #stats = { pauses: 0, wakes: 0, pausedMs: 0, pausedAt: 0, lastWakeMs: null as number | null };
  readonly #busyCpu: number;

  constructor(private readonly target: IdlePauseTarget, private readonly settings: IdlePauseSettings, private readonly onError: (what: string, e: unknown) => void = () => undefined) {
    this.#busyCpu = settings.busyCpuMsPerSec ?? DEFAULT_BUSY_CPU_MS_PER_SEC;
    this.#arm();
  }

  get stats(): IdlePauseStats {
    const s = this.#stats;
    const current = this.#state === 'paused' ? performance.now() - s.pausedAt : 0;
    return { paused: this.#state === 'paused', pauses: s.pauses, wakes: s.wakes, paused_ms: Math.round(s.pausedMs + current), last_wake_ms: s.lastWakeMs };
  }

  /** Before anything reaches the guest: wakes it if stopped, and keeps it running until leave(). */
  async enter(): Promise<void> {
    this.#inflight++;
    this.#disarm();
    if (this.#state === 'running') return;
    try {
      await this.#serial(() => this.#wake());
    } catch (e) {
      this.leave();
      throw e;
    }
  }

  leave(): void {
    this.#inflight = Math.max(0, this.#inflight - 1);
    if (this.#inflight === 0) this.#arm();
  }

  /** enter() ... leave() around fn. */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await fn();
    } finally {
      this.leave();
    }
  }

  /** The VM is ending: no more pauses (a stopped VM is killed as it is). */
  close(): void {
    this.#closed = true;
    this.#disarm();
  }

  #arm(): void {
    if (this.#closed || this.#inflight > 0) return;
    this.#disarm();
    this.#idleSince = { at: performance.now(), cpuMs: null };
    void this.target.cpuMs().then((c) => {
      if (this.#idleSince.cpuMs === null) this.#idleSince.cpuMs = c;
    }, () => undefined);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#serial(() => this.#maybePause()).catch((e) => this.onError('idle pause', e));
    }, this.settings.afterMs);
    this.#timer.unref?.();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#transition.then(fn, fn);
    this.#transition = next.catch(() => undefined);
    return next;
  }

  async #maybePause(): Promise<void> {
    if (this.#closed || this.#inflight > 0 || this.#state !== 'running') return;
    const since = this.#idleSince;
    const cpuNow = await this.target.cpuMs().catch(() => null);
    const secs = (performance.now() - since.at) / 1000;
    const working = cpuNow === null || since.cpuMs === null || secs <= 0 || (cpuNow - since.cpuMs) / secs > this.#busyCpu;
    const busy = working || (await this.target.guestBusy().catch(() => true));
    // A call may have come in while we looked: it runs; the next leave() re-arms.
    if (this.#closed || this.#inflight > 0) return;
    if (busy) return this.#arm();
    this.#state = 'pausing'; // from here on enter() waits for this transition, then wakes the guest
    try {
      await this.target.stop();
      this.#state = 'paused';
      this.#stats.pauses++;
      this.#stats.pausedAt = performance.now();
    } catch (e) {
      this.#state = 'running';
      throw e;
    }
  }

  async #wake(): Promise<void> {
    if (this.#state === 'running') return;
    const t0 = performance.now();
    this.#state = 'waking';
    try {
      await this.target.cont();
    } catch (e) {
      this.#state = 'paused';
      throw e;
    }
    this.#state = 'running';
    this.#stats.wakes++;
    this.#stats.pausedMs += performance.now() - this.#stats.pausedAt;
    // The guest's clock stood still while it was stopped; a failure here leaves it late, not stopped.
    await this.target.syncClock().catch((e) => this.onError('clock after idle pause', e));
    this.#stats.lastWakeMs = Math.round((performance.now() - t0) * 10) / 10;
  }
}
