/**
 * Runs one command in its own process group: stdin from bytes, output collected with a cap
 * and optionally streamed (the stream is paused while a chunk is being sent: backpressure),
 * timeout and kill apply to the whole group.
 */
import { guestEnv } from './guest-env.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecResultT } from '@forkd/protocol';
import type { OutputCollector } from './output-buffer.js';
import type { Launched, RunHandle, SpawnHelper } from './spawn-helper.js';

export type StreamName = 'stdout' | 'stderr';

export interface RunOptions {
  argv?: string[];
  shell?: string;
  env?: Record<string, string>;
  cwd?: string;
  stdin?: Buffer;
  timeoutMs?: number;
  stdout: OutputCollector;
  stderr: OutputCollector;
  /** Starts the process through forkd-spawn when given (falls back to Node's spawn). */
  launcher?: SpawnHelper | null;
  /**
   * With a launcher and no onOutput: forkd-spawn runs the command to completion and keeps this
   * many bytes of each stream itself (the caller's collectors get what it kept).
   */
  runToCompletionCap?: number;
  /** Called per output chunk; a returned promise pauses that stream until it settles. */
  onOutput?: (stream: StreamName, chunk: Buffer) => Promise<void> | void;
}

const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** After the process exits, how long to wait for its pipes to close (a grandchild may hold them). */
export const PIPE_GRACE_MS = 500;

let shellCache: string | null = null;
export function defaultShell(): string {
  if (shellCache === null) shellCache = fs.existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
  return shellCache;
}

let stdinSeq = 0;
/** A private temporary file holding the bytes (the caller removes it once the child has it open). */
function stdinFile(bytes: Buffer): string {
  const p = path.join(os.tmpdir(), `.forkd-stdin-${process.pid}-${++stdinSeq}`);
  const w = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.writeSync(w, bytes);
  } finally {
    fs.closeSync(w);
  }
  return p;
}

/** Opens the file for reading and unlinks it: the descriptor is all that is left. */
function openUnlinked(p: string): number {
  try {
    return fs.openSync(p, 'r');
  } finally {
    fs.rmSync(p, { force: true });
  }
}

function spawnError(err: NodeJS.ErrnoException, cwd: string | undefined): string {
  const badCwd = err.code === 'ENOENT' && cwd !== undefined && !fs.existsSync(cwd);
  return badCwd ? `working directory does not exist: ${cwd}` : err.message;
}

export function defaultEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH || STANDARD_PATH,
    HOME: process.env.HOME || '/root',
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    USER: process.env.USER || 'root',
    ...guestEnv,
  };
}

export function describeCommand(o: { argv?: string[]; shell?: string }): string {
  return o.shell !== undefined ? o.shell : (o.argv ?? []).join(' ');
}

export class RunningProcess {
  readonly startedAtMs = Date.now();
  private readonly startedMono = performance.now();
  readonly command: string;
  child: Launched | null = null;
  pid = -1;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  running = true;
  timedOut = false;
  error: string | null = null;
  private endedMono: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private paused = 0;
  private pendingKill: NodeJS.Signals | null = null;
  private runHandle: RunHandle | null = null;
  /** Settles once the process has a pid (or failed to start). */
  readonly started: Promise<void>;
  readonly done: Promise<ExecResultT>;

  constructor(private readonly o: RunOptions) {
    this.command = describeCommand(o);
    let finish!: () => void;
    this.done = new Promise<void>((r) => (finish = r)).then(() => this.result());
    this.started = this.start(finish).catch((err: Error) => {
      this.error ??= err.message;
      this.running = false;
      finish();
    });
  }

  /** The stdin bytes in a temporary file the helper opens for the child; undefined: /dev/null. */
  private stdinPathForHelper(): string | undefined {
    return this.o.stdin && this.o.stdin.length > 0 ? stdinFile(this.o.stdin) : undefined;
  }

  private async start(finish: () => void): Promise<void> {
    const o = this.o;
    const [file, args] = o.shell !== undefined ? [defaultShell(), ['-c', o.shell]] : [o.argv![0]!, o.argv!.slice(1)];
    const env = { ...defaultEnv(), ...(o.env ?? {}) };
    const failed = (message: string): void => {
      this.error = message;
      this.running = false;
      this.endedMono = performance.now();
      finish();
    };
    if (o.launcher && o.runToCompletionCap !== undefined && !o.onOutput && this.runInHelper(file, args, env, o.launcher, o.runToCompletionCap, finish)) return;
    let child: Launched | null = null;
    if (o.launcher) {
      const stdinPath = this.stdinPathForHelper();
      try {
        child = await o.launcher.launch({ file, args, env, cwd: o.cwd, stdinPath });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EHELPER' && e.code !== 'ETIMEDOUT') return failed(spawnError(e, o.cwd));
      } finally {
        if (stdinPath) fs.rmSync(stdinPath, { force: true });
      }
    }
    if (!child) {
      let stdinFd: number | null = null;
      try {
        // stdin is a file (or /dev/null), never a socket: bash sources ~/.bashrc when its stdin is
        // a socket (the "run by rshd" heuristic), and node's 'pipe' is a socketpair.
        stdinFd = o.stdin && o.stdin.length > 0 ? openUnlinked(stdinFile(o.stdin)) : null;
        child = spawn(file, args, { cwd: o.cwd, env, detached: true, stdio: [stdinFd ?? 'ignore', 'pipe', 'pipe'] }) as ChildProcess;
      } catch (err) {
        // Synchronous spawn failures (bad argument types) are reported like a missing binary.
        return failed((err as Error).message);
      } finally {
        if (stdinFd !== null) fs.closeSync(stdinFd);
      }
    }
    this.child = child;
    this.pid = child.pid ?? -1;
    this.watch(child, finish);
    if (this.pendingKill && this.pid > 0) this.kill(this.pendingKill);
  }

