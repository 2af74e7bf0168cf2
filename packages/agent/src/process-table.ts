/** Background processes by handle, bounded by LIMITS.maxBackgroundProcesses. */
import { ForkdError, LIMITS, type ProcessInfoT } from '@forkd/protocol';
import type { RunningProcess } from './process-runner.js';

export class ProcessTable {
  private readonly procs = new Map<string, RunningProcess>();
  private next = 1;

  /** Makes room for one more, forgetting the oldest finished process if needed. */
  ensureRoom(): void {
    if (this.procs.size < LIMITS.maxBackgroundProcesses) return;
    for (const [h, p] of this.procs) {
      if (!p.running) {
        this.procs.delete(h);
        return;
      }
    }
    throw new ForkdError('FORKD_E_RATE_LIMITED', `too many background processes (${LIMITS.maxBackgroundProcesses} running)`);
  }

  add(p: RunningProcess): string {
    const handle = `p${this.next++}`;
    this.procs.set(handle, p);
    return handle;
  }

  get(handle: string): RunningProcess {
    const p = this.procs.get(handle);
    if (!p) throw new ForkdError('FORKD_E_NOT_FOUND', `no background process with handle ${handle}`);
    return p;
  }

  list(): ProcessInfoT[] {
    return [...this.procs].map(([handle, p]) => ({
      handle,
      pid: p.pid,
      command: p.command,
      started_at_ms: p.startedAtMs,
      running: p.running,
      exit_code: p.exitCode,
      signal: p.exitSignal,
    }));
  }

  killAll(): void {
    for (const p of this.procs.values()) if (p.running) p.kill('SIGKILL');
  }
}
