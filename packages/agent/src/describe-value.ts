/** repr / JSON / error descriptions of eval values, safe against hostile objects. */
import assert from 'node:assert';
import { inspect } from 'node:util';
import { LIMITS } from '@forkd/protocol';

const MAX_REPR = LIMITS.defaultOutputBytes;

export function describeValue(value: unknown): { repr: string | null; json: unknown; json_ok: boolean } {
  if (value === undefined) return { repr: null, json: null, json_ok: false };
  let repr: string;
  try {
    repr = inspect(value, { depth: 4, maxArrayLength: 1000, maxStringLength: MAX_REPR, breakLength: 120 });
  } catch (e) {
    repr = `<inspect failed: ${String((e as Error)?.message ?? e)}>`;
  }
  if (repr.length > MAX_REPR) repr = `${repr.slice(0, MAX_REPR)}…`;
  try {
    const s = JSON.stringify(value);
    if (s !== undefined && s.length <= MAX_REPR) {
      const parsed: unknown = JSON.parse(s);
      assert.deepEqual(parsed, value); // loose: objects from the eval context have another realm's prototypes
      return { repr, json: parsed, json_ok: true };
    }
  } catch {
    /* not JSON-serialisable, or does not round-trip */
  }
  return { repr, json: null, json_ok: false };
}

export function describeError(e: unknown): { type: string; message: string; traceback: string } {
  try {
    if (e !== null && typeof e === 'object') {
      const o = e as { constructor?: { name?: unknown }; message?: unknown; stack?: unknown; code?: unknown };
      if (o.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return { type: 'TimeoutError', message: String(o.message), traceback: '' };
      const type = typeof o.constructor?.name === 'string' ? o.constructor.name : 'Error';
      const message = typeof o.message === 'string' ? o.message : String(e);
      const stack = typeof o.stack === 'string' ? trimStack(o.stack) : `${type}: ${message}`;
      return { type, message, traceback: stack };
    }
    return { type: typeof e, message: String(e), traceback: `Uncaught ${inspect(e)}` };
  } catch {
    return { type: 'Error', message: 'unprintable error', traceback: '' };
  }
}

/** Drops the agent's own frames (everything from the vm entry point on). */
function trimStack(stack: string): string {
  const lines = stack.split('\n');
  const cut = lines.findIndex((l) => /\bnode:vm\b|at Script\.runInContext|runInContext/.test(l));
  return (cut > 0 ? lines.slice(0, cut) : lines).join('\n');
}
