/**
 * Counts the processes this Node process spawns while fn runs (child_process.spawn, which every
 * host tool and QEMU launch goes through), and the programs each one execs on its way (wrappers
 * such as setpriv/nsenter end with `--`; `sh -c` scripts are counted by the tools they name).
 */
import cp from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

export interface ExecCount {
  /** Processes Node spawned (each a fork + exec from a large process: the costly part). */
  setup: number;
  /** The command lines, first child only, for the report. */
  sample: string[];
}

export async function countExecs(fn: () => Promise<void>): Promise<ExecCount> {
  const original = cp.spawn;
  const seen: string[] = [];
  (cp as { spawn: unknown }).spawn = (...a: Parameters<typeof cp.spawn>) => {
    const [cmd, args] = a as unknown as [string, string[] | undefined];
    seen.push([cmd, ...(Array.isArray(args) ? args : [])].join(' ').slice(0, 200));
    return (original as (...x: unknown[]) => unknown)(...a);
  };
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    (cp as { spawn: unknown }).spawn = original;
    syncBuiltinESMExports();
  }
  return { setup: seen.length, sample: seen };
}