  /** forkd-spawn runs it and answers once with the output; false when the helper cannot take it. */
  private runInHelper(file: string, args: string[], env: Record<string, string>, launcher: SpawnHelper, cap: number, finish: () => void): boolean {
    const o = this.o;
    const stdinPath = this.stdinPathForHelper();
    const h = launcher.run({ file, args, env, cwd: o.cwd, stdinPath, cap });
    if (!h) {
      if (stdinPath) fs.rmSync(stdinPath, { force: true });
      return false;
    }
    this.runHandle = h;
    this.armTimeout();
    const end = (): void => {
      if (stdinPath) fs.rmSync(stdinPath, { force: true });
      this.running = false;
      this.endedMono = performance.now();
      if (this.timer) clearTimeout(this.timer);
      finish();
    };
    h.done.then((r) => {
      this.exitCode = r.code;
      this.exitSignal = r.signal;
      o.stdout.push(r.stdout);
      o.stderr.push(r.stderr);
      if (r.stdoutTruncated) o.stdout.markTruncated();
      if (r.stderrTruncated) o.stderr.markTruncated();
      end();
    }, (err: NodeJS.ErrnoException) => {
      this.error = spawnError(err, o.cwd);
      end();
    });
    return true;
  }

  private armTimeout(): void {
    if (this.o.timeoutMs === undefined) return;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.kill('SIGKILL');
    }, this.o.timeoutMs);
  }

  private watch(child: Launched, finish: () => void): void {
    const o = this.o;
    let exited = false;
    let closed = false;
    const settle = (): void => {
      if (!exited || !closed) return;
      this.running = false;
      this.endedMono ??= performance.now();
      if (this.timer) clearTimeout(this.timer);
      finish();
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= spawnError(err, o.cwd);
      if (child.pid === undefined) {
        exited = true;
        closed = true;
        settle();
      }
    });
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.exitCode = code;
      this.exitSignal = signal;
      this.endedMono = performance.now();
      exited = true;
      this.running = false;
      const grace = (): void => {
        if (closed) return;
        if (this.paused > 0) {
          setTimeout(grace, PIPE_GRACE_MS).unref();
          return;
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
        closed = true;
        settle();
      };
      setTimeout(grace, PIPE_GRACE_MS).unref();
      settle();
    });
    child.on('close', () => {
      closed = true;
      settle();
    });
    this.wire('stdout', child);
    this.wire('stderr', child);
    if (this.pid > 0) this.armTimeout();
  }

  private wire(name: StreamName, child: Launched): void {
    const stream = child[name];
    if (!stream) return;
    stream.on('error', () => undefined);
    const collector = this.o[name];
    stream.on('data', (chunk: Buffer) => {
      collector.push(chunk);
      if (!this.o.onOutput) return;
      let p: Promise<void> | void;
      try {
        p = this.o.onOutput(name, chunk);
      } catch {
        return;
      }
      if (p) {
        this.paused++;
        stream.pause();
        p.catch(() => undefined).finally(() => {
          this.paused--;
          stream.resume();
        });
      }
    });
  }

  /** Signals the whole process group. Returns false when nothing was there to signal. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
    if (this.runHandle) {
      if (!this.running) return false;
      this.runHandle.kill(signal);
      return true;
    }
    if (this.pid <= 0) {
      if (this.running && this.child === null) this.pendingKill = signal; // still starting
      return false;
    }
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      try {
        return this.running && this.child ? this.child.kill(signal) : false;
      } catch {
        return false;
      }
    }
  }

  /** The result so far (final once `done` resolved). */
  result(): ExecResultT {
    const end = this.endedMono ?? performance.now();
    return {
      exit_code: this.exitCode,
      signal: this.exitSignal,
      timed_out: this.timedOut,
      stdout: this.o.stdout.text(),
      stderr: this.o.stderr.text(),
      stdout_truncated: this.o.stdout.truncated,
      stderr_truncated: this.o.stderr.truncated,
      duration_ms: Math.round((end - this.startedMono) * 1000) / 1000,
      error: this.error,
    };
  }
}
