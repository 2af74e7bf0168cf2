/**
 * The persistent JavaScript context. Top-level let/const/class/function declarations persist
 * because every script runs in the same context (shared global lexical scope, like a REPL).
 * console output is captured per eval; evals run one at a time.
 */
import vm from 'node:vm';
import path from 'node:path';
import { createRequire } from 'node:module';
import { LIMITS, type EvalResultT } from '@forkd/protocol';
import { CapturedOutput, OutputSink } from './capture-console.js';
import { describeError, describeValue } from './describe-value.js';
import { wrapTopLevelAwait } from './js-wrap.js';
import { seededRandom } from './prng.js';
import { SerialQueue } from './serial-queue.js';

export class JsRepl {
  private readonly sink = new OutputSink();
  private readonly queue = new SerialQueue();
  private readonly ctx: vm.Context;
  /** The context's own Math, kept so a reseed compiles no script (V8's compiler is cold in a restored child). */
  private readonly ctxMath: { random: () => number };

  constructor() {
    const g = globalThis as Record<string, unknown>;
    const sandbox: Record<string, unknown> = {
      console: this.sink.makeConsole(),
      require: createRequire(path.join(process.cwd(), '__forkd_eval__.js')),
      module: { exports: {} },
      process,
      Buffer,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      setImmediate,
      clearImmediate,
      queueMicrotask,
      structuredClone,
      URL,
      URLSearchParams,
      TextEncoder,
      TextDecoder,
      AbortController,
      AbortSignal,
      performance,
    };
    for (const k of ['fetch', 'Headers', 'Request', 'Response', 'FormData', 'Blob', 'crypto', 'atob', 'btoa', 'EventTarget', 'Event']) {
      if (g[k] !== undefined) sandbox[k] = g[k];
    }
    this.ctx = vm.createContext(sandbox, { name: 'forkd-eval' });
    vm.runInContext('globalThis.global = globalThis;', this.ctx);
    this.ctxMath = vm.runInContext('Math', this.ctx) as { random: () => number };
  }

  eval(code: string, timeoutMs: number = LIMITS.defaultEvalTimeoutMs): Promise<EvalResultT> {
    return this.queue.run(() => this.run(code, timeoutMs));
  }

  /** A fork child's vary values as globals of the persistent context (plain data: nothing is compiled). */
  setGlobals(values: Record<string, unknown>): void {
    Object.assign(this.ctx, values);
  }

  /** Replaces the context's Math.random (V8's generator state was cloned with the snapshot). */
  reseed(seed: Buffer): void {
    this.ctxMath.random = seededRandom(seed);
  }

  private async run(code: string, timeoutMs: number): Promise<EvalResultT> {
    const t0 = performance.now();
    const out = new CapturedOutput();
    this.sink.current = out;
    let value: unknown;
    let error: EvalResultT['error'] = null;
    try {
      const { script, isAsync } = compile(code);
      value = script.runInContext(this.ctx, { timeout: timeoutMs, displayErrors: false });
      if (isAsync) value = await withTimeout(value as Promise<unknown>, timeoutMs - (performance.now() - t0));
    } catch (e) {
      error = describeError(e);
    } finally {
      this.sink.current = null;
    }
    const described = error ? { repr: null, json: null, json_ok: false } : describeValue(value);
    return {
      ok: error === null,
      ...described,
      error,
      stdout: out.out,
      stderr: out.err,
      duration_ms: Math.round((performance.now() - t0) * 1000) / 1000,
    };
  }
}

function compile(code: string): { script: vm.Script; isAsync: boolean } {
  try {
    return { script: new vm.Script(code, { filename: 'eval.js' }), isAsync: false };
  } catch (e) {
    if (!/\bawait\b/.test(code)) throw e;
    const wrapped = wrapTopLevelAwait(code);
    if (wrapped === null) throw e;
    return { script: new vm.Script(wrapped, { filename: 'eval.js' }), isAsync: true };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`eval timed out after the deadline (${Math.round(ms)} ms left)`), { code: 'ERR_SCRIPT_EXECUTION_TIMEOUT' })), Math.max(0, ms));
  });
  return Promise.race([Promise.resolve(p), expired]).finally(() => clearTimeout(timer));
}
