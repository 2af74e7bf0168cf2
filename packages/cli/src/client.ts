/**
 * How CLI commands reach the daemon: --daemon-url/--daemon-token (or FORKD_URL/FORKD_TOKEN), else
 * the local daemon on its socket, started on demand (it exits by itself when idle).
 */
import { Controller } from '@forkd/sdk';
import { ForkdError } from '@forkd/protocol';
import { ensureLocalDaemon } from '@forkd/daemon';

export interface DaemonFlags {
  daemonUrl?: string;
  daemonToken?: string;
  home?: string;
}

export async function daemonClient(f: DaemonFlags): Promise<Controller> {
  const url = f.daemonUrl ?? process.env.FORKD_URL;
  const token = f.daemonToken ?? process.env.FORKD_TOKEN;
  if (url) return new Controller({ url, ...(token ? { token } : {}) });
  const { socket } = await ensureLocalDaemon(f.home ? { home: f.home } : {});
  return new Controller({ socketPath: socket, ...(token ? { token } : {}) });
}

/** KEY=VALUE pairs (repeatable flags) into a record. */
export function keyValues(pairs: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${what} must be KEY=VALUE; got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}
