/**
 * Node side of the persistent Python interpreter (pyrepl.py): JSON lines over fds 3 (commands)
 * and 4 (replies). Evals are serialised. A timeout sends SIGINT (KeyboardInterrupt); if the
 * interpreter is still busy after a grace period it is killed and restarted (state lost).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ForkdError, LIMITS, type EvalResultT } from '@forkd/protocol';
import { readLines } from './line-reader.js';
import { defaultEnv } from './process-runner.js';
import { SerialQueue } from './serial-queue.js';

const INTERRUPT_GRACE_MS = 2000;
const START_TIMEOUT_MS = 120_000;

export interface PyReply {
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string; traceback: string };
}

interface Pending {
  resolve: (v: PyReply) => void;
}

export class PythonRepl {
  private proc: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly queue = new SerialQueue();
  /** The default-timeout timer shared by evals (see arm()), and what it interrupts when it fires. */
  private watchdog: NodeJS.Timeout | null = null;
  private due: { onExpiry: () => void } | null = null;
  /** A fork child's values, for an interpreter that was not running when they came (sent first at its start). */
  private pendingVary: Record<string, unknown> | null = null;

  /** sharedTimeoutMs: the timeout whose evals share one timer (see arm()); tests shorten it. */
  constructor(
    readonly python: string | null,
    private readonly script: string,
    private readonly sharedTimeoutMs: number = LIMITS.defaultEvalTimeoutMs,
  ) {}

  get available(): boolean {
    return this.python !== null;
  }

  get running(): boolean {
    return this.proc !== null;
  }

  /** Starts the interpreter if needed; resolves when it said it is ready. */
  start(): Promise<void> {
    if (!this.python) return Promise.reject(new ForkdError('FORKD_E_TOOL_MISSING', 'python3 is not installed in the guest'));
    if (this.ready) return this.ready;
    const child = spawn(this.python, ['-u', this.script], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...defaultEnv(), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      detached: true,
    });
    this.proc = child;
    if (this.pendingVary) {
      // Written ahead of every other command: the interpreter applies it before its first eval.
      (child.stdio[3] as Writable).write(`${JSON.stringify({ ...this.pendingVary, id: 0 })}\n`);
      this.pendingVary = null;
    }
    // Output written to the real fds (C extensions, subprocesses) is drained and dropped.
    child.stdout?.resume();
    child.stderr?.resume();
    child.on('error', () => undefined);
    let markReady!: () => void;
    let failStart!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      markReady = res;
      failStart = rej;
    });
    this.ready.catch(() => undefined);
    const startTimer = setTimeout(() => failStart(new ForkdError('FORKD_E_TIMEOUT', 'python interpreter did not start in time')), START_TIMEOUT_MS);
    readLines(child.stdio[4] as Readable, (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; id?: number; ok: boolean };
      if (msg.ready) {
        clearTimeout(startTimer);
        markReady();
        return;
      }
      const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
      if (p && msg.id !== undefined) {
        this.pending.delete(msg.id);
        p.resolve(msg as never);
      }
    });
    (child.stdio[3] as Writable).on('error', () => undefined);
    child.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      failStart(new ForkdError('FORKD_E_INTERNAL', `python exited during start (code ${code}, signal ${signal})`));
      if (this.proc === child) {
        this.proc = null;
        this.ready = null;
        const died = { type: 'InterpreterDied', message: `the Python interpreter exited (code ${code}, signal ${signal}); its state was lost`, traceback: '' };
        for (const p of this.pending.values()) p.resolve({ ok: false, error: died });
        this.pending.clear();
      }
    });
    return this.ready;
  }

  private async request(op: Record<string, unknown>): Promise<PyReply> {
    await this.start();
    const id = this.nextId++;
    const proc = this.proc;
    if (!proc) throw new ForkdError('FORKD_E_INTERNAL', 'python interpreter is not running');
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      (proc.stdio[3] as Writable).write(`${JSON.stringify({ ...op, id })}\n`);
    });
  }

  /** onCancel: registers the interrupt for a host cancel (CallContext.onCancel). */
  eval(code: string, timeoutMs: number = LIMITS.defaultEvalTimeoutMs, onCancel?: (cb: () => void) => () => void): Promise<EvalResultT> {
    return this.queue.run(() => this.runEval(code, timeoutMs, onCancel));
  }

  /**
   * Calls onExpiry after ms unless the returned disarm runs first. Evals are serialised, so the
   * default timeout shares one long-lived timer, re-armed with refresh(): a setTimeout and
   * clearTimeout pair per eval (a new timer list each time) cost ~0.2 ms per call under TCG.
   * A shared timer that fires with no eval due does nothing.
   */
  private arm(ms: number, onExpiry: () => void): () => void {
    if (ms !== this.sharedTimeoutMs) {
      const t = setTimeout(onExpiry, ms);
      return () => clearTimeout(t);
    }
    const due = { onExpiry };
    this.due = due;
    // refresh() on every call, the first included: a child must not run (and so compile) a path
    // its parent never ran (measured: ~4,000 extra translated blocks in a child's first eval).
    this.watchdog ??= setTimeout(() => this.due?.onExpiry(), ms).unref();
    this.watchdog.refresh();
    return () => {
      if (this.due === due) this.due = null;
    };
  }

  private async runEval(code: string, timeoutMs: number, onCancel?: (cb: () => void) => () => void): Promise<EvalResultT> {
    const t0 = performance.now();
    const { reply, interrupted, killed } = await this.interruptible({ op: 'eval', code }, timeoutMs, onCancel);
    if (reply.ok) {
      const r = reply.result as EvalResultT;
      if (interrupted && r.error?.type === 'KeyboardInterrupt') {
        r.error = { ...r.error, type: 'TimeoutError', message: `eval timed out after ${timeoutMs} ms (interrupted with KeyboardInterrupt)` };
      }
      return r;
    }
    const error = killed
      ? { type: 'TimeoutError', message: `eval timed out after ${timeoutMs} ms; the interpreter did not stop on SIGINT and was restarted: its state was lost`, traceback: '' }
      : reply.error ?? { type: 'Error', message: 'python eval failed', traceback: '' };
    return { ok: false, repr: null, json: null, json_ok: false, error, stdout: '', stderr: '', duration_ms: performance.now() - t0 };
  }

  /**
   * run_code (pyrich.py): a cell with rich results. Its raw reply (images base64) is turned into
   * the wire shape by methods/run-code.ts; a timeout interrupts it like an eval.
   */
  runCell(code: string, timeoutMs: number = LIMITS.defaultEvalTimeoutMs, onCancel?: (cb: () => void) => () => void): Promise<{ reply: PyReply; interrupted: boolean; killed: boolean }> {
    return this.queue.run(() => this.interruptible({ op: 'run_code', code, limits: LIMITS.richResults }, timeoutMs, onCancel));
  }

  /** One request that SIGINT interrupts after timeoutMs (or a host cancel), and SIGKILL after a grace. */
  private async interruptible(op: Record<string, unknown>, timeoutMs: number, onCancel?: (cb: () => void) => () => void): Promise<{ reply: PyReply; interrupted: boolean; killed: boolean }> {
    await this.start();
    const proc = this.proc!;
    let interrupted = false;
    let killed = false;
    let grace: NodeJS.Timeout | undefined;
    const interrupt = (): void => {
      if (interrupted) return;
      interrupted = true;
      signalProc(proc, 'SIGINT');
      grace = setTimeout(() => {
        killed = true;
        signalGroup(proc, 'SIGKILL');
      }, INTERRUPT_GRACE_MS);
    };
    const disarm = this.arm(timeoutMs, interrupt);
    const unregister = onCancel?.(interrupt);
    try {
      const reply = await this.request(op);
      return { reply, interrupted, killed };
    } finally {
      disarm();
      clearTimeout(grace);
      unregister?.();
    }
  }

  async importModules(modules: string[]): Promise<void> {
    if (modules.length === 0) return;
    const r = await this.queue.run(() => this.request({ op: 'import', modules }));
    if (!r.ok) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `python import failed: ${r.error?.type}: ${r.error?.message}`);
  }

  /**
   * Reseeds random and numpy.random (seed), and OpenSSL and libc where the interpreter has loaded
   * them (native); bypasses the eval queue; gives up waiting after deadlineMs.
   */
  async reseed(seed: Buffer, native: Buffer, deadlineMs: number): Promise<string[]> {
    if (!this.proc) return [];
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), deadlineMs)));
    try {
      const r = await Promise.race([this.request({ op: 'reseed', seed_hex: seed.toString('hex'), native_hex: native.toString('hex') }), late]);
      return r?.ok ? ((r.result as { reseeded: string[] }).reseeded ?? []) : [];
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A fork child's values: os.environ, the interpreter's globals, random and numpy.random seeded.
   * Written to the interpreter's pipe now (ahead of any later eval, bypassing the queue) and not
   * awaited: waking a cold interpreter stays off the child's readiness path. Not running: sent
   * first when it starts.
   */
  vary(values: Record<string, unknown>, env: Record<string, string>, seed: number): string {
    const op = { op: 'vary', values, env, seed };
    if (!this.proc) {
      this.pendingVary = op;
      return 'python (at its start)';
    }
    this.request(op).catch(() => undefined);
    return 'python (queued ahead of the next python call)';
  }

  stop(): void {
    if (this.proc) signalGroup(this.proc, 'SIGKILL');
  }
}

function signalProc(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    p.kill(sig);
  } catch {
    /* gone */
  }
}

function signalGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (p.pid) process.kill(-p.pid, sig);
  } catch {
    signalProc(p, sig);
  }
}
