/**
 * QEMU migrations as the engine uses them: device state saved to a file (snapshot create, branch
 * receiver), loaded from one (restore), and streamed between two QEMUs (branch). QMP reports
 * progress only when asked, so every wait here is one poll loop with a deadline.
 */
import { ForkdError, type ForkdErrorCode } from '@forkd/protocol';
import type { QmpClient } from '../qmp/client.js';
import { hostHelper } from '../qemu/host-helpers.js';
import { QMP_FD_PASSER } from '../qemu/jail-helpers.js';
import { runTool } from '../qemu/tools.js';

/**
 * Where a migration stream goes or comes from. QEMU runs under `-sandbox spawn=deny`, so no `exec:`
 * command: the stream is a descriptor opened here (a file read, a new file, a connected Unix
 * socket) and handed to QEMU over its second QMP monitor (qemu/jail-helpers.ts forkd-qmp-fd).
 */
export type MigrationEnd = { read: string } | { create: string } | { connect: string };

/** Hands QEMU the descriptor and starts `migrate` (outgoing) or `migrate-incoming` on it; returns once QEMU accepted. */
export async function migrateThroughFd(fdQmpSocket: string, end: MigrationEnd, command: 'migrate' | 'migrate-incoming', failure: ForkdErrorCode): Promise<void> {
  const helper = await hostHelper(QMP_FD_PASSER);
  const [mode, target] = 'read' in end ? ['read', end.read] : 'create' in end ? ['create', end.create] : ['connect', end.connect];
  try {
    await runTool(helper, [fdQmpSocket, mode, target, command], { timeoutMs: 30_000 });
  } catch (e) {
    const detail = e instanceof ForkdError ? String(e.details?.stderr_tail ?? e.message).trim() : String(e);
    throw new ForkdError(failure, `${command} through a descriptor (${mode} ${target}) failed: ${detail}`, { target }, { cause: e });
  }
}


/** How often a wait asks QEMU again: migrations of a paused guest finish in milliseconds. */
const POLL_MS = 2;

export interface QmpStatusWait {
  /** What is polled: the guest's run state or the migration's status. */
  query: 'query-status' | 'query-migrate';
  /** The status that ends the wait. */
  until: (status: string) => boolean;
  timeoutMs: number;
  /** Names the wait in errors ("saving device state", "restoring device state", ...). */
  what: string;
  /** A failed or cancelled migration ends the wait with this code (checked first, every round). Unset: not checked. */
  failure?: ForkdErrorCode;
}

/** Polls QMP until `until` accepts the status; FORKD_E_TIMEOUT at the deadline. Resolves with the status. */
export async function waitForQmpStatus(qmp: QmpClient, w: QmpStatusWait): Promise<string> {
  const deadline = Date.now() + w.timeoutMs;
  for (;;) {
    const info = (await qmp.execute(w.query)) as { status?: string; 'error-desc'?: string };
    const status = info.status ?? 'none';
    if (w.failure) {
      const mig = w.query === 'query-migrate' ? info : ((await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string });
      if (mig.status === 'failed' || mig.status === 'cancelled') {
        throw new ForkdError(w.failure, `${w.what}: migration ${mig.status}: ${mig['error-desc'] ?? 'no detail'}`);
      }
    }
    if (w.until(status)) return status;
    if (Date.now() > deadline) throw new ForkdError('FORKD_E_TIMEOUT', `${w.what}: still ${status} after ${w.timeoutMs} ms`, { status, timeout_ms: w.timeoutMs });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** What a migration needs of a VM: its QMP channel and its descriptor monitor (vm/vm.ts's Vm is one). */
export interface MigratableVm {
  readonly qmp: QmpClient;
  readonly fdQmpSocket: string;
}

/** Saves a stopped VM's device state to a new file; its RAM lives in a shared file and is not copied (x-ignore-shared). */
export async function saveDeviceState(vm: MigratableVm, file: string, timeoutMs = 60_000): Promise<void> {
  const qmp = vm.qmp;
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  await migrateThroughFd(vm.fdQmpSocket, { create: file }, 'migrate', 'FORKD_E_SNAPSHOT_FAILED');
  await waitForQmpStatus(qmp, { query: 'query-migrate', until: (s) => s === 'completed', timeoutMs, what: 'saving device state', failure: 'FORKD_E_SNAPSHOT_FAILED' });
}
