/**
 * Serialises outgoing frames onto one byte sink and bounds what is queued. `send` resolves once
 * the frame was written (or dropped because its connection is gone), so a producer that awaits
 * it (streamed exec output) is paced by the host. Frames of an older connection are dropped.
 */
import { encodeFrame } from '@forkd/protocol';

export interface ByteSink {
  /** Writes all of buf; resolves when done, rejects when the connection broke. */
  write(buf: Buffer): Promise<void>;
}

interface Queued {
  buf: Buffer;
  gen: number;
  done: () => void;
}

export const WRITER_HIGH_WATER_BYTES = 8 * 1024 * 1024;

export class FrameWriter {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private writing = false;
  private waiters: Array<() => void> = [];
  private sink: ByteSink | null = null;
  /** Incremented whenever the host side changes (disconnect / new connection). */
  generation = 0;

  constructor(private readonly highWater = WRITER_HIGH_WATER_BYTES) {}

  setSink(sink: ByteSink | null): void {
    this.sink = sink;
    this.pump();
  }

  /** The host went away: forget everything queued for it. */
  newGeneration(): void {
    this.generation++;
    const dropped = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const q of dropped) q.done();
    this.wakeWaiters();
  }

  get bytesQueued(): number {
    return this.queuedBytes;
  }

  async send(header: unknown, payload?: Uint8Array, gen = this.generation): Promise<void> {
    // Backpressure: wait for room before encoding (so the frame bytes are not held meanwhile).
    if (!(await this.room(gen))) return;
    await this.enqueue(encodeFrame(header, payload), gen);
  }

  /** An already encoded frame (a reply, whose size was checked on its bytes). */
  async sendEncoded(buf: Buffer, gen = this.generation): Promise<void> {
    if (!(await this.room(gen))) return;
    await this.enqueue(buf, gen);
  }

  /** Waits while the queue is above the high-water mark; false if the connection changed meanwhile. */
  private async room(gen: number): Promise<boolean> {
    while (this.queuedBytes > this.highWater && gen === this.generation) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return gen === this.generation;
  }

  private enqueue(buf: Buffer, gen: number): Promise<void> {
    return new Promise<void>((done) => {
      this.queue.push({ buf, gen, done });
      this.queuedBytes += buf.length;
      this.pump();
    });
  }

  private wakeWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private pump(): void {
    if (this.writing || !this.sink) return;
    const item = this.queue.shift();
    if (!item) return;
    this.queuedBytes -= item.buf.length;
    if (this.queuedBytes <= this.highWater) this.wakeWaiters();
    if (item.gen !== this.generation) {
      item.done();
      this.pump();
      return;
    }
    const sink = this.sink;
    this.writing = true;
    sink.write(item.buf).then(
      () => undefined,
      () => undefined, // a broken connection is noticed by the reader side
    ).finally(() => {
      this.writing = false;
      item.done();
      this.pump();
    });
  }
}
