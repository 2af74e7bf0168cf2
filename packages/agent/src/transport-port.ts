/**
 * The guest's virtio-serial port, served from the event loop: the port's fd is wrapped in a libuv
 * pipe handle, so reads wake the main thread through epoll and writes go out non-blocking. (Blocking
 * fs.read/fs.write on the threadpool cost two thread hand-offs per request, and under TCG every
 * hand-off is guest kernel and libuv code that a restored child runs, and translates, afresh.)
 * While no host is connected the port reads EOF: the port is closed, and reopened later (it admits
 * one opener at a time); a new host (a restored child's QEMU) may connect at any time.
 */
import fs from 'node:fs';
import net from 'node:net';
import { pumpWithGate, socketSink, type Transport, type TransportEvents } from './transport.js';

const ERROR_RETRY_MS = 100;

/**
 * How long to wait before reopening a port that read EOF (no host), given how long it has been
 * without one. The port gives no event when a host connects (poll reports HUP until then), so the
 * agent polls: every 20 ms for the first 2 s, which covers a restored child whose host connects
 * right after `cont` (its first answer must not wait), then once a second, so a child nobody is
 * connected to (its daemon down, waiting to be adopted) does not wake its vCPU 50 times a second
 * (bench/README.md#idle-cost). A host that connects later waits up to a second for its first answer.
 */
export function eofRetryMs(hostlessMs: number): number {
  return hostlessMs < 2_000 ? 20 : 1_000;
}

interface PipeHandle {
  open(fd: number): number;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}
// A character device is neither a pipe nor a socket to net.Socket({ fd }) (libuv guesses FILE), but
// uv_pipe_open works on any pollable fd; pipe_wrap is the handle net.Socket itself uses for pipes.
const pipeWrap = (process as unknown as { binding(name: 'pipe_wrap'): PipeWrap }).binding('pipe_wrap');

function openPort(portPath: string): net.Socket {
  const fd = fs.openSync(portPath, 'r+');
  const handle = new pipeWrap.Pipe(pipeWrap.constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) {
    fs.closeSync(fd);
    throw new Error(`cannot serve ${portPath}: uv_pipe_open failed (${err})`);
  }
  // allowHalfOpen: the port's EOF means "no host now", never "shut our side down".
  return new net.Socket({ handle, allowHalfOpen: true, readable: true, writable: true } as net.SocketConstructorOpts);
}

export class PortTransport implements Transport {
  private sock: net.Socket | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  /** When the port last read EOF with no data since (null: a host is connected or may be). */
  private hostlessSince: number | null = null;

  constructor(private readonly portPath: string) {}

  async start(ev: TransportEvents): Promise<void> {
    this.attach(ev, openPort(this.portPath));
  }

  private reopenLater(ev: TransportEvents, ms: number): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.closed) return;
      try {
        this.attach(ev, openPort(this.portPath));
      } catch (err) {
        process.stderr.write(`forkd-agent: port open error: ${(err as Error).message}\n`);
        this.reopenLater(ev, ERROR_RETRY_MS);
      }
    }, ms);
  }

  private attach(ev: TransportEvents, sock: net.Socket): void {
    this.sock = sock;
    let hadData = false;
    let done = false;
    const finish = (retryMs: number): void => {
      if (done) return;
      done = true;
      if (this.sock === sock) this.sock = null;
      sock.destroy();
      if (hadData) ev.onDisconnect();
      this.reopenLater(ev, retryMs);
    };
    ev.onConnect(socketSink(sock, 'port closed'));
    sock.on('data', (chunk: Buffer) => {
      hadData = true;
      this.hostlessSince = null;
      pumpWithGate(sock, ev, chunk);
    });
    sock.on('end', () => {
      const now = performance.now();
      if (hadData || this.hostlessSince === null) this.hostlessSince = now;
      finish(eofRetryMs(now - this.hostlessSince));
    });
    sock.on('error', (err) => {
      if (!this.closed) process.stderr.write(`forkd-agent: port error: ${err.message}\n`);
      finish(ERROR_RETRY_MS);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.sock?.destroy();
  }
}
