/**
 * Frame server: decodes requests from the host, validates them, runs the method and sends
 * exactly one `res` per request. Nothing a host sends can crash it: bad frames get an error
 * reply (id 0 when unknown) and serving continues.
 */
import {
  AGENT_METHODS,
  FrameDecoder,
  FrameHeader,
  encodeFrame,
  encodeResultFrame,
  LIMITS,
  ForkdError,
  isAgentMethod,
  toForkdError,
  type ForkdErrorCode,
  type FrameProblem,
  type DecodedFrame,
} from '@forkd/protocol';
import type { CallContext, MethodTable, Reply } from './handler.js';
import type { TransportEvents } from './transport.js';
import { FrameWriter, type ByteSink } from './writer.js';
import { Cancellation } from './cancel.js';

export const MAX_IN_FLIGHT = 256;

export class AgentServer implements TransportEvents {
  readonly writer = new FrameWriter();
  private readonly decoder: FrameDecoder;
  /** In-flight requests by `${generation}:${id}`: ids are only unique per host connection. */
  private readonly inflight = new Map<string, Cancellation>();
  private gateWaiters: Array<() => void> = [];

  constructor(private readonly methods: MethodTable, private readonly maxFrameBytes = LIMITS.maxFrameBytes) {
    this.decoder = new FrameDecoder({
      maxFrameBytes,
      onFrame: (f) => this.onFrame(f),
      onProblem: (p) => this.onProblem(p),
    });
  }

  onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
    } catch (err) {
      // Should not happen; never let a bad stream take the agent down.
      this.decoder.reset();
      this.sendError(0, 'FORKD_E_AGENT_PROTOCOL', `decoder failure: ${(err as Error).message}`);
    }
  }

  onConnect(sink: ByteSink): void {
    this.writer.setSink(sink);
  }

  /** The host is gone: nobody can receive the replies, so cancel its in-flight work. */
  onDisconnect(): void {
    this.decoder.reset();
    const prefix = `${this.writer.generation}:`;
    this.writer.newGeneration();
    for (const [key, c] of this.inflight) if (key.startsWith(prefix)) c.cancel();
  }

  readGate(): Promise<void> {
    if (this.inflight.size < MAX_IN_FLIGHT) return Promise.resolve();
    return new Promise((r) => this.gateWaiters.push(r));
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  private onProblem(p: FrameProblem): void {
    if (p.kind === 'garbage') return;
    if (p.kind === 'oversize') {
      this.sendError(p.id ?? 0, 'FORKD_E_PAYLOAD_TOO_LARGE', `frame of ${p.bytes} bytes exceeds the limit of ${this.maxFrameBytes} bytes`);
    } else if (p.kind === 'malformed') {
      this.sendError(p.id ?? 0, 'FORKD_E_AGENT_PROTOCOL', `malformed frame: ${p.reason}`);
    }
  }

  private onFrame(frame: DecodedFrame): void {
    const parsed = FrameHeader.safeParse(frame.header);
    if (!parsed.success) {
      const raw = frame.header as { id?: unknown } | null;
      const id = raw && typeof raw === 'object' && typeof raw.id === 'number' && Number.isSafeInteger(raw.id) && raw.id >= 0 ? raw.id : 0;
      this.sendError(id, 'FORKD_E_AGENT_PROTOCOL', `invalid frame header: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'header'}: ${i.message}`).join('; ')}`);
      return;
    }
    const h = parsed.data;
    if (h.kind === 'cancel') {
      this.inflight.get(`${this.writer.generation}:${h.id}`)?.cancel();
      return;
    }
    if (h.kind !== 'req') return; // res/evt from the host mean nothing to the agent
    if (this.inflight.has(`${this.writer.generation}:${h.id}`)) {
      this.sendError(h.id, 'FORKD_E_AGENT_PROTOCOL', `request id ${h.id} is already in flight`);
      return;
    }
    void this.dispatch(h.id, h.method, h.params, frame.payload);
  }

  /**
   * Validates params and runs the method: the part of a request that does not touch the wire.
   * Also used by the warm-up, so the parent has run every step of a method's path before the snapshot.
   */
  async invoke(method: string, rawParams: unknown, ctx: Omit<CallContext, 'validatedAt'>): Promise<Reply<unknown>> {
    if (!isAgentMethod(method)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unknown method: ${method}`);
    const params = AGENT_METHODS[method].params.safeParse(rawParams ?? {});
    if (!params.success) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid params for ${method}: ${params.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`);
    }
    const handler = this.methods[method] as (p: unknown, c: CallContext) => Promise<Reply<unknown>>;
    (ctx as CallContext).validatedAt = performance.now();
    return handler(params.data, ctx);
  }

  private async dispatch(id: number, method: string, rawParams: unknown, payload: Buffer): Promise<void> {
    const gen = this.writer.generation;
    const receivedAt = performance.now();
    const cancellation = new Cancellation();
    const key = `${gen}:${id}`;
    this.inflight.set(key, cancellation);
    const ctx = {
      id,
      payload,
      onCancel: (cb: () => void) => cancellation.onCancel(cb),
      receivedAt,
      emit: (event: string, data?: unknown, p?: Uint8Array) => this.writer.send({ kind: 'evt', id, event, ...(data === undefined ? {} : { data }) }, p, gen),
    };
    try {
      const reply = await this.invoke(method, rawParams, ctx);
      // Encoded once: its size is checked on the bytes that are sent. A large result goes in the payload.
      const frame = encodeResultFrame(id, reply.result, reply.payload);
      if (frame.length > this.maxFrameBytes) {
        this.sendError(id, 'FORKD_E_PAYLOAD_TOO_LARGE', `reply of ${frame.length} bytes exceeds the frame limit`, gen);
      } else {
        void this.writer.sendEncoded(frame, gen);
      }
    } catch (err) {
      const fe = toForkdError(err);
      this.sendError(id, fe.code, fe.message, gen, fe.details);
    } finally {
      this.inflight.delete(key);
      if (this.inflight.size < MAX_IN_FLIGHT) {
        const w = this.gateWaiters;
        this.gateWaiters = [];
        for (const f of w) f();
      }
    }
  }

  private sendError(id: number, code: ForkdErrorCode, message: string, gen = this.writer.generation, details?: Record<string, unknown>): void {
    // The host reads at most LIMITS.maxFrameHeaderBytes of header and LIMITS.maxErrorMessageChars of message.
    const error = new ForkdError(code, message.slice(0, LIMITS.maxErrorMessageChars), details).toJSON();
    let frame = encodeFrame({ kind: 'res', id, ok: false, error });
    if (frame.length > LIMITS.maxFrameHeaderBytes) frame = encodeFrame({ kind: 'res', id, ok: false, error: { code: error.code, message: error.message } });
    void this.writer.sendEncoded(frame, gen);
  }
}
