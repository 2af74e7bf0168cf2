/**
 * The embedded default: clients on this machine (CLI, MCP server) find the local daemon on its
 * socket, or start one in the background (it exits by itself after 15 idle minutes, or
 * FORKD_DAEMON_IDLE_EXIT_SECS).
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ForkdError, isForkdErrorCode } from '@forkd/protocol';
import { forkdHome, socketAnswers } from '@forkd/engine';

export const DEFAULT_IDLE_EXIT_SECS = 900;

function idleExitSecs(): number {
  const v = Number(process.env.FORKD_DAEMON_IDLE_EXIT_SECS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_IDLE_EXIT_SECS;
}

/** The last lines a failed daemon wrote, and the FORKD_E code it named, if any. */
function lastWords(logFile: string): { code: string | null; tail: string } {
  let tail = '';
  try {
    tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n');
  } catch {
    /* no log */
  }
  return { code: /FORKD_E_[A-Z_]+/.exec(tail)?.[0] ?? null, tail };
}

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
  const logFile = path.join(logDir, 'daemon.log');
  const fd = openSync(logFile, 'a', 0o600);
  let exited = false;
  try {
    const child = spawn(process.execPath, [...(fromSource ? ['--conditions=source', '--import', 'tsx'] : []), main, '--socket', socket, '--home', home, '--idle-exit-secs', String(idleExitSecs())], {
      detached: true,
      stdio: ['ignore', 'ignore', fd],
      cwd: path.dirname(here),
    });
    child.once('exit', () => (exited = true));
    child.unref();
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (await socketAnswers(socket)) return { socket, started: true };
    if (exited) {
      // It gave up (another daemon owns this home, a bad flag...): say why now, not after the timeout.
      const { code, tail } = lastWords(logFile);
      throw new ForkdError(isForkdErrorCode(code) && code !== 'FORKD_E_INTERNAL' ? code : 'FORKD_E_UNAVAILABLE', `the forkd daemon started for ${home} exited: ${tail || `see ${logFile}`}`, { log: logFile });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ForkdError('FORKD_E_UNAVAILABLE', `started a forkd daemon but it did not answer on ${socket}; see ${path.join(logDir, 'daemon.log')}`);
}
