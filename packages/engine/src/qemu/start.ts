/**
 * Starting QEMU: the one way a VM process comes to be. A starter (this process, or the keeper)
 * spawns it under `setpriv --pdeathsig KILL`; startQemu then waits for QMP's greeting, which QEMU
 * sends only once memory, disks and kernel are open, so it is the one wait that catches every
 * start failure.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { QmpClient, type QmpConnectOptions } from '../qmp/client.js';
import { procStartTime } from '../runtime/proc.js';
import { buildQemuArgs, type VmSpec } from './args.js';
import { TailBuffer } from './tail.js';
import { SECCOMP_ARG, jailFor, launchCommand, prepareJailFiles, type JailSpec } from './jail.js';
import { qemuBinary } from './version.js';
import { which } from './which.js';

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

/** What a starter needs to spawn one QEMU. */
export interface QemuStartRequest {
  qemuPath: string;
  args: string[];
  cwd: string;
  stderrCapBytes: number;
  /** Resource confinement applied before QEMU runs (quota/: cgroups, the overlay's size cap). */
  confine?: LaunchConfinement;
  /** The jail to start it in (qemu/jail.ts); absent: no jail. */
  jail?: JailSpec;
  /** Network namespace (a name under /run/netns) QEMU runs in, so it opens the tap there. */
  netns?: string;
}

/**
 * What the launch wrapper does between pdeathsig and QEMU: join cgroups (QEMU's pid written into
 * each cgroup.procs before exec, so no guest code runs outside them) and cap the size of any file
 * QEMU writes (RLIMIT_FSIZE: the disk overlay can grow no larger; SIGXFSZ is ignored so a write past
 * it fails with EFBIG, which the drive's werror=report turns into an I/O error in the guest).
 */
export interface LaunchConfinement {
  cgroupProcs?: string[];
  fileSizeBytes?: number;
  /** Niceness QEMU starts with (a warm-pool child, reniced to 0 by whoever takes it). */
  nice?: number;
}

/** Marks the wrapper's own failures in QEMU's stderr (startQemu turns them into FORKD_E_QUOTA_UNAVAILABLE). */
export const CONFINE_MARK = 'forkd-confine:';
const JOIN_SCRIPT = `trap '' XFSZ; while [ "$1" != -- ]; do echo $$ 2>/dev/null > "$1" || { echo "${CONFINE_MARK} cannot join cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"`;
const CGROUP_PROCS = /^\/[^\0]*\/cgroup\.procs$/;

/** The command words placed before QEMU (and its other wrappers) for a confinement; [] for none. */
export function confinementPrefix(c: LaunchConfinement | undefined, prlimit: string | null, nice: string | null = null): string[] {
  const niceWords = niceWrap(c?.nice, nice);
  if (!c || ((c.cgroupProcs?.length ?? 0) === 0 && c.fileSizeBytes === undefined)) return niceWords;
  for (const f of c.cgroupProcs ?? []) {
    if (!CGROUP_PROCS.test(f) || f.split('/').includes('..')) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not a cgroup.procs path: ${JSON.stringify(f)}`);
  }
  const out = ['/bin/sh', '-c', JOIN_SCRIPT, 'forkd-confine', ...(c.cgroupProcs ?? []), '--'];
  if (c.fileSizeBytes !== undefined) {
    if (!Number.isSafeInteger(c.fileSizeBytes) || c.fileSizeBytes <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `bad file size cap ${c.fileSizeBytes}`);
    if (!prlimit) throw new ForkdError('FORKD_E_QUOTA_UNAVAILABLE', 'cannot apply disk_limit_mib: prlimit not found (apt-get install util-linux)', { tool: 'prlimit' });
    out.push(prlimit, `--fsize=${c.fileSizeBytes}:${c.fileSizeBytes}`, '--');
  }
  return [...out, ...niceWords];
}

function niceWrap(n: number | undefined, nice: string | null): string[] {
  if (n === undefined) return [];
  if (!Number.isInteger(n) || n < 0 || n > 19) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `bad niceness ${n} (0 to 19)`);
  if (!nice) throw new ForkdError('FORKD_E_TOOL_MISSING', 'nice not found (starts warm-pool children at low priority): apt-get install coreutils', { tool: 'nice' });
  return [nice, '-n', String(n), '--'];
}

/** Namespaces a starter enters: only a forkd child's (childNetnsName), never an arbitrary path. */
export const CHILD_NETNS_NAME = /^fk[0-9a-f]{6}-[0-9a-f]{16}$/;

/** The words that start the rest of the launch chain inside a child's network namespace; [] for none. */
async function netnsPrefix(netns: string | undefined): Promise<string[]> {
  if (netns === undefined) return [];
  if (!CHILD_NETNS_NAME.test(netns)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not a forkd child namespace: ${JSON.stringify(netns)}`);
  const nsenter = await which('nsenter');
  if (!nsenter) throw new ForkdError('FORKD_E_TOOL_MISSING', 'nsenter not found (starts QEMU in the child\'s network namespace): apt-get install util-linux', { tool: 'nsenter' });
  return [nsenter, `--net=/run/netns/${netns}`, '--'];
}

/** The process that owns started VMs: QEMU dies with it (pdeathsig), and cleanup judges orphans by it. */
export interface VmOwner {
  pid: number;
  starttime: number;
}

