/** `eval` in the persistent JS context, the persistent Python interpreter, or the warm browser. */
import { LIMITS, type ResultOf } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { Runtime } from '../runtime.js';

export function makeEval(rt: Runtime) {
  return async function evalMethod(p: ParamsOut<'eval'>, ctx: CallContext): Promise<Reply<ResultOf<'eval'>>> {
    const timeout = p.timeout_ms ?? LIMITS.defaultEvalTimeoutMs;
    if (p.language === 'js') return { result: await rt.js.eval(p.code, timeout) };
    if (p.language === 'browser') return { result: (await rt.browser.eval(p.code, timeout)).result };
    return { result: await rt.python.eval(p.code, timeout, ctx.onCancel) };
  };
}
