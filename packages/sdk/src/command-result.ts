/**
 * Command outcomes, E2B style: a zero exit is a CommandResult, a non-zero exit (or death by a
 * signal) throws CommandExitError carrying the same fields, a command killed by its own timeout
 * throws TimeoutError. Pure functions, unit-tested without a VM.
 */
import { CALL_TIMEOUT_SECS, CLIENT_DEFAULTS } from '@forkd/protocol';
import { ForkdSdkError, errorFor } from './errors.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Why the command did not run or finish normally (missing binary, signal); undefined on a normal exit. */
  error?: string;
}

/** What the exec and process-wait routes answer (the wire fields this module needs). */
export interface ExecOutcome {
  exit_code: number | null;
  error: string | null;
  timed_out: boolean;
  stdout: string;
  stderr: string;
}

/** E2B's default command timeout. */
export const DEFAULT_COMMAND_TIMEOUT_MS = CLIENT_DEFAULTS.commandTimeoutMs;

/**
 * A non-zero exit (or death by a signal). Code FORKD_E_COMMAND_FAILED: the protocol's code for a
 * command that ran and failed, as opposed to a failure of forkd itself (FORKD_E_TOOL_FAILED is a
 * host tool forkd needs).
 */
export class CommandExitError extends ForkdSdkError implements CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly error?: string;

  constructor(r: CommandResult) {
    const tail = r.stderr.trim().slice(-500);
    super('FORKD_E_COMMAND_FAILED', `command exited with code ${r.exitCode}${r.error ? ` (${r.error})` : ''}${tail ? `: ${tail}` : ''}`, { exit_code: r.exitCode, ...(r.error ? { error: r.error } : {}) });
    this.exitCode = r.exitCode;
    this.stdout = r.stdout;
    this.stderr = r.stderr;
    if (r.error !== undefined) this.error = r.error;
  }
}

/**
 * E2B timeoutMs -> the API's timeout_secs. 0 means "no limit" in E2B; the API caps every call at
 * CALL_TIMEOUT_SECS.max, so 0 becomes that cap. Negative or non-finite values are rejected here
 * (the daemon would answer the same, but with the wire field's name).
 */
export function timeoutSecs(timeoutMs: number | undefined, defaultMs: number = DEFAULT_COMMAND_TIMEOUT_MS): number {
  const ms = timeoutMs ?? defaultMs;
  if (!Number.isFinite(ms) || ms < 0) throw errorFor('FORKD_E_INVALID_ARGUMENT', `timeoutMs must be a non-negative number of milliseconds (got ${timeoutMs})`);
  return ms === 0 ? CALL_TIMEOUT_SECS.max : ms / 1000;
}

/** The CommandResult of a finished command, or the error E2B would throw for it. */
export function settle(r: ExecOutcome, timeoutSecsUsed?: number): CommandResult {
  if (r.timed_out) {
    throw errorFor('FORKD_E_TIMEOUT', `command timed out${timeoutSecsUsed !== undefined ? ` after ${timeoutSecsUsed * 1000} ms` : ''}`, { stdout: r.stdout.slice(-4096), stderr: r.stderr.slice(-4096) });
  }
  if (r.exit_code === 0 && r.error === null) return { exitCode: 0, stdout: r.stdout, stderr: r.stderr };
  // exit_code null: the process was killed by a signal or never started (error says which).
  throw new CommandExitError({ exitCode: r.exit_code ?? -1, stdout: r.stdout, stderr: r.stderr, error: r.error ?? (r.exit_code === null ? 'killed by a signal' : undefined) });
}

/**
 * A streamed background command learns its pid from a first stderr line the wrapper shell writes
 * before exec'ing the command (same pid, so it is also the process group). This strips that line
 * from the stream; if the stream does not start with it, everything passes through untouched.
 */
export const PID_MARKER = '\u001eforkd-pid:';
export class PidLineParser {
  pid: number | null = null;
  private buf = '';
  private done = false;

  /** Feeds a stderr chunk; returns the part that belongs to the command's own stderr. */
  push(chunk: string): string {
    if (this.done) return chunk;
    this.buf += chunk;
    const probe = this.buf.slice(0, PID_MARKER.length);
    if (!PID_MARKER.startsWith(probe)) return this.finish(this.buf);
    const nl = this.buf.indexOf('\n');
    if (nl < 0) return '';
    const n = Number(this.buf.slice(PID_MARKER.length, nl));
    if (Number.isInteger(n) && n > 0) {
      this.pid = n;
      return this.finish(this.buf.slice(nl + 1));
    }
    return this.finish(this.buf);
  }

  private finish(rest: string): string {
    this.done = true;
    this.buf = '';
    return rest;
  }
}

/** The wrapper: `bash -c WRAPPER forkd <cmd>` prints the marker line, then becomes bash -c <cmd>. */
export const PID_WRAPPER = `printf '${PID_MARKER.replace('\u001e', '\\036')}%d\\n' "$$" >&2; exec /bin/bash -c "$1"`;
