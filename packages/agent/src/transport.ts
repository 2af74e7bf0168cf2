/** What the frame server needs from a byte channel to the host. */
import type net from 'node:net';
import type { ByteSink } from './writer.js';

export interface TransportEvents {
  /** Bytes from the host. */
  onData(chunk: Buffer): void;
  /** A host connected (listen mode) or the first bytes after an EOF arrived (port mode). */
  onConnect(sink: ByteSink): void;
  /** The host went away (EOF on the port, socket closed). */
  onDisconnect(): void;
  /** Resolves when the server is ready to accept more requests (bounds in-flight work). */
  readGate(): Promise<void>;
}

export interface Transport {
  start(events: TransportEvents): Promise<void>;
  close(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A sink on a socket whose writes settle on close too, so a write caught by a disconnect never stalls the writer. */
export function socketSink(sock: net.Socket, closedMessage: string): ByteSink {
  return {
    write: (buf) =>
      new Promise<void>((resolve, reject) => {
        if (sock.destroyed) return reject(new Error(closedMessage));
        const onClose = (): void => reject(new Error(closedMessage));
        sock.once('close', onClose);
        sock.write(buf, (err) => {
          sock.off('close', onClose);
          if (err) reject(err);
          else resolve();
        });
      }),
  };
}

/** Feeds a socket's bytes to the server and stops reading while the server has no room (bounds in-flight work). */
export function pumpWithGate(sock: net.Socket, ev: TransportEvents, chunk: Buffer): void {
  ev.onData(chunk);
  let ready = false;
  const gate = ev.readGate().then(() => {
    ready = true;
  });
  void Promise.resolve().then(() => {
    if (ready) return;
    sock.pause();
    void gate.then(() => sock.resume());
  });
}
