/** Bounded output collectors: keep the first N bytes (exec) or the newest N bytes (background). */

export interface OutputCollector {
  push(chunk: Buffer): void;
  readonly truncated: boolean;
  /** Output was cut before it reached this collector (forkd-spawn caps it itself). */
  markTruncated(): void;
  text(): string;
}

export class HeadBuffer implements OutputCollector {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly cap: number) {}

  markTruncated(): void {
    this.truncated = true;
  }

  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(Buffer.from(part));
    this.size += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export class RingBuffer implements OutputCollector {
  private readonly buf: Buffer;
  private start = 0;
  private size = 0;
  truncated = false;

  constructor(private readonly cap: number) {
    this.buf = Buffer.alloc(cap);
  }

  markTruncated(): void {
    this.truncated = true;
  }

  push(chunk: Buffer): void {
    if (chunk.length >= this.cap) {
      if (chunk.length > this.cap || this.size > 0) this.truncated = true;
      chunk.copy(this.buf, 0, chunk.length - this.cap);
      this.start = 0;
      this.size = this.cap;
      return;
    }
    const overflow = this.size + chunk.length - this.cap;
    if (overflow > 0) {
      this.truncated = true;
      this.start = (this.start + overflow) % this.cap;
      this.size -= overflow;
    }
    let end = (this.start + this.size) % this.cap;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.cap - end);
      chunk.copy(this.buf, end, off, off + n);
      off += n;
      end = (end + n) % this.cap;
    }
    this.size += chunk.length;
  }

  bytes(): Buffer {
    const first = this.buf.subarray(this.start, Math.min(this.start + this.size, this.cap));
    const rest = this.size - first.length;
    return rest > 0 ? Buffer.concat([first, this.buf.subarray(0, rest)]) : Buffer.from(first);
  }

  text(): string {
    return this.bytes().toString('utf8');
  }
}
