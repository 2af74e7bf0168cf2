/** The forkd data directory, as every client and the engine resolve it: $FORKD_HOME, else XDG. */
import os from 'node:os';
import path from 'node:path';

export function forkdHome(): string {
  if (process.env.FORKD_HOME) return path.resolve(process.env.FORKD_HOME);
  const xdg = process.env.XDG_DATA_HOME;
  if (xdg) return path.join(xdg, 'forkd');
  return path.join(os.homedir(), '.local', 'share', 'forkd');
}
