/**
 * sandbox.commands, E2B's Commands: run a shell line (bash -c, as the agent's shell) in the
 * foreground (collected, or streamed through onStdout/onStderr) or in the background.
 *
 * Background commands take one of two paths:
 * - with callbacks or stdin: a streamed exec held open; kill() aborts the HTTP request, which
 *   cancels the guest call and kills the command's process group. Its pid comes from a first
 *   stderr line written by a wrapper shell (see PID_WRAPPER), stripped before onStderr sees it.
 * - otherwise: the daemon's background-process routes (listed by commands.list(), killable by
 *   pid, and independent of this client's connection); stdout/stderr are filled in by wait().
 */
import type { Controller } from './controller.js';
import { guard, toSdkError } from './guard.js';
import { PID_WRAPPER, PidLineParser, settle, timeoutSecs, type CommandResult, type ExecOutcome } from './command-result.js';

export { CommandExitError, type CommandResult } from './command-result.js';

export interface CommandStartOpts {
  /** Return a CommandHandle at once instead of waiting for the exit. */
  background?: boolean;
  cwd?: string;
  /** Environment for this command (on top of the sandbox's envs). */
  envs?: Record<string, string>;
  /** Kill the command after this long (default 60 000, as E2B; 0 = the API's cap of one hour). */
  timeoutMs?: number;
  /** Text fed to the command's stdin (E2B's boolean `stdin` + sendStdin is not offered). */
  stdin?: string;
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

/** E2B's ProcessInfo. `tag` is the daemon's process handle. */
export interface ProcessInfo {
  pid: number;
  tag?: string;
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd?: string;
}

interface Backend {
  wait(): Promise<ExecOutcome>;
  kill(): Promise<boolean>;
}

/** A running background command (E2B's CommandHandle). */
export class CommandHandle {
  private out = { stdout: '', stderr: '' };
  private waiting: Promise<CommandResult> | undefined;
  private result: { exitCode: number; error?: string } | undefined;
  private backend!: Backend;

  constructor(readonly pid: number, private readonly timeoutSecs: number) {}

  /** Output so far (streamed commands: live; process-route commands: as of the last wait()). */
  get stdout(): string { return this.out.stdout; }
  get stderr(): string { return this.out.stderr; }
  /** Set once the command has finished and wait() observed it. */
  get exitCode(): number | undefined { return this.result?.exitCode; }
  get error(): string | undefined { return this.result?.error; }

  /** Resolves with the result on exit 0; throws CommandExitError (non-zero) or TimeoutError. */
  wait(): Promise<CommandResult> {
    this.waiting ??= guard(async () => {
      const r = await this.backend.wait();
      this.out = { stdout: r.stdout, stderr: r.stderr };
      this.result = { exitCode: r.exit_code ?? -1, ...(r.error ? { error: r.error } : {}) };
      return settle(r, this.timeoutSecs);
    });
    return this.waiting;
  }

  /** SIGKILL to the command's process group; false if it had already finished. */
  kill(): Promise<boolean> {
    return guard(() => this.backend.kill());
  }

  /** @internal */
  _attach(b: Backend): void { this.backend = b; }
  /** @internal */
  _append(stream: 'stdout' | 'stderr', data: string): void { this.out[stream] += data; }
}

export class Commands {
  /** Streamed background commands of this client, by pid (for list() and kill(pid)). */
  private readonly streamed = new Map<number, { handle: CommandHandle; cmd: string }>();

  constructor(private readonly ctl: Controller, private readonly sandboxId: string) {}

  run(cmd: string, opts: CommandStartOpts & { background: true }): Promise<CommandHandle>;
  run(cmd: string, opts?: CommandStartOpts & { background?: false | undefined }): Promise<CommandResult>;
  run(cmd: string, opts?: CommandStartOpts): Promise<CommandResult | CommandHandle>;
  run(cmd: string, opts: CommandStartOpts = {}): Promise<CommandResult | CommandHandle> {
    return guard(async () => {
      const secs = timeoutSecs(opts.timeoutMs);
      const common = { timeout_secs: secs, ...(opts.envs ? { envs: opts.envs } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) };
      if (opts.background) {
        return opts.onStdout || opts.onStderr || opts.stdin !== undefined ? this.startStreamed(cmd, opts, common) : this.startProcess(cmd, common);
      }
      const body = { cmd, ...common, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) };
      const r = opts.onStdout || opts.onStderr
        ? await this.ctl.execStream(this.sandboxId, body, { ...(opts.onStdout ? { onStdout: opts.onStdout } : {}), ...(opts.onStderr ? { onStderr: opts.onStderr } : {}) })
        : await this.ctl.exec(this.sandboxId, body);
      return settle(r, secs);
    });
  }

