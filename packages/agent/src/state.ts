/** Mutable agent-wide state reported by `ping`. */
import type { z } from 'zod';
import { FORKD_VERSION, type WarmupState } from '@forkd/protocol';

/** The agent ships with the release; the wire's own version is PROTOCOL_VERSION. */
export const AGENT_VERSION = FORKD_VERSION;

export class AgentState {
  warmup: z.output<typeof WarmupState> = 'cold';
  warmupError: string | null = null;
  restores = 0;
  readonly startedAt = Date.now();
  readonly startedMono = performance.now();
}