/**
 * Spawns QEMU processes. The direct starter makes them children of this process; the keeper
 * (keeper/client.ts) makes them children of a keeper that outlives a crashed daemon.
 */
export interface QemuStarter {
  owner(): Promise<VmOwner>;
  start(req: QemuStartRequest): Promise<QemuProcess>;
}

let selfOwner: VmOwner | null = null;

/** QEMU as a child of this process under `setpriv --pdeathsig KILL`: it dies when we die, even by SIGKILL. */
export const directStarter: QemuStarter = {
  async owner() {
    selfOwner ??= { pid: process.pid, starttime: (await procStartTime(process.pid)) ?? 0 };
    return selfOwner;
  },
  async start(req) {
    return spawnQemu(req);
  },
};

/**
 * Spawns QEMU through its launch wrappers (qemu/jail.ts: mount view, setpriv with pdeathsig and
 * the uid drop) with bounded stderr capture. Shared by both starters.
 */
export async function spawnQemu(req: QemuStartRequest, onOutput?: (d: Buffer) => void): Promise<QemuProcess> {
  const stderr = new TailBuffer(req.stderrCapBytes);
  // Outermost first: confinement (cgroups joined and the file size capped as root, before any uid drop),
  // then the child's network namespace (nsenter, as root: QEMU opens its tap there), then the jail's
  // wrappers (mount view, setpriv with pdeathsig and the uid drop, THP off), then QEMU.
  const confine = confinementPrefix(req.confine, req.confine?.fileSizeBytes !== undefined ? await which('prlimit') : null, req.confine?.nice !== undefined ? await which('nice') : null);
  const netnsWrap = await netnsPrefix(req.netns);
  const [program, ...argv] = [...confine, ...netnsWrap, ...(await launchCommand(req.qemuPath, req.args, req.cwd, req.jail))];
  const child = spawn(program!, argv, { cwd: req.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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

export interface StartOptions {
  /** The VM's run directory (QEMU's cwd). */
  runDir: string;
  /** Bytes of stderr kept. Default 16 KiB. */
  stderrCapBytes?: number;
  /** Default qemu-system-x86_64 (looked up on PATH). */
  qemuBinary?: string;
  /** How long QEMU may take to greet on QMP. Default 15 s. */
  startTimeoutMs?: number;
  /** Who spawns the process (default: this process, under pdeathsig). */
  starter?: QemuStarter;
  confine?: LaunchConfinement;
  qmp?: QmpConnectOptions;
  /** Network namespace QEMU runs in (where its tap is). */
  netns?: string;
}

function exitedAtStart(proc: QemuProcess, ex: QemuExit): ForkdError {
  const tail = proc.stderrTail();
  if (tail.includes(CONFINE_MARK)) return new ForkdError('FORKD_E_QUOTA_UNAVAILABLE', `QEMU could not be confined: ${tail.slice(tail.indexOf(CONFINE_MARK) + CONFINE_MARK.length).trim().split('\n')[0]}`, { stderr_tail: tail });
  return new ForkdError('FORKD_E_VM_START_FAILED', `QEMU exited at start (${ex.signal ?? `code ${ex.code}`}): ${proc.stderrTail().trim() || '(no stderr)'}`, { exit_code: ex.code, signal: ex.signal, stderr_tail: proc.stderrTail(), args: proc.args });
}

/**
 * Starts QEMU and resolves once QMP has greeted and accepted capabilities. A missing binary is
 * FORKD_E_QEMU_NOT_INSTALLED; an exit before the greeting is FORKD_E_VM_START_FAILED with QEMU's
 * stderr. On failure QEMU is killed.
 */
export async function startQemu(spec: VmSpec, opts: StartOptions): Promise<{ proc: QemuProcess; qmp: QmpClient }> {
  const jail = await jailFor(spec, opts.runDir);
  const args = buildQemuArgs(jail.mode === 'off' ? spec : { ...spec, seccomp: SECCOMP_ARG });
  const binary = opts.qemuBinary ?? qemuBinary();
  const qemuPath = await which(binary);
  if (!qemuPath) throw new ForkdError('FORKD_E_QEMU_NOT_INSTALLED', `${binary} not found: apt-get install qemu-system-x86`, { binary });
  // A stale socket from an earlier run would answer nothing; QMP's connect retries until QEMU binds its own.
  await fs.rm(spec.qmpSocket, { force: true });
  await prepareJailFiles(jail, opts.runDir);
  const proc = await (opts.starter ?? directStarter).start({ qemuPath, args, cwd: opts.runDir, stderrCapBytes: opts.stderrCapBytes ?? 16 * 1024, jail, ...(opts.confine ? { confine: opts.confine } : {}), ...(opts.netns ? { netns: opts.netns } : {}) });
  const connectP = QmpClient.connect(spec.qmpSocket, { timeoutMs: opts.startTimeoutMs ?? 15_000, ...opts.qmp });
  try {
    const qmp = await Promise.race([connectP, proc.exited.then((ex) => Promise.reject(exitedAtStart(proc, ex)))]);
    return { proc, qmp };
  } catch (e) {
    connectP.then((c) => c.close(), () => undefined);
    // The socket may reset a moment before the process is reaped: prefer QEMU's own words.
    const ex = await Promise.race([proc.exited, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    proc.kill('SIGKILL');
    await proc.exited;
    if (ex) throw exitedAtStart(proc, ex);
    throw e;
  }
}
