/**
 * One host-side connection to a guest agent: many concurrent calls over one framed stream.
 * Every call has a timeout (then `cancel` is sent); a lost connection fails pending calls with
 * FORKD_E_AGENT_UNAVAILABLE; results are validated with the method's zod schema. The guest is
 * untrusted: frames for no pending call are skipped unread, a kept frame is held in one buffer
 * counted against the process-wide partialFrameBudget, and one that stalls closes the connection.
 * Writes respect backpressure: a guest that stops reading gets no new calls queued past
 * LIMITS.agentWrites.maxQueuedBytes, and a queue that stays wedged closes the connection.
 */
import crypto from 'node:crypto';
import type net from 'node:net';
import {
  AGENT_METHODS,
  FrameDecoder,
  ForkdError,
  LIMITS,
  ResponseHeader,
  EventHeader,
  encodeFrame,
  partialFrameBudget,
  readResult,
  type AgentMethod,
  type DecodedFrame,
  type FrameProblem,
  type ParamsOf,
  type ResultOf,
} from '@forkd/protocol';
import { guestError } from './guest-errors.js';
import { connectUnixSocketWithRetry, type UnixConnectError } from '../util/unix-socket.js';

export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024 * 1024;

export interface ConnectOptions {
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  /** A partial frame not completed within this closes the connection (default LIMITS.partialFrames.timeoutMs). */
  partialFrameTimeoutMs?: number;
  /** Called for frames the client could not use (garbage, oversize, malformed, stalled). */
  onProblem?: (problem: FrameProblem) => void;
  /** Host→guest bytes queued before new calls are refused (default LIMITS.agentWrites.maxQueuedBytes). */
  maxQueuedWriteBytes?: number;
  /** Queued writes not drained within this close the connection (default LIMITS.agentWrites.stallTimeoutMs). */
  writeStallTimeoutMs?: number;
  /** The first call's id (default: random, see nextId); fake agents in tests script replies by id. */
  firstCallId?: number;
}

export interface CallOptions {
  timeoutMs?: number;
  payload?: Uint8Array;
  onEvent?: (event: string, data: unknown, payload: Buffer) => void;
  signal?: AbortSignal;
  /** Cap on the bytes of event payloads this call may receive; beyond it the call fails. */
  maxEventBytes?: number;
  /** Sent as is, past the gate (the idle pause's own calls, made while the guest runs). */
  ungated?: boolean;
}

/** Runs around every call: the idle pause wakes a stopped guest first and keeps it running meanwhile. */
export interface CallGate {
  enter(): Promise<void>;
  leave(): void;
}

export interface CallReply<M extends AgentMethod> {
  result: ResultOf<M>;
  payload: Buffer;
}

interface Pending {
  method: AgentMethod;
  resolve: (r: { result: unknown; payload: Buffer }) => void;
  reject: (e: unknown) => void;
  onEvent?: CallOptions['onEvent'];
  eventBytes: number;
  maxEventBytes: number;
}

export class AgentConnection {
  private readonly pending = new Map<number, Pending>();
  /**
   * Ids start at a random point per connection: the guest's port outlives a host connection, so a
   * late reply meant for an earlier connection (a ping that timed out while the port was being
   * reopened) must never match a call of this one and pass for its answer.
   */
  private nextId: number;
  private closed = false;
  private closeReason: string | null = null;
  private readonly decoder: FrameDecoder;
  /** Armed while written bytes wait in the socket's buffer; cleared on 'drain'. */
  private writeStall: NodeJS.Timeout | undefined;
  /** Bytes ever written; minus writableLength, the bytes the guest has taken. */
  private bytesSent = 0;

  protected constructor(private readonly socket: net.Socket, private readonly opts: ConnectOptions) {
    this.nextId = opts.firstCallId ?? 1 + crypto.randomInt(2 ** 31);
    this.decoder = new FrameDecoder({
      maxFrameBytes: opts.maxFrameBytes ?? LIMITS.maxFrameBytes,
      admit: (id) => this.headerCapFor(id),
      budget: partialFrameBudget,
      partialFrameTimeoutMs: opts.partialFrameTimeoutMs ?? LIMITS.partialFrames.timeoutMs,
      onFrame: (f) => this.onFrame(f),
      onProblem: (p) => this.onProblem(p),
    });
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('drain', () => this.disarmWriteStall());
    socket.on('error', (err) => this.fail(`agent connection error: ${err.message}`));
    socket.on('close', () => this.fail('agent connection closed'));
  }

