/**
 * Test mode: listen on a Unix socket and serve one host at a time. A new connection replaces the
 * current one; a disconnect is treated like the guest port's EOF.
 */
import fs from 'node:fs';
import net from 'node:net';
import { pumpWithGate, socketSink, type Transport, type TransportEvents } from './transport.js';

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
    ev.onConnect(socketSink(sock, 'socket closed'));
    sock.on('data', (chunk: Buffer) => {
      if (this.current !== sock) return;
      pumpWithGate(sock, ev, chunk);
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
