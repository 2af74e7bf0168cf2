/**
 * Client of the persistent system helper (forkd-sys, compiled from sys-helper.c): sets the clock
 * and reseeds the kernel RNG, which Node cannot do itself. Spawned at agent start-up, before any
 * snapshot, so restored children pay no exec.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readLines } from './line-reader.js';

const COMMAND_TIMEOUT_MS = 5000;

export class SysHelper {
  private proc: ChildProcess | null = null;
  private readonly pending = new Map<number, (reply: string) => void>();
  private nextId = 1;

  constructor(private readonly binary: string) {}

  start(): void {
    if (this.proc) return;
    try {
      const child = spawn(this.binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
      this.proc = child;
      child.on('error', () => undefined);
      child.stdin?.on('error', () => undefined);
      readLines(child.stdout!, (line) => {
        const sp = line.indexOf(' ');
        const id = Number(line.slice(0, sp));
        const cb = this.pending.get(id);
        if (cb) {
          this.pending.delete(id);
          cb(line.slice(sp + 1));
        }
      });
      child.on('exit', () => {
        if (this.proc === child) this.proc = null;
        for (const cb of this.pending.values()) cb('err helper exited');
        this.pending.clear();
      });
    } catch {
      this.proc = null;
    }
  }

  private command(cmd: string): Promise<string> {
    if (!this.proc) this.start();
    const proc = this.proc;
    if (!proc?.stdin) return Promise.resolve('err helper not running');
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve('err helper timed out');
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      proc.stdin!.write(`${id} ${cmd}\n`);
    });
  }

  async ping(): Promise<boolean> {
    return (await this.command('ping')) === 'ok pong';
  }

  /** Sets CLOCK_REALTIME. Resolves to null on success, else the reason. */
  async setClock(ms: number): Promise<string | null> {
    const r = await this.command(`clock ${timespec(ms)}`);
    return r === 'ok' ? null : r;
  }

  /** Clock + kernel RNG in one round trip. Resolves to null on success, else the reason. */
  async restoreSystem(ms: number, bytes: Buffer): Promise<string | null> {
    const r = await this.command(`restore ${timespec(ms)} ${bytes.toString('hex')}`);
    return r === 'ok' ? null : r;
  }

  /** Credits entropy to the kernel RNG and forces a CRNG reseed. */
  async addEntropy(bytes: Buffer): Promise<string | null> {
    const r = await this.command(`entropy ${bytes.toString('hex')}`);
    return r === 'ok' ? null : r;
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
  }
}

/** "<sec> <nsec>" for a wall-clock time in ms. */
function timespec(ms: number): string {
  const sec = Math.floor(ms / 1000);
  return `${sec} ${Math.min(Math.round((ms - sec * 1000) * 1e6), 999_999_999)}`;
}
