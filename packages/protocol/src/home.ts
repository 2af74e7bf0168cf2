/** Where forkd keeps its data and where the local daemon listens: the engine, the daemon and the SDKs agree. */
import os from 'node:os';
import path from 'node:path';

/** The local daemon's socket, inside the home. */
export const SOCKET_FILE = 'forkd.sock';

/** FORKD_HOME, else $XDG_DATA_HOME/forkd, else ~/.local/share/forkd. */
export function forkdHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FORKD_HOME) return path.resolve(env.FORKD_HOME);
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, 'forkd');
  return path.join(os.homedir(), '.local', 'share', 'forkd');
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(forkdHome(env), SOCKET_FILE);
}
