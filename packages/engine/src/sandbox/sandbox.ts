import crypto from 'node:crypto';
import type { AgentClient } from '../agent-client/index.js';
import type { Vm } from '../vm/vm.js';

export interface SandboxTimings {
  /** From the spawn request to `cont` returning: the guest is running. */
  spawn_to_running_ms: number;
  /** From the spawn request to the agent's reply after restore (clock set, RNG reseeded). */
  spawn_to_ready_ms: number;
  /** launch: QEMU started and QMP up; migrate: device state loaded; agent_wait: host connected to the agent channel; restore: clock + RNG reset answered. */
  phases: { launch_ms: number; migrate_ms: number; cont_ms: number; agent_wait_ms?: number; restore_ms: number };
  /** Guest clock minus host clock before the agent corrected it. */
  clock_skew_ms: number;
}

/** A running child: a restored VM whose agent has answered. */
export class Sandbox {
  readonly id: string;

  constructor(
    readonly vm: Vm,
    readonly tag: string,
    readonly timings: SandboxTimings,
    readonly language: 'python' | 'js',
    readonly createdAt = new Date(),
  ) {
    this.id = `sb-${vm.id}`;
  }

  get pid(): number {
    return this.vm.pid;
  }
  get agent(): AgentClient {
    if (!this.vm.agent) throw new Error('sandbox has no agent connection');
    return this.vm.agent;
  }
  /** Resolves when the VM process has exited, for whatever reason. */
  get exited(): Promise<void> {
    return this.vm.proc.exited.then(() => undefined);
  }

  /** The VM's run directory (what a successor needs to adopt it). */
  get dir(): string {
    return this.vm.dir;
  }

  get alive(): boolean {
    return this.vm.alive;
  }

  kill(): Promise<void> {
    return this.vm.kill();
  }
}

export function randomHex(bytes: number): string {
  return crypto.randomBytes(bytes).toString('hex');
}
