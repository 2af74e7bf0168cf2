/**
 * What a workloads part is: bench/workloads/<name>.ts exports `part`, whose run() measures one
 * workload against its own cold start in the same run and returns markdown table rows and raw data.
 */
import type { Engine } from '@forkd/engine';

export interface PartContext {
  engine: Engine;
  rounds: number;
  log(message: string): void;
}

export interface PartResult {
  /** Markdown table rows: `| figure | min / median / max | target |`. */
  rows: string[];
  /** Lines printed under the table (what was measured, how). */
  notes: string[];
  raw: unknown;
}

export interface WorkloadPart {
  name: string;
  run(ctx: PartContext): Promise<PartResult>;
}

export const fmt = (s: { min: number; median: number; max: number }, unit = 'ms', d = 0) => `${s.min.toFixed(d)} / ${s.median.toFixed(d)} / ${s.max.toFixed(d)} ${unit}`;
