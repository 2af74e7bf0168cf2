/**
 * The guest's virtio-serial port. While no host is connected read() returns 0 (EOF) and write()
 * blocks; a new host (a restored child's QEMU) may connect at any time. So: never exit on EOF,
 * reset the decoder, sleep ~20 ms and read again. Reads and writes use the libuv threadpool.
 */
import fs from 'node:fs';
import { sleep, type Transport, type TransportEvents } from './transport.js';
import type { ByteSink } from './writer.js';

const EOF_RETRY_MS = 20;
const READ_CHUNK = 64 * 1024;

function readAsync(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

function writeAsync(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n))));
}

export class PortTransport implements Transport {
  private fd = -1;
  private closed = false;

  constructor(private readonly portPath: string) {}

  async start(ev: TransportEvents): Promise<void> {
    this.fd = fs.openSync(this.portPath, 'r+');
    const fd = this.fd;
    const sink: ByteSink = {
      write: async (buf) => {
        let off = 0;
        while (off < buf.length) off += await writeAsync(fd, buf, off);
      },
    };
    // Writes block in the kernel until a host is there, so the sink can stay set all the time.
    ev.onConnect(sink);
    void this.readLoop(ev);
  }

  private async readLoop(ev: TransportEvents): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let hadData = false;
    while (!this.closed) {
      try {
        await ev.readGate();
        const n = await readAsync(this.fd, buf);
        if (n === 0) {
          if (hadData) {
            hadData = false;
            ev.onDisconnect();
          }
          await sleep(EOF_RETRY_MS);
          continue;
        }
        hadData = true;
        ev.onData(buf.subarray(0, n));
      } catch (err) {
        if (this.closed) return;
        process.stderr.write(`forkd-agent: port read error: ${(err as Error).message}\n`);
        if (hadData) {
          hadData = false;
          ev.onDisconnect();
        }
        await sleep(EOF_RETRY_MS * 5);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
