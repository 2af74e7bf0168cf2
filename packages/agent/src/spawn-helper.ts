/**
 * Client of forkd-spawn (spawn-helper.c): commands start with posix_spawn from a tiny helper
 * instead of a fork of the agent. Under TCG a fork of the ~60 MiB agent costs ~25 ms of page-table
 * copying per command; this path costs the exec alone. The helper is started before the snapshot.
 * Output pipes are created by the helper and opened here through /proc/<helper>/fd/<n>.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Readable } from 'node:stream';

/** Requests above this go through Node's spawn instead (the helper drops bigger frames). */
const MAX_FRAME_BYTES = 1 << 20;
const REPLY_TIMEOUT_MS = 5000;

export interface LaunchRequest {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** A file the helper opens as the child's stdin; /dev/null when absent. */
  stdinPath?: string;
}

/** The part of Node's ChildProcess that RunningProcess uses: 'error', 'exit', 'close' events. */
export interface Launched extends EventEmitter {
  pid?: number;
  stdout: Readable | null;
  stderr: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, n]) => [n as number, name as NodeJS.Signals]),
);
const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n as number, name]));

/** The helper reports code -1 for a death by signal, and signal 0 for a normal exit. */
function exitStatus(code: number, signo: number): { code: number | null; signal: NodeJS.Signals | null } {
  return { code: code >= 0 ? code : null, signal: signo ? (signalNames.get(signo) ?? null) : null };
}

function spawnFailure(file: string, errno: number): Error {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  return Object.assign(new Error(`spawn ${file} ${code}`), { code, errno: -errno, path: file });
}

class HelperChild extends EventEmitter implements Launched {
  stdout: net.Socket;
  stderr: net.Socket;
  private exited = false;
  private exitEmitted = false;
  private closeEmitted = false;
  private openStreams = 2;

  constructor(readonly pid: number, outFd: number, errFd: number) {
    super();
    this.stdout = new net.Socket({ fd: outFd, readable: true, writable: false });
    this.stderr = new net.Socket({ fd: errFd, readable: true, writable: false });
    for (const s of [this.stdout, this.stderr]) {
      s.on('close', () => {
        this.openStreams--;
        this.maybeClose();
      });
    }
  }

  /**
   * The exit line can arrive in the same read as the spawn reply, before the caller has attached
   * its listeners (it resumes in a microtask): emitting on setImmediate runs after those.
   */
  onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    setImmediate(() => {
      this.exitEmitted = true;
      this.emit('exit', code, signal);
      this.maybeClose();
    });
  }

  private maybeClose(): void {
    if (this.exitEmitted && this.openStreams === 0 && !this.closeEmitted) {
      this.closeEmitted = true;
      this.emit('close');
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** What a `run` (run to completion) command left: forkd-spawn collected its output. */
export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface RunHandle {
  done: Promise<RunOutcome>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Splits the helper's replies: one line each, except `done`, whose line is followed by the
 * command's output bytes (collected in chunks, joined once).
 */
function readReplies(stream: Readable, onReply: (fields: string[], payload: Buffer | null) => void): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let want: { fields: string[]; bytes: number } | null = null;
  const deliver = (fields: string[], payload: Buffer | null): void => {
    try {
      onReply(fields, payload);
    } catch {
      /* a bad reply must not break the reader */
    }
  };
  const joined = (): Buffer => {
    if (pending.length !== 1) pending = [Buffer.concat(pending, pendingBytes)];
    return pending[0]!;
  };
  stream.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    for (;;) {
      // Bytes are joined only once a whole line or a whole payload is there.
      if (want && pendingBytes < want.bytes) return;
      if (!want && chunk.indexOf(10) < 0 && pending.length > 1) return;
      const all = joined();
      let taken: number;
      if (want) {
        const { fields, bytes } = want;
        want = null;
        taken = bytes;
        deliver(fields, all.subarray(0, taken));
      } else {
        const nl = all.indexOf(10);
        if (nl < 0) return;
        taken = nl + 1;
        const fields = all.toString('utf8', 0, nl).split(' ');
        if (fields[1] === 'done') want = { fields, bytes: Number(fields[4]) + Number(fields[5]) };
        else deliver(fields, null);
      }
      const rest = all.subarray(taken);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      chunk = rest;
    }
  });
  stream.on('error', () => undefined);
}

interface Pending {
  resolve(child: HelperChild): void;
  reject(err: Error): void;
  file: string;
}

export class SpawnHelper {
  private proc: ChildProcess | null = null;
  private readonly pending = new Map<string, Pending>();
  private readonly children = new Map<string, HelperChild>();
  private readonly runs = new Map<string, { resolve(o: RunOutcome): void; reject(e: Error): void; file: string }>();
  private nextId = 1;

  constructor(private readonly binary: string) {}

