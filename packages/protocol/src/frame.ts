/**
 * Agent wire framing. One byte stream (virtio-serial port) carries many concurrent calls.
 *
 *   frame := MAGIC(4) | headerLen u32be | payloadLen u32be | header (UTF-8 JSON) | payload (raw bytes)
 *
 * The magic lets a reader resynchronise after garbage (a host that reconnects to a restored
 * child may receive the tail of a frame the guest began before the snapshot). Sizes are capped
 * so that neither side can be made to buffer without bound: an oversized frame is reported with
 * its id (when its header is small enough to read) and its bytes are discarded, not buffered.
 */
import { LIMITS } from './limits.js';

export const FRAME_MAGIC = Buffer.from([0x46, 0x4b, 0x44, 0x01]); // "FKD\x01"
export const FRAME_PREFIX_BYTES = 12;
export const DEFAULT_MAX_FRAME_BYTES = LIMITS.maxFrameBytes;
/** Header size up to which an oversized frame's header is still read to learn its id. */
export const MAX_PEEK_HEADER_BYTES = 64 * 1024;

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
  | { kind: 'malformed'; id: number | null; reason: string };

export interface FrameDecoderOptions {
  maxFrameBytes?: number;
  onFrame: (frame: DecodedFrame) => void;
  onProblem?: (problem: FrameProblem) => void;
}

type State =
  | { s: 'prefix' }
  | { s: 'body'; headerLen: number; payloadLen: number }
  | { s: 'peek'; headerLen: number; payloadLen: number }
  | { s: 'discard'; remaining: number };

/** Incremental decoder; memory use is bounded by maxFrameBytes plus one chunk. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  /** Chunks of a frame body still being received (joined once the body is complete). */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private state: State = { s: 'prefix' };
  private readonly max: number;
  private garbage = 0;

  constructor(private readonly opts: FrameDecoderOptions) {
    this.max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Forget any partial frame (the peer reconnected). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.pendingLen = 0;
    this.state = { s: 'prefix' };
    this.flushGarbage();
  }

  /** Bytes currently held (for tests and accounting). */
  get buffered(): number {
    return this.buf.length + this.pendingLen;
  }

  push(chunk: Uint8Array): void {
    const st = this.state;
    if (st.s === 'body' && this.buf.length + this.pendingLen + chunk.length < st.headerLen + st.payloadLen) {
      // Still short of a whole frame body: collect without re-copying (avoids O(n^2) concat).
      this.pending.push(Buffer.from(chunk));
      this.pendingLen += chunk.length;
      return;
    }
    if (this.pending.length > 0) {
      this.buf = Buffer.concat([this.buf, ...this.pending, chunk]);
      this.pending = [];
      this.pendingLen = 0;
    } else {
      this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    }
    for (;;) {
      if (!this.step()) break;
    }
  }

  private step(): boolean {
    const st = this.state;
    switch (st.s) {
      case 'prefix': {
        if (this.buf.length < FRAME_MAGIC.length) return this.keepMagicCandidate();
        const at = this.buf.indexOf(FRAME_MAGIC);
        if (at < 0) {
          // Keep the last 3 bytes: they may be the start of a magic split across chunks.
          return this.keepMagicCandidate();
        }
        if (at > 0) {
          this.garbage += at;
          this.buf = this.buf.subarray(at);
        }
        if (this.buf.length < FRAME_PREFIX_BYTES) return false;
        this.flushGarbage();
        const headerLen = this.buf.readUInt32BE(4);
        const payloadLen = this.buf.readUInt32BE(8);
        this.buf = this.buf.subarray(FRAME_PREFIX_BYTES);
        if (headerLen + payloadLen > this.max) {
          this.state = headerLen <= MAX_PEEK_HEADER_BYTES
            ? { s: 'peek', headerLen, payloadLen }
            : { s: 'discard', remaining: headerLen + payloadLen };
          if (this.state.s === 'discard') this.problem({ kind: 'oversize', id: null, bytes: headerLen + payloadLen });
        } else {
          this.state = { s: 'body', headerLen, payloadLen };
        }
        return true;
      }
      case 'body': {
        const total = st.headerLen + st.payloadLen;
        if (this.buf.length < total) return false;
        const headerBytes = this.buf.subarray(0, st.headerLen);
        const payload = Buffer.from(this.buf.subarray(st.headerLen, total));
        this.buf = this.buf.subarray(total);
        this.state = { s: 'prefix' };
        let header: unknown;
        try {
          header = JSON.parse(headerBytes.toString('utf8'));
        } catch (e) {
          this.problem({ kind: 'malformed', id: null, reason: `header is not JSON: ${(e as Error).message}` });
          return true;
        }
        this.opts.onFrame({ header, payload });
        return true;
      }
      case 'peek': {
        if (this.buf.length < st.headerLen) return false;
        const id = idOf(this.buf.subarray(0, st.headerLen));
        this.buf = this.buf.subarray(st.headerLen);
        this.problem({ kind: 'oversize', id, bytes: st.headerLen + st.payloadLen });
        this.state = { s: 'discard', remaining: st.payloadLen };
        return true;
      }
      case 'discard': {
        const n = Math.min(st.remaining, this.buf.length);
        this.buf = this.buf.subarray(n);
        const remaining = st.remaining - n;
        this.state = remaining === 0 ? { s: 'prefix' } : { s: 'discard', remaining };
        return remaining === 0;
      }
    }
  }

  private keepMagicCandidate(): boolean {
    const keep = Math.min(this.buf.length, FRAME_MAGIC.length - 1);
    // Keep only a suffix that could still grow into the magic.
    let k = keep;
    while (k > 0 && !FRAME_MAGIC.subarray(0, k).equals(this.buf.subarray(this.buf.length - k))) k--;
    const drop = this.buf.length - k;
    if (drop > 0) {
      this.garbage += drop;
      this.buf = Buffer.from(this.buf.subarray(drop));
    }
    return false;
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

function idOf(headerBytes: Buffer): number | null {
  try {
    const h = JSON.parse(headerBytes.toString('utf8')) as { id?: unknown };
    return typeof h.id === 'number' && Number.isSafeInteger(h.id) ? h.id : null;
  } catch {
    return null;
  }
}
