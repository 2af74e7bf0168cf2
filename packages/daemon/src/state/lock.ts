/**
 * One writer per state: an exclusive flock(2) on `<state>.lock`, next to the (realpath'd) state
 * file, held for as long as the journal is open.
 *
 * Node has no flock binding, so the lock is taken by `flock(1)` on a file descriptor this process
 * opened and hands to the child as fd 3. flock locks belong to the open file description, not to
 * the process that asked: once the child exits, the lock stays held through our own descriptor and
 * the kernel releases it when that descriptor closes, including on `kill -9` of the daemon. This
 * beats the alternatives:
 * - a long-lived holder child (`flock … sleep infinity`) must be killed with us: pdeathsig is lost
 *   across flock's own fork, so a killed daemon could leave a holder keeping the lock forever;
 * - a pid file with a liveness check races on stale-lock takeover and trusts pid reuse checks;
 * - an abstract socket name is per network namespace, not per file, and any local user can squat it.
 * Node opens files with O_CLOEXEC, so VMs and the keeper never inherit the descriptor.
 */
import { spawn } from 'node:child_process';
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';

/** flock(1) exit status when the lock is held elsewhere (chosen so it cannot be mistaken for a usage error). */
const LOCK_HELD_EXIT = 75;

/**
 * The state file's real path (symlinks resolved, even one that points at a state not yet created),
 * so every name for one state shares one lock and compaction replaces the file, not the link.
 */
export async function realStatePath(file: string): Promise<string> {
  let p = path.resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    await fs.mkdir(path.dirname(p), { recursive: true, mode: 0o700 });
    p = path.join(await fs.realpath(path.dirname(p)), path.basename(p));
    const link = await fs.readlink(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'EINVAL') return null; // absent, or not a symlink
      throw e;
    });
    if (link === null) return p;
    p = path.resolve(path.dirname(p), link);
  }
  throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `too many symlinks resolving the state path ${file}`, { state: file });
}

export class StateLock {
  private constructor(
    /** The realpath of the state file this lock guards. */
    readonly state: string,
    readonly file: string,
    private fh: fs.FileHandle | null,
  ) {}

  /** Takes the lock or fails at once with FORKD_E_CONFLICT naming the holder's pid. */
  static async acquire(stateFile: string): Promise<StateLock> {
    const state = await realStatePath(stateFile);
    const file = `${state}.lock`;
    // No O_TRUNC: the holder's pid stays readable for the error message of a second daemon.
    const fh = await fs.open(file, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    try {
      const status = await flockExclusive(fh.fd);
      if (status === LOCK_HELD_EXIT) {
        const holder = (await fh.readFile('utf8')).trim();
        const pid = /^\d+$/.test(holder) ? Number(holder) : null;
        throw new ForkdError('FORKD_E_CONFLICT', `another forkd daemon${pid === null ? '' : ` (pid ${pid})`} owns the state ${state}: its lock ${file} is held`, { state, lock: file, pid });
      }
      if (status !== 0) throw new ForkdError('FORKD_E_INTERNAL', `flock(1) failed on ${file} (exit status ${status})`, { lock: file });
      await fh.truncate(0);
      await fh.write(`${process.pid}\n`, 0);
      return new StateLock(state, file, fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Releases the lock (closing the descriptor drops the flock). Idempotent. */
  async release(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

function flockExclusive(fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', String(LOCK_HELD_EXIT), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new ForkdError('FORKD_E_TOOL_MISSING', 'flock(1) is not installed (util-linux): it guards the state against a second daemon', { tool: 'flock' }) : e);
    });
    child.once('close', (code) => {
      if (code !== 0 && code !== LOCK_HELD_EXIT && stderr) reject(new ForkdError('FORKD_E_INTERNAL', `flock(1) failed: ${stderr.trim()}`));
      else resolve(code ?? -1);
    });
  });
}
