/** proc.list / proc.wait / proc.kill for background processes. */
import { LIMITS, type ResultOf } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { ProcessTable } from '../process-table.js';

export function makeProcMethods(procs: ProcessTable) {
  return {
    'proc.list': async (_p: ParamsOut<'proc.list'>): Promise<Reply<ResultOf<'proc.list'>>> => ({ result: { processes: procs.list() } }),

    /** Waits for exit; on timeout (or cancel) returns the output so far with timed_out: true. */
    'proc.wait': async (p: ParamsOut<'proc.wait'>, ctx: CallContext): Promise<Reply<ResultOf<'proc.wait'>>> => {
      const proc = procs.get(p.handle);
      if (!proc.running) return { result: await proc.done };
      let timer: NodeJS.Timeout | undefined;
      let unregister: (() => void) | undefined;
      const expired = new Promise<'expired'>((resolve) => {
        timer = setTimeout(() => resolve('expired'), p.timeout_ms ?? LIMITS.defaultExecTimeoutMs);
        unregister = ctx.onCancel(() => resolve('expired'));
      });
      try {
        const r = await Promise.race([proc.done, expired]);
        return { result: r === 'expired' ? { ...proc.result(), timed_out: true } : r };
      } finally {
        clearTimeout(timer);
        unregister?.();
      }
    },

    'proc.kill': async (p: ParamsOut<'proc.kill'>): Promise<Reply<ResultOf<'proc.kill'>>> => {
      const proc = procs.get(p.handle);
      return { result: { killed: proc.running ? proc.kill(p.signal ?? 'SIGKILL') : false } };
    },
  };
}
