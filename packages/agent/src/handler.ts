/** The shape of a method implementation, shared by the server and the methods. */
import type { z } from 'zod';
import type { AGENT_METHODS, AgentMethod, ResultOf } from '@forkd/protocol';

export interface CallContext {
  id: number;
  /** Binary payload of the request (stdin, file bytes). */
  payload: Buffer;
  /** Registers a callback for the host's `cancel` of this id (or its going away); returns the unregister function. */
  onCancel(cb: () => void): () => void;
  /** performance.now() when the request frame was decoded. */
  receivedAt: number;
  /** When params passed validation (profiles of the restore path). */
  validatedAt?: number;
  /** Set when the warm-up runs a method on itself (not a host request). */
  warming?: boolean;
  /** Sends an `evt` frame for this request; resolves when written (backpressure). */
  emit(event: string, data?: unknown, payload?: Uint8Array): Promise<void>;
}

export interface Reply<R> {
  result: R;
  payload?: Uint8Array;
}

export type ParamsOut<M extends AgentMethod> = z.output<(typeof AGENT_METHODS)[M]['params']>;

export type MethodTable = {
  [M in AgentMethod]: (params: ParamsOut<M>, ctx: CallContext) => Promise<Reply<ResultOf<M>>>;
};

/** Runs a method the way a request does (params validated), without the wire. */
export type InvokeFn = (method: AgentMethod, params: unknown, ctx: Omit<CallContext, 'validatedAt'>) => Promise<Reply<unknown>>;