  protected static async open(socketPath: string, opts: ConnectOptions = {}): Promise<net.Socket> {
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    return connectUnixSocketWithRetry(socketPath, { timeoutMs, intervalMs: 25 }).catch((e: UnixConnectError) => {
      throw new ForkdError('FORKD_E_AGENT_UNAVAILABLE', `could not connect to the agent socket ${socketPath} within ${timeoutMs} ms: ${e.message}`, { socket: socketPath });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Host→guest bytes written but not yet taken by the guest. */
  get queuedWriteBytes(): number {
    return this.socket.writableLength;
  }

  /** Set by the idle pause (vm/idle-pause.ts); null: calls go straight out. */
  gate: CallGate | null = null;

  call<M extends AgentMethod>(method: M, params: ParamsOf<M>, opts: CallOptions = {}): Promise<CallReply<M>> {
    const gate = this.gate;
    if (!gate || opts.ungated || this.closed) return this.send(method, params, opts);
    return gate.enter().then(() => this.send(method, params, opts)).finally(() => gate.leave());
  }

  private send<M extends AgentMethod>(method: M, params: ParamsOf<M>, opts: CallOptions): Promise<CallReply<M>> {
    if (this.closed) return Promise.reject(new ForkdError('FORKD_E_AGENT_UNAVAILABLE', this.closeReason ?? 'agent connection closed'));
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal));
    const maxQueued = this.opts.maxQueuedWriteBytes ?? LIMITS.agentWrites.maxQueuedBytes;
    if (this.socket.writableLength >= maxQueued) {
      return Promise.reject(new ForkdError('FORKD_E_AGENT_BACKPRESSURE', `the guest is not reading its agent channel (${this.socket.writableLength} bytes queued, limit ${maxQueued}); ${method} was not sent, retry shortly`, { method, queued_bytes: this.socket.writableLength }));
    }
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    return new Promise<CallReply<M>>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        this.cancel(id);
        finish(() => reject(abortError(opts.signal!)));
      };
      const finish = (f: () => void): void => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        f();
      };
      this.pending.set(id, {
        method,
        resolve: (r) => finish(() => resolve(r as CallReply<M>)),
        reject: (e) => finish(() => reject(e)),
        onEvent: opts.onEvent,
        eventBytes: 0,
        maxEventBytes: opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
      });
      timer = setTimeout(() => {
        this.cancel(id);
        finish(() => reject(new ForkdError('FORKD_E_AGENT_TIMEOUT', `agent call ${method} timed out after ${timeoutMs} ms`, { method, timeout_ms: timeoutMs })));
      }, timeoutMs);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.write(encodeFrame({ kind: 'req', id, method, params }, opts.payload));
      } catch (err) {
        finish(() => reject(new ForkdError('FORKD_E_AGENT_UNAVAILABLE', `could not send to the agent: ${(err as Error).message}`)));
      }
    });
  }

  /** Closes the connection; pending calls fail with FORKD_E_AGENT_UNAVAILABLE. */
  close(): void {
    this.fail('agent connection closed by the host');
    this.socket.destroy();
  }

  /** Writes a frame and, if it had to be queued, watches that the guest keeps taking bytes. */
  private write(frame: Buffer): void {
    this.socket.write(frame);
    this.bytesSent += frame.length;
    if (this.socket.writableLength > 0 && this.writeStall === undefined && !this.closed) this.armWriteStall();
  }

  /** Closes the connection when the guest takes no queued byte for a whole stall period. */
  private armWriteStall(): void {
    const ms = this.opts.writeStallTimeoutMs ?? LIMITS.agentWrites.stallTimeoutMs;
    const atArm = this.writeProgress();
    this.writeStall = setTimeout(() => {
      this.writeStall = undefined;
      if (this.closed || this.socket.writableLength === 0) return;
      const now = this.writeProgress();
      if (now.done > atArm.done || now.inKernelQueue < atArm.inKernelQueue) return this.armWriteStall(); // slow, but reading
      // The guest stopped reading: free the queued bytes (timed-out calls' frames among them).
      this.fail(`the guest did not read its agent channel for ${ms} ms (${this.socket.writableLength} bytes queued)`);
      this.socket.destroy();
    }, ms);
    this.writeStall.unref?.();
  }

  /**
   * How far the guest has read: frames written through (done) and what is left of the frame being
   * written. writableLength counts a frame whole until it is written through, so the progress
   * inside one large frame is only visible in libuv's write queue (the handle's writeQueueSize).
   */
  private writeProgress(): { done: number; inKernelQueue: number } {
    const handle = (this.socket as unknown as { _handle?: { writeQueueSize?: number } })._handle;
    return { done: this.bytesSent - this.socket.writableLength, inKernelQueue: handle?.writeQueueSize ?? 0 };
  }

  private disarmWriteStall(): void {
    clearTimeout(this.writeStall);
    this.writeStall = undefined;
  }

  private cancel(id: number): void {
    if (this.closed) return;
    try {
      this.write(encodeFrame({ kind: 'cancel', id }));
    } catch {
      /* connection is going away anyway */
    }
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.disarmWriteStall();
    this.decoder.reset();
    const err = new ForkdError('FORKD_E_AGENT_UNAVAILABLE', reason);
    for (const p of [...this.pending.values()]) p.reject(err);
    this.pending.clear();
  }

  /**
   * Frames are kept only for a pending call (anything else is skipped unread); every header is
   * capped at LIMITS.maxFrameHeaderBytes (large results travel in the payload, result-frame.ts).
   */
  private headerCapFor(id: number | null): number {
    return id !== null && this.pending.has(id) ? LIMITS.maxFrameHeaderBytes : 0;
  }

  private onProblem(p: FrameProblem): void {
    this.opts.onProblem?.(p);
    if (p.kind === 'stalled') {
      this.fail(`agent sent a partial frame (${p.heldBytes} bytes) that did not complete within ${p.timeoutMs} ms`);
      this.socket.destroy();
      return;
    }
    if (p.kind === 'oversize' && p.id !== null) {
      this.pending.get(p.id)?.reject(new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `agent reply of ${p.bytes} bytes exceeds the limit`));
    } else if (p.kind === 'budget' && p.id !== null) {
      this.pending.get(p.id)?.reject(new ForkdError('FORKD_E_UNAVAILABLE', `agent reply of ${p.bytes} bytes does not fit the daemon's budget for frames in transit; retry shortly`));
    }
  }

  private onFrame(frame: DecodedFrame): void {
    const kind = (frame.header as { kind?: unknown } | null)?.kind;
    if (kind === 'evt') return this.onEventFrame(frame);
    const parsed = ResponseHeader.safeParse(frame.header);
    if (!parsed.success) {
      this.opts.onProblem?.({ kind: 'malformed', id: null, reason: 'not a response or event header' });
      return;
    }
    const h = parsed.data;
    const p = this.pending.get(h.id);
    if (!p) return; // late reply to a call that timed out, or for an earlier host
    if (!h.ok) {
      p.reject(guestError(p.method, h.error));
      return;
    }
    const read = readResult(h, frame.payload);
    if (!read.ok) {
      p.reject(new ForkdError('FORKD_E_AGENT_PROTOCOL', `agent reply to ${p.method}: ${read.reason}`));
      return;
    }
    const result = AGENT_METHODS[p.method].result.safeParse(read.result);
    if (!result.success) {
      p.reject(new ForkdError('FORKD_E_AGENT_PROTOCOL', `agent reply to ${p.method} does not match the schema: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`));
      return;
    }
    p.resolve({ result: result.data, payload: read.payload });
  }

  private onEventFrame(frame: DecodedFrame): void {
    const parsed = EventHeader.safeParse(frame.header);
    if (!parsed.success) return;
    const h = parsed.data;
    const p = this.pending.get(h.id);
    if (!p) return;
    p.eventBytes += frame.payload.length;
    if (p.eventBytes > p.maxEventBytes) {
      this.cancel(h.id);
      p.reject(new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `streamed output of ${p.method} exceeded ${p.maxEventBytes} bytes`));
      return;
    }
    try {
      p.onEvent?.(h.event, h.data, frame.payload);
    } catch {
      /* a throwing callback must not break the connection */
    }
  }
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new ForkdError('FORKD_E_UNAVAILABLE', 'agent call aborted');
}
