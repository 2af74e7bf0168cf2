import net from 'node:net';
import { EventEmitter } from 'node:events';
import { ForkdError } from '@forkd/protocol';
import { LineFramer } from '../util/line-framer.js';
import { connectUnixSocketWithRetry, type UnixConnectError } from '../util/unix-socket.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  QMP: { version?: { qemu?: { major: number; minor: number; micro: number }; package?: string }; capabilities?: unknown[] };
}

export interface QmpConnectOptions {
  /** Budget for the socket to accept, the greeting and qmp_capabilities together. Default 15 s. */
  timeoutMs?: number;
  /** Delay between connection attempts while QEMU has not created/bound its socket. Default 10 ms. */
  retryIntervalMs?: number;
  /** Longest accepted line (reply or event). Default 8 MiB. */
  maxLineBytes?: number;
  /** Default timeout for execute(). Default 30 s. */
  commandTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: ForkdError) => void;
  timer: NodeJS.Timeout;
}

/** Errors while QEMU has not created or bound its socket yet. */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/**
 * A QMP client over a Unix socket. Replies are matched to commands by id, so events may
 * interleave with replies and several commands may be in flight. Emits 'event' (QmpEvent)
 * and 'close' (ForkdError | null). Never emits 'error'.
 */
export class QmpClient extends EventEmitter {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private closedErr: ForkdError | null = null;
  private framer: LineFramer;
  private greetingWaiter: ((g: QmpGreeting) => void) | null = null;
  greeting: QmpGreeting | null = null;

  private constructor(
    private readonly sock: net.Socket,
    readonly socketPath: string,
    private readonly opts: Required<Pick<QmpConnectOptions, 'maxLineBytes' | 'commandTimeoutMs'>>,
  ) {
    super();
    this.framer = new LineFramer(opts.maxLineBytes);
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (e: NodeJS.ErrnoException) => this.shutdown(new ForkdError('FORKD_E_UNAVAILABLE', `QMP connection ${socketPath} failed: ${e.message}`, { socket: socketPath, errno: e.code })));
    sock.on('close', () => this.shutdown(new ForkdError('FORKD_E_UNAVAILABLE', `QMP connection ${socketPath} closed (QEMU exited?)`, { socket: socketPath })));
  }

  /** Connects (retrying until QEMU's socket accepts), reads the greeting and negotiates capabilities. */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    const sock = await connectUnixSocketWithRetry(socketPath, { timeoutMs, intervalMs: opts.retryIntervalMs ?? 10, retryable: (e) => RETRYABLE.has(e.code ?? '') }).catch((e: UnixConnectError) => {
      if (e.timedOut) throw new ForkdError('FORKD_E_TIMEOUT', `QMP socket ${socketPath} did not accept a connection in time (${e.errno ?? e.message})`, { socket: socketPath });
      throw new ForkdError('FORKD_E_UNAVAILABLE', `cannot connect to QMP socket ${socketPath}: ${e.message}`, { socket: socketPath, errno: e.errno });
    });
    const client = new QmpClient(sock, socketPath, { maxLineBytes: opts.maxLineBytes ?? 8 * 1024 * 1024, commandTimeoutMs: opts.commandTimeoutMs ?? 30_000 });
    try {
      await client.waitGreeting(Math.max(1, deadline - Date.now()));
      await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
      return client;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  get closed(): boolean {
    return this.closedErr !== null;
  }

  /** Runs a QMP command; resolves with its `return` value. QMP errors reject with QEMU's class and desc. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedErr) return Promise.reject(new ForkdError(this.closedErr.code, `${command}: ${this.closedErr.message}`, this.closedErr.details));
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.opts.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ForkdError('FORKD_E_TIMEOUT', `QMP command ${command} got no reply within ${timeoutMs} ms`, { command, timeout_ms: timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) msg.arguments = args;
      this.sock.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /**
   * Resolves with the next event named `name` that satisfies `predicate`. Only events that arrive
   * after the call count: call it before the command that triggers the event.
   */
  waitForEvent(name: string, predicate: (ev: QmpEvent) => boolean = () => true, timeoutMs = 30_000): Promise<QmpEvent> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise<QmpEvent>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (ev: QmpEvent) => {
        if (ev.event !== name) return;
        let ok = false;
        try {
          ok = predicate(ev);
        } catch {
          ok = false;
        }
        if (!ok) return;
        cleanup();
        resolve(ev);
      };
      const onClose = (err: ForkdError | null) => {
        cleanup();
        reject(err ?? new ForkdError('FORKD_E_UNAVAILABLE', `QMP connection closed while waiting for ${name}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ForkdError('FORKD_E_TIMEOUT', `QMP event ${name} did not arrive within ${timeoutMs} ms`, { event: name, timeout_ms: timeoutMs }));
      }, timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Closes the connection; pending commands reject. Idempotent. */
  close(): void {
    this.shutdown(new ForkdError('FORKD_E_UNAVAILABLE', `QMP connection ${this.socketPath} closed by the client`, { socket: this.socketPath }));
  }

  private shutdown(err: ForkdError): void {
    if (this.closedErr) return;
    this.closedErr = err;
    this.sock.destroy();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new ForkdError(err.code, `QMP command ${p.command} aborted: ${err.message}`, { ...err.details, command: p.command }));
    }
    this.emit('close', err);
  }

  private waitGreeting(timeoutMs: number): Promise<QmpGreeting> {
    if (this.greeting) return Promise.resolve(this.greeting);
    return new Promise<QmpGreeting>((resolve, reject) => {
      const onClose = (err: ForkdError) => {
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => {
        this.greetingWaiter = null;
        this.off('close', onClose);
        reject(new ForkdError('FORKD_E_TIMEOUT', `no QMP greeting on ${this.socketPath} within ${timeoutMs} ms (another client connected?)`, { socket: this.socketPath }));
      }, timeoutMs);
      this.once('close', onClose);
      this.greetingWaiter = (g) => {
        clearTimeout(timer);
        this.off('close', onClose);
        resolve(g);
      };
    });
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.framer.push(chunk);
    } catch (e) {
      this.shutdown(new ForkdError('FORKD_E_INTERNAL', `QMP protocol error on ${this.socketPath}: ${(e as Error).message}`, { socket: this.socketPath }));
      return;
    }
    for (const line of lines) {
      if (this.closedErr) return;
      this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(line);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      msg = v as Record<string, unknown>;
    } catch {
      this.shutdown(new ForkdError('FORKD_E_INTERNAL', `QMP sent a line that is not a JSON object: ${line.slice(0, 200)}`, { socket: this.socketPath }));
      return;
    }
    if ('QMP' in msg) {
      this.greeting = msg as unknown as QmpGreeting;
      this.greetingWaiter?.(this.greeting);
      this.greetingWaiter = null;
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    if (typeof msg.id !== 'number') return; // a reply we did not ask for (or to a timed-out command)
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new ForkdError('FORKD_E_INTERNAL', `QMP ${p.command} failed: ${e.class ?? 'Error'}: ${e.desc ?? 'no description'}`, { command: p.command, qmp_class: e.class ?? null, qmp_desc: e.desc ?? null }));
    } else {
      p.resolve(msg.return);
    }
  }
}
