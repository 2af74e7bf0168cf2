/**
 * The embedded default: clients on this machine (CLI, MCP server) find the local daemon on its
 * socket, or start one in the background (it exits by itself after 15 idle minutes).
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ForkdError } from '@forkd/protocol';
import { forkdHome, socketAnswers } from '@forkd/engine';

export const DEFAULT_IDLE_EXIT_SECS = 900;

export function defaultSocket(home = forkdHome()): string {
  return path.join(home, 'forkd.sock');
}

/** Returns the socket of a running local daemon, starting one if none answers. */
export async function ensureLocalDaemon(o: { home?: string; socket?: string; timeoutMs?: number } = {}): Promise<{ socket: string; started: boolean }> {
  const home = o.home ? path.resolve(o.home) : forkdHome();
  const socket = o.socket ?? defaultSocket(home);
  if (await socketAnswers(socket)) return { socket, started: false };
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const main = path.join(path.dirname(here), fromSource ? 'main.ts' : 'main.js');
  const logDir = path.join(home, 'daemon');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const fd = openSync(path.join(logDir, 'daemon.log'), 'a', 0o600);
  try {
    const child = spawn(process.execPath, [...(fromSource ? ['--conditions=source', '--import', 'tsx'] : []), main, '--socket', socket, '--home', home, '--idle-exit-secs', String(DEFAULT_IDLE_EXIT_SECS)], {
      detached: true,
      stdio: ['ignore', 'ignore', fd],
      cwd: path.dirname(here),
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (await socketAnswers(socket)) return { socket, started: true };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ForkdError('FORKD_E_UNAVAILABLE', `started a forkd daemon but it did not answer on ${socket}; see ${path.join(logDir, 'daemon.log')}`);
}
