import { qemuBinary } from './version.js';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { buildQemuArgs, type VmSpec } from './args.js';
import { TailBuffer } from './tail.js';
import { which } from './which.js';

export interface LaunchOptions {
  /** The VM's run directory (QEMU's cwd). */
  runDir: string;
  /** Bytes of stderr kept. Default 16 KiB. */
  stderrCapBytes?: number;
  /** Default qemu-system-x86_64 (looked up on PATH). */
  qemuBinary?: string;
  /** How long QEMU may take to create its QMP socket. Default 15 s. */
  startTimeoutMs?: number;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuProcess {
  pid: number;
  args: string[];
  /** Resolves (never rejects) when QEMU has exited. */
  exited: Promise<QemuExit>;
  /** Whether `exited` has resolved. */
  readonly hasExited: boolean;
  /** The last bytes QEMU wrote to stderr. */
  stderrTail(): string;
  /** Sends a signal unless QEMU has already exited. */
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts QEMU under `setpriv --pdeathsig KILL`, so the kernel kills it when this Node process
 * dies, even by SIGKILL. Resolves once QEMU has created its QMP socket. A missing binary is
 * FORKD_E_QEMU_NOT_INSTALLED; an exit before the socket exists is FORKD_E_VM_START_FAILED with
 * QEMU's stderr.
 */
export async function launchQemu(spec: VmSpec, opts: LaunchOptions): Promise<QemuProcess> {
  const args = buildQemuArgs(spec);
  const binary = opts.qemuBinary ?? qemuBinary();
  const qemuPath = await which(binary);
  if (!qemuPath) throw new ForkdError('FORKD_E_QEMU_NOT_INSTALLED', `${binary} not found: apt-get install qemu-system-x86`, { binary });
  const setpriv = await which('setpriv');
  if (!setpriv) throw new ForkdError('FORKD_E_TOOL_MISSING', 'setpriv not found (needed so QEMU dies with its owner): apt-get install util-linux', { tool: 'setpriv' });
  // A stale socket from an earlier run would make us think this QEMU is up.
  await fs.rm(spec.qmpSocket, { force: true });

  const stderr = new TailBuffer(opts.stderrCapBytes ?? 16 * 1024);
  const child = spawn(setpriv, ['--pdeathsig', 'KILL', '--', qemuPath, ...args], { cwd: opts.runDir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => stderr.write(d)); // -nographic: QEMU writes nothing here unless something is wrong
  child.stderr!.on('data', (d: Buffer) => stderr.write(d));

  let hasExited = false;
  const exited = new Promise<QemuExit>((resolve) => {
    child.once('close', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new ForkdError('FORKD_E_VM_START_FAILED', `could not start QEMU: ${e.message}`, { binary: qemuPath })));
  });
  const pid = child.pid!;
  const proc: QemuProcess = {
    pid,
    args,
    exited,
    get hasExited() {
      return hasExited;
    },
    stderrTail: () => stderr.toString(),
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (hasExited) return;
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    },
  };

  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited) {
      const ex = await exited;
      throw new ForkdError('FORKD_E_VM_START_FAILED', `QEMU exited at start (${ex.signal ?? `code ${ex.code}`}): ${stderr.toString().trim() || '(no stderr)'}`, { exit_code: ex.code, signal: ex.signal, stderr_tail: stderr.toString(), args });
    }
    if (await socketExists(spec.qmpSocket)) return proc;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      throw new ForkdError('FORKD_E_VM_START_FAILED', `QEMU did not create its QMP socket within ${timeoutMs} ms: ${stderr.toString().trim()}`, { stderr_tail: stderr.toString(), args });
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5))]);
  }
}

async function socketExists(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isSocket();
  } catch {
    return false;
  }
}
