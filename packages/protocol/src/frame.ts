/**
 * Agent wire framing. One byte stream (virtio-serial port) carries many concurrent calls.
 *
 *   frame := MAGIC(4) | headerLen u32be | payloadLen u32be | header (UTF-8 JSON) | payload (raw bytes)
 *
 * The magic lets a reader resynchronise after garbage (a host that reconnects to a restored
 * child may receive the tail of a frame the guest began before the snapshot). The peer may be
 * hostile, so the decoder reads the id at the head of a header before holding anything: a frame
 * the reader does not want (no call with that id is pending), an oversized one or one over the
 * reader's header cap is skipped without being buffered. A frame that is kept is copied into
 * one buffer of its declared size, counted against a shared byte budget, and must complete
 * within a deadline.
 */
import { LIMITS } from './limits.js';

export const FRAME_MAGIC = Buffer.from([0x46, 0x4b, 0x44, 0x01]); // "FKD\x01"
export const FRAME_PREFIX_BYTES = 12;
export const DEFAULT_MAX_FRAME_BYTES = LIMITS.maxFrameBytes;
/** Bytes at the head of a header read to learn its id: `{"kind":"cancel","id":` and 15 digits fit. */
const ID_PEEK_BYTES = 48;
const CANONICAL_HEAD = /^\{"kind":"[a-z]{1,8}","id":(\d{1,15})[,}]/;

export function encodeFrame(header: unknown, payload?: Uint8Array): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const p = payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : Buffer.alloc(0);
  const prefix = Buffer.allocUnsafe(FRAME_PREFIX_BYTES);
  FRAME_MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(h.length, 4);
  prefix.writeUInt32BE(p.length, 8);
  return Buffer.concat([prefix, h, p]);
}

export interface DecodedFrame {
  header: unknown;
  payload: Buffer;
}

export type FrameProblem =
  | { kind: 'garbage'; skippedBytes: number }
  | { kind: 'oversize'; id: number | null; bytes: number }
  | { kind: 'malformed'; id: number | null; reason: string }
  /** The shared budget of partial-frame bytes had no room: the frame was skipped. */
  | { kind: 'budget'; id: number | null; bytes: number }
  /** A kept frame did not complete within the deadline (it was dropped; the stream is unreliable). */
  | { kind: 'stalled'; id: number | null; heldBytes: number; timeoutMs: number };

