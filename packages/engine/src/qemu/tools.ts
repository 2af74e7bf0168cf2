import { spawn } from 'node:child_process';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { TailBuffer } from './tail.js';
import { which } from './which.js';

let setprivPath: Promise<string | null> | null = null;

export interface RunToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the tool's stdin, which is closed afterwards (default: stdin is /dev/null). */
  input?: string | Buffer;
  /** Kill the tool (SIGKILL) after this long and reject with FORKD_E_TIMEOUT. Default: none. */
  timeoutMs?: number;
  /** Bytes of stdout kept (the tail). Default 1 MiB. */
  stdoutCapBytes?: number;
  /** Bytes of stderr kept (the tail). Default 64 KiB. */
  stderrCapBytes?: number;
  /** Called with each output chunk, e.g. for progress. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface RunToolResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a host tool with an argument vector (never a shell). ENOENT -> FORKD_E_TOOL_MISSING;
 * non-zero exit or death by signal -> FORKD_E_TOOL_FAILED with the exit code and stderr tail.
 * The tool runs under `setpriv --pdeathsig KILL` when setpriv exists: it dies with this process
 * rather than write on into a staging dir that the next owner's cleanup removes.
 */
export async function runTool(cmd: string, args: string[], opts: RunToolOptions = {}): Promise<RunToolResult> {
  setprivPath ??= which('setpriv');
  const setpriv = await setprivPath;
  // Under setpriv a missing tool is setpriv's exit code, not ENOENT: look first (relative to cwd, as exec would).
  if (setpriv && !(await which(cmd.includes('/') && opts.cwd ? path.resolve(opts.cwd, cmd) : cmd, (opts.env ?? process.env).PATH ?? ''))) {
    throw new ForkdError('FORKD_E_TOOL_MISSING', `${cmd} is not installed (or not on PATH)`, { tool: cmd });
  }
  return new Promise<RunToolResult>((resolve, reject) => {
    const out = new TailBuffer(opts.stdoutCapBytes ?? 1024 * 1024);
    const err = new TailBuffer(opts.stderrCapBytes ?? 64 * 1024);
    const child = spawn(setpriv ?? cmd, setpriv ? ['--pdeathsig', 'KILL', '--', cmd, ...args] : args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : null;
    child.stdout!.on('data', (d: Buffer) => {
      out.write(d);
      opts.onStdout?.(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      err.write(d);
      opts.onStderr?.(d);
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === 'ENOENT') {
        reject(new ForkdError('FORKD_E_TOOL_MISSING', `${cmd} is not installed (or not on PATH)`, { tool: cmd }));
      } else {
        reject(new ForkdError('FORKD_E_TOOL_FAILED', `${cmd} could not be started: ${e.message}`, { tool: cmd, errno: e.code }));
      }
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stderr = err.toString();
      if (timedOut) {
        reject(new ForkdError('FORKD_E_TIMEOUT', `${cmd} did not finish within ${opts.timeoutMs} ms`, { tool: cmd, stderr_tail: stderr.slice(-2000) }));
      } else if (code === 0) {
        resolve({ stdout: out.toString(), stderr });
      } else {
        const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
        reject(new ForkdError('FORKD_E_TOOL_FAILED', `${cmd} ${how}: ${stderr.trim().slice(-2000) || '(no stderr)'}`, { tool: cmd, args, exit_code: code, signal, stderr_tail: stderr.slice(-2000) }));
      }
    });
  });
}

/**
 * Creates a qcow2 overlay on top of `backingPath`. A relative backing path is resolved by QEMU
 * against the overlay's directory (pass `cwd` = that directory so qemu-img can check it too).
 */
export async function qemuImgCreateOverlay(path: string, backingPath: string, backingFormat: 'qcow2' | 'raw', opts: { cwd?: string } = {}): Promise<void> {
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', backingPath, '-F', backingFormat, path], opts.cwd ? { cwd: opts.cwd } : {});
}
