/**
 * The daemon's side of the keeper (main.ts): attach (starting a keeper if none runs), start QEMU
 * through it (it is a QemuStarter), and learn which VMs it already holds from an earlier daemon (for re-adoption).
 */
import type net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { openSync, closeSync, constants as fsc } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ForkdError, isForkdErrorCode } from '@forkd/protocol';
import { readLines } from '../util/line-framer.js';
import { connectUnixSocket, connectUnixSocketWithRetry } from '../util/unix-socket.js';
import { TailBuffer } from '../qemu/tail.js';
import { processHandle, type QemuStartRequest, type QemuExit, type QemuStarter, type QemuProcess, type VmOwner } from '../qemu/start.js';
import { ensureRunDir, ensureRunDirSync } from '../runtime/dir.js';
import { procStartTime } from '../runtime/proc.js';
import { KEEPER_PROTOCOL, KeeperMessage, MAX_KEEPER_LINE, keeperSocketPath, type KeeperVmT } from './protocol.js';

export interface KeeperAttachOptions {
  /** Identifies the daemon instance (its state file path): one keeper per key. */
  key: string;
  /** How long the keeper holds VMs after its daemon disappears. */
  graceMs: number;
  /** Keeper's own log (stderr). Default: <run dir>/keeper-<key>.log. */
  logFile?: string;
  attachTimeoutMs?: number;
}

interface Tracked {
  proc: QemuProcess;
  /** The pid's start time when tracked: a reused pid is never signalled. */
  started: Promise<number | null>;
  resolveExit: (e: QemuExit) => void;
  stderr: TailBuffer;
}

/** Emits 'lost' (the keeper went away: every VM it held is dead). */
export class KeeperClient extends EventEmitter implements QemuStarter {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly tracked = new Map<number, Tracked>();
  private closed = false;
  private detaching = false;
  keeperPid = 0;
  private keeperStart = 0;
  /** VMs the keeper already held when we attached (an earlier daemon's), by pid. */
  readonly inherited = new Map<number, KeeperVmT>();

  private constructor(private readonly sock: net.Socket, readonly socketPath: string) {
    super();
    readLines(sock, MAX_KEEPER_LINE, (line) => this.onLine(line));
    sock.on('error', () => undefined);
    sock.on('close', () => this.onClose());
  }

  static async attach(opts: KeeperAttachOptions): Promise<KeeperClient> {
    await ensureRunDir(); // a keeper socket in a dir someone else controls could be theirs
    const socketPath = keeperSocketPath(opts.key);
    const timeoutMs = opts.attachTimeoutMs ?? 15_000;
    let sock = await connectUnixSocket(socketPath, timeoutMs).catch(() => null);
    if (!sock) {
      spawnKeeper(socketPath, opts);
      sock = await connectUnixSocketWithRetry(socketPath, { timeoutMs, intervalMs: 25 }).catch(() => {
        throw new ForkdError('FORKD_E_UNAVAILABLE', `the VM keeper did not start listening on ${socketPath}`);
      });
    }
    const client = new KeeperClient(sock, socketPath);
    await client.hello();
    return client;
  }

  private async hello(): Promise<void> {
    const r = await this.request({ op: 'hello', version: KEEPER_PROTOCOL, client_pid: process.pid });
    this.keeperPid = Number(r.keeper_pid);
    this.keeperStart = Number(r.keeper_starttime);
    for (const vm of (r.vms as KeeperVmT[] | undefined) ?? []) {
      this.inherited.set(vm.pid, vm);
      this.track(vm.pid, vm.args);
    }
  }

  async owner(): Promise<VmOwner> {
    return { pid: this.keeperPid, starttime: this.keeperStart };
  }

  async start(req: QemuStartRequest): Promise<QemuProcess> {
    const r = await this.request({ op: 'launch', qemu_path: req.qemuPath, args: req.args, cwd: req.cwd, stderr_cap: req.stderrCapBytes, ...(req.confine ? { confine: req.confine } : {}), ...(req.jail ? { jail: req.jail } : {}), ...(req.netns ? { netns: req.netns } : {}) });
    return this.track(Number(r.pid), req.args, req.stderrCapBytes).proc;
  }

