/** Mutable agent-wide state reported by `ping`. */
import type { z } from 'zod';
import type { WarmupState } from '@forkd/protocol';

export const AGENT_VERSION = '0.1.0';

export class AgentState {
  warmup: z.output<typeof WarmupState> = 'cold';
  warmupError: string | null = null;
  restores = 0;
  readonly startedAt = Date.now();
  readonly startedMono = performance.now();
}
