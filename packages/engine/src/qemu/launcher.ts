import { spawn } from 'node:child_process';
import { ForkdError } from '@forkd/protocol';
import { TailBuffer } from './tail.js';
import { which } from './which.js';
import { procStartTime } from '../runtime/proc.js';
import { thpOffWrapper } from './thp.js';

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuProcess {
  pid: number;
  args: string[];
  /** Resolves (never rejects) when QEMU has exited. */
  exited: Promise<QemuExit>;
  /** Whether `exited` has resolved. */
  readonly hasExited: boolean;
  /** The last bytes QEMU wrote to stderr. */
  stderrTail(): string;
  /** Sends a signal unless QEMU has already exited. */
  kill(signal?: NodeJS.Signals): void;
}

export interface LaunchRequest {
  qemuPath: string;
  args: string[];
  cwd: string;
  stderrCapBytes: number;
}

/** The process that owns launched VMs: QEMU dies with it (pdeathsig), and cleanup judges orphans by it. */
export interface VmOwner {
  pid: number;
  starttime: number;
}

/**
 * Starts QEMU processes. The direct launcher makes them children of this process; the keeper
 * launcher (keeper/client.ts) makes them children of a keeper that outlives a crashed daemon.
 */
export interface QemuLauncher {
  owner(): Promise<VmOwner>;
  start(req: LaunchRequest): Promise<QemuProcess>;
}

let selfOwner: VmOwner | null = null;

/** QEMU as a child of this process under `setpriv --pdeathsig KILL`: it dies when we die, even by SIGKILL. */
export const directLauncher: QemuLauncher = {
  async owner() {
    selfOwner ??= { pid: process.pid, starttime: (await procStartTime(process.pid)) ?? 0 };
    return selfOwner;
  },
  async start(req) {
    const setpriv = await which('setpriv');
    if (!setpriv) throw new ForkdError('FORKD_E_TOOL_MISSING', 'setpriv not found (needed so QEMU dies with its owner): apt-get install util-linux', { tool: 'setpriv' });
    return spawnUnderPdeathsig(setpriv, req);
  },
};

/** Spawns `setpriv --pdeathsig KILL -- qemu args` with bounded stderr capture. Shared by both launchers. */
export async function spawnUnderPdeathsig(setpriv: string, req: LaunchRequest, onOutput?: (d: Buffer) => void): Promise<QemuProcess> {
  const stderr = new TailBuffer(req.stderrCapBytes);
  const thpOff = await thpOffWrapper();
  const command = thpOff ? [thpOff, req.qemuPath] : [req.qemuPath];
  const child = spawn(setpriv, ['--pdeathsig', 'KILL', '--', ...command, ...req.args], { cwd: req.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const onData = (d: Buffer) => {
    stderr.write(d);
    onOutput?.(d);
  };
  child.stdout!.on('data', onData); // -nographic: QEMU writes nothing here unless something is wrong
  child.stderr!.on('data', onData);
  let hasExited = false;
  const exited = new Promise<QemuExit>((resolve) => {
    child.once('close', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new ForkdError('FORKD_E_VM_START_FAILED', `could not start QEMU: ${e.message}`, { binary: req.qemuPath })));
  });
  return processHandle(child.pid!, req.args, exited, () => hasExited, () => stderr.toString());
}

/** A QemuProcess over a pid whose exit someone else observes (a child of ours, or of the keeper). */
export function processHandle(pid: number, args: string[], exited: Promise<QemuExit>, isExited: () => boolean, tail: () => string): QemuProcess {
  return {
    pid,
    args,
    exited,
    get hasExited() {
      return isExited();
    },
    stderrTail: tail,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (isExited()) return;
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    },
  };
}