  /** Running background commands: the daemon's processes plus this client's streamed ones. */
  list(): Promise<ProcessInfo[]> {
    return guard(async () => {
      const procs = await this.ctl.listProcesses(this.sandboxId);
      const fromDaemon = procs.filter((p) => p.running).map((p) => ({ pid: p.pid, tag: p.handle, cmd: p.command, args: [], envs: {} }));
      const mine = [...this.streamed].map(([pid, s]) => ({ pid, cmd: s.cmd, args: [], envs: {} }));
      return [...fromDaemon, ...mine];
    });
  }

  /** SIGKILL a background command by pid; false when no running background command has it. */
  kill(pid: number): Promise<boolean> {
    return guard(async () => {
      const s = this.streamed.get(pid);
      if (s) return s.handle.kill();
      const p = (await this.ctl.listProcesses(this.sandboxId)).find((x) => x.pid === pid && x.running);
      if (!p) return false;
      return (await this.ctl.killProcess(this.sandboxId, p.handle, 'SIGKILL')).killed;
    });
  }

  private async startProcess(cmd: string, common: { timeout_secs: number; envs?: Record<string, string>; cwd?: string }): Promise<CommandHandle> {
    const p = await this.ctl.startProcess(this.sandboxId, { cmd, ...common });
    const h = new CommandHandle(p.pid, common.timeout_secs);
    h._attach({
      wait: async () => {
        // The route waits at most a bounded time; a "timed out" wait of a live process just means "not yet".
        for (;;) {
          const r = await this.ctl.waitProcess(this.sandboxId, p.handle);
          if (!r.timed_out) return r;
          const info = (await this.ctl.listProcesses(this.sandboxId)).find((x) => x.handle === p.handle);
          // Finished meanwhile (possibly killed by its own timeout): this wait returns its final result.
          if (!info || !info.running) return this.ctl.waitProcess(this.sandboxId, p.handle, 1);
        }
      },
      kill: async () => (await this.ctl.killProcess(this.sandboxId, p.handle, 'SIGKILL')).killed,
    });
    return h;
  }

  private async startStreamed(cmd: string, opts: CommandStartOpts, common: { timeout_secs: number; envs?: Record<string, string>; cwd?: string }): Promise<CommandHandle> {
    const ac = new AbortController();
    const parser = new PidLineParser();
    let handle: CommandHandle | undefined;
    const early: Array<['stdout' | 'stderr', string]> = [];
    const deliver = (stream: 'stdout' | 'stderr', data: string): void => {
      if (!data) return;
      if (!handle) {
        early.push([stream, data]);
        return;
      }
      handle._append(stream, data);
      (stream === 'stdout' ? opts.onStdout : opts.onStderr)?.(data);
    };
    let gotPid!: (pid: number) => void;
    const pidKnown = new Promise<number>((r) => (gotPid = r));
    const done = this.ctl.execStream(this.sandboxId, {
      args: ['/bin/bash', '-c', PID_WRAPPER, 'forkd', cmd],
      ...common,
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    }, {
      signal: ac.signal,
      onStdout: (d) => deliver('stdout', d),
      onStderr: (d) => {
        const rest = parser.push(d);
        if (parser.pid !== null) gotPid(parser.pid);
        deliver('stderr', rest);
      },
    });
    // The pid line comes before any other output; the exec can only end first if it failed to start.
    const first = await Promise.race([pidKnown.then((pid) => ({ pid })), done.then((r) => ({ r }), (e: unknown) => ({ e }))]);
    if ('e' in first) throw toSdkError(first.e);
    if ('r' in first && parser.pid === null) {
      // Never started (bash missing, bad cwd): report it like a foreground run would.
      settle(first.r, common.timeout_secs);
    }
    const pid = parser.pid ?? -1;
    const h = new CommandHandle(pid, common.timeout_secs);
    handle = h;
    for (const [s, d] of early) deliver(s, d);
    let killed = false;
    let finished = false;
    const ended = done.finally(() => {
      finished = true;
      this.streamed.delete(pid);
    });
    ended.catch(() => undefined); // observed by wait(); never an unhandled rejection
    if (pid > 0) this.streamed.set(pid, { handle: h, cmd });
    h._attach({
      wait: async () => {
        try {
          // The handle's output, not the call's: the call's stderr still has the pid line.
          return { ...(await ended), stdout: h.stdout, stderr: h.stderr };
        } catch (e) {
          if (!killed) throw e;
          return { exit_code: null, error: 'killed', timed_out: false, stdout: h.stdout, stderr: h.stderr };
        }
      },
      kill: async () => {
        if (finished) return false;
        killed = true;
        ac.abort();
        return true;
      },
    });
    return h;
  }
}
