import { ForkdError } from '@forkd/protocol';
import { QmpClient, type QmpConnectOptions } from '../qmp/client.js';
import type { VmSpec } from './args.js';
import { launchQemu, type LaunchOptions, type QemuProcess } from './process.js';

function startFailed(proc: QemuProcess, ex: { code: number | null; signal: NodeJS.Signals | null }): ForkdError {
  return new ForkdError('FORKD_E_VM_START_FAILED', `QEMU exited at start (${ex.signal ?? `code ${ex.code}`}): ${proc.stderrTail().trim() || '(no stderr)'}`, { exit_code: ex.code, signal: ex.signal, stderr_tail: proc.stderrTail(), args: proc.args });
}

/**
 * launchQemu + QMP handshake. QEMU creates its QMP socket before it opens memory, disks and the
 * kernel, and greets only once initialisation is done; so this is the call that catches every
 * start failure: an exit before the greeting is FORKD_E_VM_START_FAILED with QEMU's stderr.
 * On failure QEMU is killed.
 */
export async function startQemu(spec: VmSpec, opts: LaunchOptions & { qmp?: QmpConnectOptions }): Promise<{ proc: QemuProcess; qmp: QmpClient }> {
  const proc = await launchQemu(spec, opts);
  const connectP = QmpClient.connect(spec.qmpSocket, { timeoutMs: opts.startTimeoutMs ?? 15_000, ...opts.qmp });
  try {
    const qmp = await Promise.race([connectP, proc.exited.then((ex) => Promise.reject(startFailed(proc, ex)))]);
    return { proc, qmp };
  } catch (e) {
    connectP.then((c) => c.close(), () => undefined);
    // The socket may reset a moment before the process is reaped: prefer QEMU's own words.
    const ex = await Promise.race([proc.exited, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    proc.kill('SIGKILL');
    await proc.exited;
    if (ex) throw startFailed(proc, ex);
    throw e;
  }
}
