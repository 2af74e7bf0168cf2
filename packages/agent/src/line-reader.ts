/** Splits a byte stream into lines (UTF-8), calling onLine for each complete line. */
import type { Readable } from 'node:stream';

export function readLines(stream: Readable, onLine: (line: string) => void): void {
  let pending: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      let line: string;
      if (pending.length === 0) {
        line = chunk.toString('utf8', start, nl);
      } else {
        pending.push(chunk.subarray(start, nl));
        line = Buffer.concat(pending).toString('utf8');
        pending = [];
      }
      start = nl + 1;
      try {
        onLine(line);
      } catch {
        /* a bad line must not break the reader */
      }
    }
    if (start < chunk.length) pending.push(Buffer.from(chunk.subarray(start)));
  });
  stream.on('error', () => undefined);
}
