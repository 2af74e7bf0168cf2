/**
 * The embedded default for clients on this machine (CLI, MCP server, SDK users): find the local
 * daemon on its socket, or start `forkd serve` in the background (it exits by itself after 15 idle
 * minutes, or FORKD_DAEMON_IDLE_EXIT_SECS). The daemon is started by path, so this module needs
 * neither the daemon nor the engine package.
 */
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ForkdError, forkdHome, isForkdErrorCode } from '@forkd/protocol';

export const DEFAULT_IDLE_EXIT_SECS = 900;

export interface LocalDaemonOptions {
  home?: string;
  socket?: string;
  timeoutMs?: number;
  /** The forkd CLI entry to run `serve` with (a .js bin, or a .ts source run through tsx); default: @forkd/cli's. */
  serveEntry?: string;
}

function idleExitSecs(): number {
  const v = Number(process.env.FORKD_DAEMON_IDLE_EXIT_SECS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_IDLE_EXIT_SECS;
}

/** Whether something accepts connections on a Unix socket path (a live server, not a stale file). */
export function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection(socketPath);
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      resolve(false);
    });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export function defaultSocket(home = forkdHome()): string {
  return path.join(home, 'forkd.sock');
}

/** The CLI's entry: its TypeScript source when this module runs from source (tests), else its bin. */
function cliEntry(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('@forkd/cli/package.json');
  } catch {
    throw new ForkdError('FORKD_E_UNAVAILABLE', 'no forkd daemon answers and the forkd CLI (@forkd/cli) is not installed to start one: install it, run `forkd serve`, or set FORKD_URL');
  }
  const fromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  const entry = path.join(path.dirname(pkg), fromSource ? 'src/index.ts' : 'bin/forkd.js');
  if (!existsSync(entry)) throw new ForkdError('FORKD_E_UNAVAILABLE', `cannot start a forkd daemon: ${entry} is missing (build the CLI: npm run build)`);
  return entry;
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

/** Returns the socket of a running local daemon, starting one if none answers. */
export async function ensureLocalDaemon(o: LocalDaemonOptions = {}): Promise<{ socket: string; started: boolean }> {
  const home = o.home ? path.resolve(o.home) : forkdHome();
  const socket = o.socket ?? defaultSocket(home);
  if (await socketAnswers(socket)) return { socket, started: false };
  const entry = o.serveEntry ?? cliEntry();
  const tsx = entry.endsWith('.ts') ? ['--conditions=source', '--import', 'tsx'] : [];
  const logDir = path.join(home, 'daemon');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(logDir, 'daemon.log');
  const fd = openSync(logFile, 'a', 0o600);
  let exited = false;
  try {
    const child = spawn(process.execPath, [...tsx, entry, '--home', home, 'serve', '--socket', socket, '--idle-exit-secs', String(idleExitSecs())], {
      detached: true,
      stdio: ['ignore', 'ignore', fd],
      // The entry's folder: tsx and the workspace packages resolve from there, and the daemon holds no caller's cwd.
      cwd: path.dirname(entry),
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
  throw new ForkdError('FORKD_E_UNAVAILABLE', `started a forkd daemon but it did not answer on ${socket}; see ${logFile}`);
}
