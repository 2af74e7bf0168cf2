import type net from 'node:net';
import { ForkdError } from '@forkd/protocol';

/**
 * Splits a byte stream into '\n'-terminated lines (a trailing '\r' is dropped, empty lines are
 * skipped). Bytes are kept until a line is complete, so a UTF-8 sequence split across chunks
 * decodes correctly. A line longer than maxLineBytes throws instead of growing without bound.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(readonly maxLineBytes: number) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.append(chunk.subarray(start, nl));
      const line = this.take();
      if (line.length > 0) lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
    return lines;
  }

  /** Bytes held for an unfinished line. */
  get buffered(): number {
    return this.pending;
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    if (this.pending + b.length > this.maxLineBytes) {
      this.parts = [];
      this.pending = 0;
      throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `line longer than ${this.maxLineBytes} bytes`, { max_line_bytes: this.maxLineBytes });
    }
    this.parts.push(Buffer.from(b));
    this.pending += b.length;
  }

  private take(): string {
    let s = Buffer.concat(this.parts, this.pending).toString('utf8');
    this.parts = [];
    this.pending = 0;
    if (s.endsWith('\r')) s = s.slice(0, -1);
    return s;
  }
}

/** Calls onLine for every line that arrives on sock; a line longer than maxLineBytes ends the connection. */
export function readLines(sock: net.Socket, maxLineBytes: number, onLine: (line: string) => void): void {
  const framer = new LineFramer(maxLineBytes);
  sock.on('data', (d: Buffer) => {
    let lines: string[];
    try {
      lines = framer.push(d);
    } catch {
      sock.destroy();
      return;
    }
    for (const line of lines) onLine(line);
  });
}
