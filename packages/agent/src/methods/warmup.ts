/**
 * `warmup`: start the Python interpreter, import modules, run the recipe's code, then exercise
 * every call path once (exec, files, both evals, the restore path) so that children restored
 * from the snapshot do not pay first-use costs.
 */
import crypto from 'node:crypto';
import { ForkdError, type EvalResultT, type ResultOf } from '@forkd/protocol';
import type { CallContext, MethodTable, ParamsOut, Reply } from '../handler.js';
import type { Runtime } from '../runtime.js';
import { reseedUserspace } from './system.js';

export function makeWarmup(rt: Runtime, methods: () => MethodTable) {
  return async function warmup(p: ParamsOut<'warmup'>, ctx: CallContext): Promise<Reply<ResultOf<'warmup'>>> {
    const t0 = performance.now();
    rt.state.warmup = 'warming';
    rt.state.warmupError = null;
    try {
      const timeout = p.timeout_ms;
      if (rt.python.available) {
        await rt.python.start();
        await rt.python.importModules(p.python_modules ?? []);
        if (p.python) check('python', await rt.python.eval(p.python, timeout, ctx.signal));
      } else if (p.python || (p.python_modules ?? []).length > 0) {
        throw new ForkdError('FORKD_E_TOOL_MISSING', 'warm-up asks for Python but python3 is not installed in the guest');
      }
      if (p.js) check('js', await rt.js.eval(p.js, timeout));
      await warmCallPaths(rt, methods(), ctx);
      rt.state.warmup = 'warm';
    } catch (err) {
      rt.state.warmup = 'failed';
      rt.state.warmupError = err instanceof Error ? err.message : String(err);
    }
    return { result: { duration_ms: Math.round(performance.now() - t0), warmup: rt.state.warmup, error: rt.state.warmupError } };
  };
}

function check(lang: string, r: EvalResultT): void {
  if (!r.ok) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${lang} warm-up code failed: ${r.error?.type}: ${r.error?.message}`);
}

async function warmCallPaths(rt: Runtime, m: MethodTable, ctx: CallContext): Promise<void> {
  const quiet: CallContext = { ...ctx, payload: Buffer.alloc(0), emit: async () => undefined };
  await m.exec({ argv: ['true'] }, quiet);
  await m['files.stat']({ path: '/' }, quiet);
  await m['files.list']({ path: '/' }, quiet);
  await m.ping({}, quiet);
  await m.eval({ language: 'js', code: 'void (6 * 7)' }, quiet);
  if (rt.python.available) await m.eval({ language: 'python', code: '6 * 7' }, quiet);
  // The restore path minus the system calls (those would change the clock and the kernel pool).
  await reseedUserspace(rt, crypto.randomBytes(32));
  await rt.sys.ping();
}
