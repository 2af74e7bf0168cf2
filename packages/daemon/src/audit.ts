/**
 * Audit log: one JSON line per authenticated request (time, caller's token id, remote address,
 * method, path, resource, status, latency). Append-only; the token itself is never written.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';

export interface AuditRecord {
  time: string;
  caller: string;
  remote: string;
  method: string;
  path: string;
  route: string | null;
  resource: string | null;
  status: number;
  latency_ms: number;
  request_id: string;
}

export class AuditLog {
  private stream: WriteStream | null;

  constructor(file: string | null) {
    if (file) {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      this.stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
      this.stream.on('error', () => undefined);
    } else this.stream = null;
  }

  write(r: AuditRecord): void {
    this.stream?.write(`${JSON.stringify(r)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }
}
