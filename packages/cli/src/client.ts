/**
 * How CLI commands reach the daemon: --daemon-url/--daemon-token-file (or FORKD_URL/FORKD_TOKEN),
 * else the local daemon on its socket, started on demand (it exits by itself when idle). A token is
 * never taken from argv (visible to every local user in `ps`).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Engine } from '@forkd/engine';
import { Controller } from '@forkd/sdk';
import { ensureLocalDaemon } from '@forkd/sdk/local';
import { ForkdError } from '@forkd/protocol';

export interface DaemonFlags {
  daemonUrl?: string;
  daemonTokenFile?: string;
  home?: string;
}

/** The bearer token: the first non-comment line of --daemon-token-file, else FORKD_TOKEN. */
export function daemonToken(f: DaemonFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (f.daemonTokenFile) {
    let text: string;
    try {
      text = readFileSync(f.daemonTokenFile, 'utf8');
    } catch (e) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot read --daemon-token-file ${f.daemonTokenFile}: ${(e as Error).message}`);
    }
    // The daemon's own token file format works too: the token is the line's first field.
    const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    if (!line) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--daemon-token-file ${f.daemonTokenFile} holds no token`);
    return line.split(/\s+/)[0];
  }
  return env.FORKD_TOKEN?.trim() || undefined;
}

/** `--daemon-token <token>` put the token on argv: refused, pointing at the two ways that do not. */
export function refuseTokenOnArgv(argv: string[]): void {
  const own = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv; // a guest command's own flags are its business
  if (own.some((a) => a === '--daemon-token' || a.startsWith('--daemon-token='))) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--daemon-token is no longer accepted: a token on the command line is visible to every local user (ps). Use --daemon-token-file FILE or the FORKD_TOKEN environment variable');
  }
}

/** This program's own entry (source under tsx, else the build): the daemon it starts is `forkd serve`. */
const SELF = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './index.ts' : './index.js', import.meta.url));

export async function daemonClient(f: DaemonFlags): Promise<Controller> {
  const url = f.daemonUrl ?? process.env.FORKD_URL;
  const token = daemonToken(f);
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