  /** Starts the helper; false when it cannot run here (callers then use Node's spawn). */
  start(): boolean {
    if (this.proc) return true;
    if (!fs.existsSync(this.binary)) return false;
    let child: ChildProcess;
    try {
      child = spawn(this.binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    } catch {
      return false;
    }
    this.proc = child;
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    readReplies(child.stdout!, (fields, payload) => this.onReply(child, fields, payload));
    child.on('exit', () => {
      if (this.proc === child) this.proc = null;
      const gone = () => Object.assign(new Error('forkd-spawn exited'), { code: 'EHELPER' });
      for (const p of this.pending.values()) p.reject(gone());
      this.pending.clear();
      for (const r of this.runs.values()) r.reject(gone());
      this.runs.clear();
      // Their processes run on in their own sessions, but nobody can report their exit now.
      for (const c of this.children.values()) c.onExit(null, null);
      this.children.clear();
    });
    return true;
  }

  private onReply(proc: ChildProcess, fields: string[], payload: Buffer | null): void {
    const [id = '', word, ...nums] = fields;
    const n = nums.map(Number);
    const run = this.runs.get(id);
    if (run) {
      this.runs.delete(id);
      if (word === 'done' && payload) {
        const outLen = n[2]!;
        run.resolve({
          ...exitStatus(n[0]!, n[1]!),
          stdout: payload.subarray(0, outLen),
          stderr: payload.subarray(outLen),
          stdoutTruncated: n[4] === 1,
          stderrTruncated: n[5] === 1,
        });
      } else {
        run.reject(spawnFailure(run.file, n[0] ?? 0));
      }
      return;
    }
    if (word === 'exit') {
      const c = this.children.get(id);
      if (!c) return;
      this.children.delete(id);
      const { code, signal } = exitStatus(n[0]!, n[1]!);
      c.onExit(code, signal);
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (word === 'ok') {
      let child: HelperChild;
      try {
        // Opened before `release`, so the helper still holds the pipes and nothing is lost.
        const open = (fd: number) => fs.openSync(`/proc/${proc.pid}/fd/${fd}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
        child = new HelperChild(n[0]!, open(n[1]!), open(n[2]!));
      } catch (e) {
        this.send([id, 'release']);
        try {
          process.kill(-n[0]!, 'SIGKILL');
        } catch {
          /* already gone */
        }
        p.reject(e as Error);
        return;
      }
      this.children.set(id, child);
      this.send([id, 'release']);
      p.resolve(child);
      return;
    }
    p.reject(spawnFailure(p.file, n[0] ?? 0));
  }

  /**
   * Runs a command to completion inside the helper, which collects up to `cap` bytes of each
   * stream and answers once: the agent wakes once per command instead of at the start, at each
   * pipe's end and at the exit. Null when the helper cannot take it (the caller spawns itself).
   */
  run(r: LaunchRequest & { cap: number }): RunHandle | null {
    if (!this.proc && !this.start()) return null;
    const fields = this.requestFields(r);
    if (!fields) return null;
    const id = String(this.nextId++);
    const done = new Promise<RunOutcome>((resolve, reject) => this.runs.set(id, { resolve, reject, file: r.file }));
    if (!this.send([id, 'run', String(r.cap), ...fields])) {
      this.runs.delete(id);
      return null;
    }
    return {
      done,
      kill: (signal) => void this.send([id, 'kill', String(os.constants.signals[signal] ?? 9)]),
    };
  }

  /** stdin, cwd, argc, argv..., env... ; null when a field cannot travel (a NUL byte). */
  private requestFields(r: LaunchRequest): string[] | null {
    const env = Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
    const fields = [r.stdinPath ?? '', r.cwd ?? '', String(r.args.length + 1), r.file, ...r.args, ...env];
    return fields.some((f) => f.includes('\0')) ? null : fields;
  }

  private send(fields: string[]): boolean {
    const payload = Buffer.from(fields.map((f) => `${f}\0`).join(''));
    if (payload.length > MAX_FRAME_BYTES || !this.proc?.stdin) return false;
    const header = Buffer.alloc(4);
    header.writeUInt32LE(payload.length);
    this.proc.stdin.write(Buffer.concat([header, payload]));
    return true;
  }

  /**
   * Starts a process through the helper. Resolves null when the helper cannot take this request
   * (not running, request too large, fields with NUL bytes): the caller uses Node's spawn.
   */
  launch(r: LaunchRequest): Promise<Launched | null> {
    if (!this.proc && !this.start()) return Promise.resolve(null);
    const fields = this.requestFields(r);
    if (!fields) return Promise.resolve(null);
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(Object.assign(new Error('forkd-spawn did not answer'), { code: 'ETIMEDOUT' }));
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, {
        file: r.file,
        resolve: (c) => (clearTimeout(timer), resolve(c)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      if (!this.send([id, 'spawn', ...fields])) {
        this.pending.delete(id);
        clearTimeout(timer);
        resolve(null);
      }
    });
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    this.proc = null;
  }
}