/** Bytes held in partial frames by every decoder that shares it. */
export class ByteBudget {
  private used = 0;
  constructor(readonly maxBytes: number) {}
  get heldBytes(): number {
    return this.used;
  }
  take(n: number): boolean {
    if (this.used + n > this.maxBytes) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** The budget every host-side connection of this process shares. */
export const partialFrameBudget = new ByteBudget(LIMITS.partialFrames.totalBytes);

export interface FrameDecoderOptions {
  maxFrameBytes?: number;
  /**
   * Decides from the id at the head of a header (null when it has none in the canonical place)
   * and the frame's kind whether to keep it: the largest header accepted, or 0 to skip it unread.
   * Default: keep every frame up to maxFrameBytes.
   */
  admit?: (id: number | null, kind: string | null) => number;
  /** Shared bound on bytes held in partial frames (default: none). */
  budget?: ByteBudget;
  /** A kept frame not complete within this is reported as 'stalled' and dropped (default: no deadline). */
  partialFrameTimeoutMs?: number;
  onFrame: (frame: DecodedFrame) => void;
  onProblem?: (problem: FrameProblem) => void;
}

type State =
  | { s: 'prefix' }
  | { s: 'head'; headerLen: number; payloadLen: number }
  | { s: 'body'; id: number | null; headerLen: number; frame: Buffer; filled: number }
  | { s: 'discard'; remaining: number };

/** Incremental decoder: holds at most one frame (one buffer of its declared size) plus a few bytes. */
export class FrameDecoder {
  /** Bytes of a prefix (or of a magic split across chunks) carried to the next chunk: < 12. */
  private carry: Buffer = Buffer.alloc(0);
  /** Head of the current header, read to learn its id: < ID_PEEK_BYTES. */
  private peek: Buffer = Buffer.alloc(0);
  private state: State = { s: 'prefix' };
  private readonly max: number;
  private garbage = 0;
  private timer: NodeJS.Timeout | undefined;
  private taken = 0;

  constructor(private readonly opts: FrameDecoderOptions) {
    this.max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Forget any partial frame (the peer reconnected, or the connection ended). */
  reset(): void {
    this.release();
    this.carry = Buffer.alloc(0);
    this.peek = Buffer.alloc(0);
    this.state = { s: 'prefix' };
    this.flushGarbage();
  }

  /** Bytes currently held (for tests and accounting). */
  get buffered(): number {
    return this.carry.length + this.peek.length + (this.state.s === 'body' ? this.state.frame.length : 0);
  }

  push(chunk: Uint8Array): void {
    let data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (data.length > 0) data = this.step(data);
    if (this.state.s === 'body' && this.timer === undefined && this.opts.partialFrameTimeoutMs !== undefined) {
      this.timer = setTimeout(() => this.stalled(), this.opts.partialFrameTimeoutMs);
      this.timer.unref?.();
    }
  }

  /** Consumes what it can of data in the current state; returns the rest. */
  private step(data: Buffer): Buffer {
    const st = this.state;
    switch (st.s) {
      case 'prefix': {
        const buf = this.carry.length > 0 ? Buffer.concat([this.carry, data]) : data;
        this.carry = Buffer.alloc(0);
        const at = buf.indexOf(FRAME_MAGIC);
        if (at < 0) {
          this.keepMagicCandidate(buf);
          return Buffer.alloc(0);
        }
        this.garbage += at;
        if (buf.length - at < FRAME_PREFIX_BYTES) {
          this.carry = Buffer.from(buf.subarray(at));
          return Buffer.alloc(0);
        }
        this.flushGarbage();
        const headerLen = buf.readUInt32BE(at + 4);
        const payloadLen = buf.readUInt32BE(at + 8);
        this.peek = Buffer.alloc(0);
        this.state = { s: 'head', headerLen, payloadLen };
        return buf.subarray(at + FRAME_PREFIX_BYTES);
      }
      case 'head': {
        const want = Math.min(st.headerLen, ID_PEEK_BYTES) - this.peek.length;
        const n = Math.min(want, data.length);
        if (n > 0) this.peek = Buffer.concat([this.peek, data.subarray(0, n)]);
        if (n < want) return Buffer.alloc(0);
        this.decide(st.headerLen, st.payloadLen);
        return data.subarray(n);
      }
      case 'body': {
        const n = Math.min(st.frame.length - st.filled, data.length);
        data.copy(st.frame, st.filled, 0, n);
        st.filled += n;
        if (st.filled === st.frame.length) this.complete(st);
        return data.subarray(n);
      }
      case 'discard': {
        const n = Math.min(st.remaining, data.length);
        const remaining = st.remaining - n;
        this.state = remaining === 0 ? { s: 'prefix' } : { s: 'discard', remaining };
        return data.subarray(n);
      }
    }
  }

  /** The head of the header is known: keep the frame in one buffer of its size, or skip it. */
  private decide(headerLen: number, payloadLen: number): void {
    const total = headerLen + payloadLen;
    const { id, kind } = headOf(this.peek, headerLen);
    const peeked = this.peek;
    this.peek = Buffer.alloc(0);
    const skip = (): void => {
      this.state = total - peeked.length === 0 ? { s: 'prefix' } : { s: 'discard', remaining: total - peeked.length };
    };
    if (total > this.max) {
      this.problem({ kind: 'oversize', id, bytes: total });
      return skip();
    }
    const headerCap = this.opts.admit ? this.opts.admit(id, kind) : this.max;
    if (headerCap <= 0) return skip(); // not wanted: dropped unread
    if (headerLen > headerCap) {
      this.problem({ kind: 'oversize', id, bytes: total });
      return skip();
    }
    if (this.opts.budget && !this.opts.budget.take(total)) {
      this.problem({ kind: 'budget', id, bytes: total });
      return skip();
    }
    this.taken = this.opts.budget ? total : 0;
    const frame = Buffer.allocUnsafe(total);
    peeked.copy(frame, 0);
    const body = { s: 'body' as const, id, headerLen, frame, filled: peeked.length };
    this.state = body;
    if (body.filled === total) this.complete(body);
  }

  private complete(st: Extract<State, { s: 'body' }>): void {
    this.release();
    this.state = { s: 'prefix' };
    let header: unknown;
    try {
      header = JSON.parse(st.frame.toString('utf8', 0, st.headerLen));
    } catch (e) {
      this.problem({ kind: 'malformed', id: st.id, reason: `header is not JSON: ${(e as Error).message}` });
      return;
    }
    this.opts.onFrame({ header, payload: st.frame.subarray(st.headerLen) });
  }

  private stalled(): void {
    this.timer = undefined;
    const st = this.state;
    if (st.s !== 'body') return;
    const heldBytes = st.filled;
    this.reset();
    this.problem({ kind: 'stalled', id: st.id, heldBytes, timeoutMs: this.opts.partialFrameTimeoutMs ?? 0 });
  }

  /** Gives back the budget and stops the deadline of the current frame. */
  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.taken > 0) this.opts.budget?.give(this.taken);
    this.taken = 0;
  }

  /** Keeps only a suffix of buf that could still grow into the magic; the rest is garbage. */
  private keepMagicCandidate(buf: Buffer): void {
    let k = Math.min(buf.length, FRAME_MAGIC.length - 1);
    while (k > 0 && !FRAME_MAGIC.subarray(0, k).equals(buf.subarray(buf.length - k))) k--;
    this.garbage += buf.length - k;
    this.carry = Buffer.from(buf.subarray(buf.length - k));
  }

  private flushGarbage(): void {
    if (this.garbage > 0) {
      const skippedBytes = this.garbage;
      this.garbage = 0;
      this.problem({ kind: 'garbage', skippedBytes });
    }
  }

  private problem(p: FrameProblem): void {
    this.opts.onProblem?.(p);
  }
}

/**
 * The id and kind at the head of a header, read without parsing it: encodeFrame writes `kind`
 * then `id` first. A header short enough to be whole in the peek is parsed instead.
 */
function headOf(peek: Buffer, headerLen: number): { id: number | null; kind: string | null } {
  const text = peek.toString('latin1');
  const m = CANONICAL_HEAD.exec(text);
  if (m) return { id: safeId(Number(m[1])), kind: text.slice(9, text.indexOf('"', 9)) };
  if (peek.length < headerLen) return { id: null, kind: null };
  try {
    const h = JSON.parse(peek.toString('utf8')) as { id?: unknown; kind?: unknown };
    return { id: safeId(h.id), kind: typeof h.kind === 'string' ? h.kind : null };
  } catch {
    return { id: null, kind: null };
  }
}

function safeId(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}
