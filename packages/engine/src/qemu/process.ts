import { qemuBinary } from './version.js';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { buildQemuArgs, type VmSpec } from './args.js';
import { directLauncher, type QemuLauncher, type QemuProcess } from './launcher.js';
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
  /** Who starts the process (default: this process, under pdeathsig). */
  launcher?: QemuLauncher;
}

export type { QemuExit, QemuProcess } from './launcher.js';

/**
 * Starts QEMU through a launcher (by default under `setpriv --pdeathsig KILL` as our child, so the
 * kernel kills it when this Node process dies, even by SIGKILL). Resolves once QEMU has created
 * its QMP socket. A missing binary is FORKD_E_QEMU_NOT_INSTALLED; an exit before the socket
 * exists is FORKD_E_VM_START_FAILED with QEMU's stderr.
 */
export async function launchQemu(spec: VmSpec, opts: LaunchOptions): Promise<QemuProcess> {
  const args = buildQemuArgs(spec);
  const binary = opts.qemuBinary ?? qemuBinary();
  const qemuPath = await which(binary);
  if (!qemuPath) throw new ForkdError('FORKD_E_QEMU_NOT_INSTALLED', `${binary} not found: apt-get install qemu-system-x86`, { binary });
  // A stale socket from an earlier run would make us think this QEMU is up.
  await fs.rm(spec.qmpSocket, { force: true });
  const proc = await (opts.launcher ?? directLauncher).start({ qemuPath, args, cwd: opts.runDir, stderrCapBytes: opts.stderrCapBytes ?? 16 * 1024 });
  const { exited } = proc;
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.hasExited) {
      const ex = await exited;
      throw new ForkdError('FORKD_E_VM_START_FAILED', `QEMU exited at start (${ex.signal ?? `code ${ex.code}`}): ${proc.stderrTail().trim() || '(no stderr)'}`, { exit_code: ex.code, signal: ex.signal, stderr_tail: proc.stderrTail(), args });
    }
    if (await socketExists(spec.qmpSocket)) return proc;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      throw new ForkdError('FORKD_E_VM_START_FAILED', `QEMU did not create its QMP socket within ${timeoutMs} ms: ${proc.stderrTail().trim()}`, { stderr_tail: proc.stderrTail(), args });
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
