/**
 * Test mode: listen on a Unix socket and serve one host at a time. A new connection replaces the
 * current one; a disconnect is treated like the guest port's EOF.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Transport, TransportEvents } from './transport.js';

export class ListenTransport implements Transport {
  private server: net.Server | null = null;
  private current: net.Socket | null = null;

  constructor(private readonly socketPath: string) {}

  start(ev: TransportEvents): Promise<void> {
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      /* not there */
    }
    const server = net.createServer((sock) => this.accept(sock, ev));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        server.on('error', (e) => process.stderr.write(`forkd-agent: listen error: ${e.message}\n`));
        resolve();
      });
    });
  }

  private accept(sock: net.Socket, ev: TransportEvents): void {
    const old = this.current;
    if (old) {
      this.current = null;
      old.destroy();
      ev.onDisconnect();
    }
    this.current = sock;
    sock.on('error', () => undefined);
    ev.onConnect({
      write: (buf) =>
        new Promise<void>((resolve, reject) => {
          if (sock.destroyed) return reject(new Error('socket closed'));
          // Settle on close too, so a write caught by a disconnect can never stall the writer.
          const onClose = (): void => reject(new Error('socket closed'));
          sock.once('close', onClose);
          sock.write(buf, (err) => {
            sock.off('close', onClose);
            if (err) reject(err);
            else resolve();
          });
        }),
    });
    sock.on('data', (chunk: Buffer) => {
      if (this.current !== sock) return;
      ev.onData(chunk);
      // Bound in-flight work: stop reading until the server has room again.
      let ready = false;
      const gate = ev.readGate().then(() => {
        ready = true;
      });
      void Promise.resolve().then(() => {
        if (ready) return;
        sock.pause();
        void gate.then(() => sock.resume());
      });
    });
    sock.on('close', () => {
      if (this.current !== sock) return;
      this.current = null;
      ev.onDisconnect();
    });
  }

  async close(): Promise<void> {
    this.current?.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
