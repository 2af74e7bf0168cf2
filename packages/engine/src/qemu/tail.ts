/** Keeps the last `cap` bytes written to it: bounded capture of a child's output. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the front because of the cap. */
  dropped = 0;

  constructor(readonly cap: number) {}

  write(chunk: Buffer): void {
    if (this.cap <= 0) {
      this.dropped += chunk.length;
      return;
    }
    if (chunk.length >= this.cap) {
      this.dropped += this.size + chunk.length - this.cap;
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.cap))];
      this.size = this.cap;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.cap) {
      const first = this.chunks[0]!;
      const excess = this.size - this.cap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}
