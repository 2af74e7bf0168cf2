/**
 * Audit log: one JSON line per authenticated request (time, caller's identity and scope, remote address,
 * method, path, resource, status, latency). Append-only; the token itself is never written.
 * Unauthenticated requests are rate-limited (anyone can send them: they must not fill the disk);
 * the next line written after a suppression says how many were left out.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';

export interface AuditRecord {
  time: string;
  /** The identity (never the token). */
  caller: string;
  scope?: string;
  remote: string;
  method: string;
  path: string;
  route: string | null;
  resource: string | null;
  status: number;
  latency_ms: number;
  request_id: string;
  /** Unauthenticated requests left out of the log since the previous unauthenticated line. */
  suppressed_before?: number;
}

/** Unauthenticated requests written per window; the rest are only counted. */
export const UNAUTHENTICATED_AUDIT_LINES = { perWindow: 20, windowMs: 60_000 } as const;

export class AuditLog {
  private stream: WriteStream | null;
  private windowStart = 0;
  private windowLines = 0;
  private suppressed = 0;

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

  writeUnauthenticated(r: AuditRecord, now = Date.now()): void {
    if (now - this.windowStart >= UNAUTHENTICATED_AUDIT_LINES.windowMs) {
      this.windowStart = now;
      this.windowLines = 0;
    }
    if (this.windowLines >= UNAUTHENTICATED_AUDIT_LINES.perWindow) {
      this.suppressed++;
      return;
    }
    this.windowLines++;
    this.write(this.suppressed > 0 ? { ...r, suppressed_before: this.suppressed } : r);
    this.suppressed = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }
}
