/** `exec`: run to completion (collected and/or streamed), or start in the background. */
import { LIMITS } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { ResultOf } from '@forkd/protocol';
import { HeadBuffer, RingBuffer } from '../output-buffer.js';
import { RunningProcess } from '../process-runner.js';
import type { ProcessTable } from '../process-table.js';
import type { SpawnHelper } from '../spawn-helper.js';

export function makeExec(procs: ProcessTable, launcher: SpawnHelper | null) {
  return async function exec(p: ParamsOut<'exec'>, ctx: CallContext): Promise<Reply<ResultOf<'exec'>>> {
    const common = { argv: p.argv, shell: p.shell, env: p.env, cwd: p.cwd, stdin: ctx.payload, launcher };
    if (p.background) {
      procs.ensureRoom();
      const proc = new RunningProcess({
        ...common,
        timeoutMs: p.timeout_ms,
        stdout: new RingBuffer(LIMITS.backgroundOutputBytes),
        stderr: new RingBuffer(LIMITS.backgroundOutputBytes),
      });
      await proc.started;
      if (proc.pid <= 0) return { result: await proc.done }; // could not start: report like a foreground exec
      return { result: { handle: procs.add(proc), pid: proc.pid } };
    }
    const cap = p.max_output_bytes ?? LIMITS.defaultOutputBytes;
    const proc = new RunningProcess({
      ...common,
      timeoutMs: p.timeout_ms ?? LIMITS.defaultExecTimeoutMs,
      stdout: new HeadBuffer(cap),
      stderr: new HeadBuffer(cap),
      onOutput: p.stream ? (stream, chunk) => sendChunks(ctx, stream, chunk) : undefined,
      runToCompletionCap: cap,
    });
    const unregister = ctx.onCancel(() => void proc.kill('SIGKILL'));
    try {
      return { result: await proc.done };
    } finally {
      unregister();
    }
  };
}

async function sendChunks(ctx: CallContext, stream: 'stdout' | 'stderr', chunk: Buffer): Promise<void> {
  for (let off = 0; off < chunk.length; off += LIMITS.streamChunkBytes) {
    await ctx.emit(stream, undefined, chunk.subarray(off, off + LIMITS.streamChunkBytes));
  }
}