  /** A process handle for a VM the keeper held when we attached. */
  processOf(pid: number): QemuProcess | null {
    return this.tracked.get(pid)?.proc ?? null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Lets go without stopping anything: the keeper holds the VMs for its grace period. */
  detach(): void {
    this.detaching = true;
    this.sock.end();
  }

  /** Kills every VM the keeper holds and stops it. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.detaching = true;
    await this.request({ op: 'shutdown' }, 30_000).catch(() => undefined);
    this.sock.destroy();
  }

  private track(pid: number, args: string[], cap = 16 * 1024): Tracked {
    let resolveExit!: (e: QemuExit) => void;
    let hasExited = false;
    const exited = new Promise<QemuExit>((r) => {
      resolveExit = (e) => {
        hasExited = true;
        r(e);
      };
    });
    const stderr = new TailBuffer(cap);
    const proc = processHandle(pid, args, exited, () => hasExited, () => stderr.toString());
    const t: Tracked = { proc, resolveExit, stderr, started: procStartTime(pid) };
    this.tracked.set(pid, t);
    return t;
  }

  private request(body: Record<string, unknown>, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new ForkdError('FORKD_E_UNAVAILABLE', 'the VM keeper connection is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ForkdError('FORKD_E_TIMEOUT', `the VM keeper did not answer ${String(body.op)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  private onLine(line: string): void {
    let msg;
    try {
      msg = KeeperMessage.safeParse(JSON.parse(line));
    } catch {
      return;
    }
    if (!msg.success) return;
    const m = msg.data;
    if ('ev' in m) {
      const t = this.tracked.get(m.pid);
      if (!t) return;
      if (m.ev === 'stderr') t.stderr.write(Buffer.from(m.data, 'utf8'));
      else {
        this.tracked.delete(m.pid);
        t.resolveExit({ code: m.code, signal: m.signal as NodeJS.Signals | null });
      }
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m as Record<string, unknown>);
    else if (m.error.code === 'busy') p.reject(new ForkdError('FORKD_E_CONFLICT', m.error.message));
    else p.reject(new ForkdError(isForkdErrorCode(m.error.code) ? m.error.code : 'FORKD_E_INTERNAL', `VM keeper: ${m.error.message}`));
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new ForkdError('FORKD_E_UNAVAILABLE', 'the VM keeper connection closed'));
    this.pending.clear();
    if (this.detaching) return;
    // The keeper is gone, so its VMs died with it (pdeathsig). Make sure (only a pid that is still
    // the same process: a dead QEMU's pid may belong to anything by now), then report them exited.
    for (const t of this.tracked.values()) {
      const pid = t.proc.pid;
      void Promise.all([t.started, procStartTime(pid)]).then(([then, now]) => {
        if (then !== null && now === then) process.kill(pid, 'SIGKILL');
      }).catch(() => undefined);
      t.resolveExit({ code: null, signal: 'SIGKILL' });
    }
    this.tracked.clear();
    this.emit('lost');
  }
}

/** Starts a keeper in its own session (a terminal's Ctrl-C or the daemon's death do not reach it). */
function spawnKeeper(socketPath: string, opts: KeeperAttachOptions): void {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const main = path.join(path.dirname(here), fromSource ? 'main.ts' : 'main.js');
  const args = fromSource ? ['--conditions=source', '--import', 'tsx', main] : [main];
  const logFile = opts.logFile ?? socketPath.replace(/\.sock$/, '.log');
  ensureRunDirSync();
  const fd = openSync(logFile, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
  try {
    const child = spawn(process.execPath, [...args, '--socket', socketPath, '--grace-ms', String(opts.graceMs)], {
      detached: true,
      stdio: ['ignore', 'ignore', fd],
      cwd: path.dirname(here), // so `--import tsx` resolves from the repository's node_modules
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
}
