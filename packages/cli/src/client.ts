/**
 * How CLI commands reach the daemon: --daemon-url/--daemon-token (or FORKD_URL/FORKD_TOKEN), else
 * the local daemon on its socket, started on demand (it exits by itself when idle).
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Engine } from '@forkd/engine';
import { Controller } from '@forkd/sdk';
import { ensureLocalDaemon } from '@forkd/sdk/local';
import { ForkdError } from '@forkd/protocol';

export interface DaemonFlags {
  daemonUrl?: string;
  daemonToken?: string;
  home?: string;
}

/** This program's own entry (source under tsx, else the build): the daemon it starts is `forkd serve`. */
const SELF = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './index.ts' : './index.js', import.meta.url));

export async function daemonClient(f: DaemonFlags): Promise<Controller> {
  const url = f.daemonUrl ?? process.env.FORKD_URL;
  const token = f.daemonToken ?? process.env.FORKD_TOKEN;
  if (url) return new Controller({ url, ...(token ? { token } : {}) });
  const { socket } = await ensureLocalDaemon({ serveEntry: SELF, ...(f.home ? { home: f.home } : {}) });
  return new Controller({ socketPath: socket, ...(token ? { token } : {}) });
}

export type Runner = <A extends unknown[]>(fn: (...args: A) => Promise<number | void>) => (...args: A) => Promise<void>;

/** What command registrations need: the action wrapper and the two roads (daemon, or --local engine). */
export interface CliContext {
  run: Runner;
  client: () => Promise<Controller>;
  engine: () => Engine;
}

/** The `--local` flag of verbs that can also run the engine in this process. */
export function localFlag(cmd: Command, why = 'run the engine in this process instead of through the daemon'): Command {
  return cmd.option('--local', why);
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
