/**
 * QEMU migrations as the engine uses them: device state saved to a file (snapshot create, branch
 * receiver), loaded from one (restore), and streamed between two QEMUs (branch). QMP reports
 * progress only when asked, so every wait here is one poll loop with a deadline.
 */
import { ForkdError, type ForkdErrorCode } from '@forkd/protocol';
import type { QmpClient } from '../qmp/client.js';

/** How often a wait asks QEMU again: migrations of a paused guest finish in milliseconds. */
const POLL_MS = 2;

/**
 * A path as it stands in an `exec:` migration URI, which QEMU hands to /bin/sh: single-quoted,
 * and only plain path characters, so nothing in it can reach the shell.
 */
export function quotePathForMigrationUri(p: string): string {
  if (!/^[A-Za-z0-9_./@%+=:,-]+$/.test(p)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unsafe path for a migration URI: ${p}`);
  return `'${p}'`;
}

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

/** Saves a stopped VM's device state to a file; its RAM lives in a shared file and is not copied (x-ignore-shared). */
export async function saveDeviceState(qmp: QmpClient, file: string, timeoutMs = 60_000): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  await qmp.execute('migrate', { uri: `exec:cat > ${quotePathForMigrationUri(file)}` });
  await waitForQmpStatus(qmp, { query: 'query-migrate', until: (s) => s === 'completed', timeoutMs, what: 'saving device state', failure: 'FORKD_E_SNAPSHOT_FAILED' });
}
