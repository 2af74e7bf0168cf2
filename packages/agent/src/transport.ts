/** What the frame server needs from a byte channel to the host. */
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
