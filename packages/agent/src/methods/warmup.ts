/**
 * `warmup`: start the Python interpreter, import modules, run the recipe's code, then exercise
 * every call path once (exec, files, both evals, the restore path) so that children restored
 * from the snapshot do not pay first-use costs.
 */
import crypto from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { AGENT_METHODS, FrameHeader, ForkdError, LIMITS, type AgentMethod, type EvalResultT, type ResultOf } from '@forkd/protocol';
import type { CallContext, InvokeFn, ParamsOut, Reply } from '../handler.js';
import type { Runtime } from '../runtime.js';
import type { PyReply } from '../python-repl.js';
import { reseedUserspace } from './system.js';
import { PIPE_GRACE_MS } from '../process-runner.js';
import { sleep } from '../transport.js';

export function makeWarmup(rt: Runtime, invoke: () => InvokeFn) {
  return async function warmup(p: ParamsOut<'warmup'>, ctx: CallContext): Promise<Reply<ResultOf<'warmup'>>> {
    const t0 = performance.now();
    rt.state.warmup = 'warming';
    rt.state.warmupError = null;
    try {
      const timeout = p.timeout_ms;
      if (rt.python.available) {
        await rt.python.start();
        await rt.python.importModules(p.python_modules ?? []);
        if (p.python) check('python', await rt.python.eval(p.python, timeout, ctx.onCancel));
        if (p.python_cell) checkCell(await rt.python.runCell(p.python_cell, timeout, ctx.onCancel));
      } else if (p.python || p.python_cell || (p.python_modules ?? []).length > 0) {
        throw new ForkdError('FORKD_E_TOOL_MISSING', 'warm-up asks for Python but python3 is not installed in the guest');
      }
      if (p.js) check('js', await rt.js.eval(p.js, timeout));
      if (p.browser) {
        await rt.browser.connect(p.browser.cdp_port);
        if (p.browser.code) check('browser', (await rt.browser.eval(p.browser.code, timeout)).result);
      }
      await warmCallPaths(rt, invoke(), ctx, p.python_cell !== undefined);
      rt.state.warmup = 'warm';
    } catch (err) {
      rt.state.warmup = 'failed';
      rt.state.warmupError = err instanceof Error ? err.message : String(err);
    }
    return { result: { duration_ms: Math.round(performance.now() - t0), warmup: rt.state.warmup, error: rt.state.warmupError } };
  };
}

function checkCell(c: { reply: PyReply }): void {
  const r = c.reply.result as { error?: { name: string; value: string } | null } | undefined;
  const e = c.reply.ok ? r?.error : { name: c.reply.error?.type ?? 'Error', value: c.reply.error?.message ?? '' };
  if (e) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `python_cell warm-up failed: ${e.name}: ${e.value}`);
}

function check(lang: string, r: EvalResultT): void {
  if (!r.ok) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${lang} warm-up code failed: ${r.error?.type}: ${r.error?.message}`);
}

/**
 * Valid sample params per method. zod compiles a schema's parser on its first parse; parsing each
 * once here puts the compiled parsers in the snapshot instead of in every child's first call.
 */
const PARAM_SAMPLES: { [M in AgentMethod]: unknown } = {
  ping: {},
  restore: { now_ms: 1, entropy_b64: 'AAAA' },
  clock: { now_ms: 1 },
  warmup: { timeout_ms: 1000 },
  exec: { argv: ['true'], env: { A: 'b' }, cwd: '/', timeout_ms: 1000, stream: true },
  'proc.list': {},
  'proc.wait': { handle: 'p1', timeout_ms: 1000 },
  'proc.kill': { handle: 'p1', signal: 'SIGKILL' },
  'files.read': { path: '/x', offset: 0, length: 1 },
  'files.write': { path: '/x', offset: 0, truncate: true, mkdirs: true, mode: 420 },
  'files.list': { path: '/', depth: 1 },
  'files.stat': { path: '/' },
  'files.mkdir': { path: '/x', parents: true },
  'files.remove': { path: '/x', recursive: true },
  'files.rename': { from: '/x', to: '/y' },
  eval: { language: 'python', code: '1', timeout_ms: 1000 },
  run_code: { code: '1', language: 'python', timeout_ms: 1000 },
  'services.start': { services: [{ name: 's', start: ['true'], ready: { port: 1 }, timeout_secs: 1 }] },
  'services.list': {},
  vary: { index: 0, values: { a: 'b', n: 1, f: true }, seed: 1, guest_fork: { request_id: 'gf-0000000000000000' }, watch_guest_forks: true },
  'guest_fork.wait': {},
  'guest_fork.resolve': { request_id: 'gf-0000000000000000', children: ['sb-0000000000000000'], timings: { pause_ms: 1, fork_ms: 1 } },
  stats: {},
};

function warmParamParsers(): void {
  for (const [method, sample] of Object.entries(PARAM_SAMPLES)) {
    const r = AGENT_METHODS[method as AgentMethod].params.safeParse(sample);
    if (!r.success) throw new ForkdError('FORKD_E_INTERNAL', `warm-up sample for ${method} is invalid: ${r.error.message}`);
  }
  FrameHeader.safeParse({ kind: 'req', id: 1, method: 'ping', params: {} });
}

async function warmCallPaths(rt: Runtime, invoke: InvokeFn, ctx: CallContext, warmRunCode: boolean): Promise<void> {
  warmParamParsers();
  const quiet = { ...ctx, payload: Buffer.alloc(0), emit: async () => undefined, warming: true };
  // With output on both streams, plain and streamed: output handlers that never ran here were
  // compiled in a child's first exec (measured: 12 ms of cold V8 compile under TCG).
  await invoke('exec', { argv: ['sh', '-c', 'echo out; echo err >&2'] }, quiet);
  await invoke('exec', { argv: ['sh', '-c', 'echo out; echo err >&2'], stream: true }, quiet);
  await invoke('files.stat', { path: '/' }, quiet);
  await invoke('files.list', { path: '/' }, quiet);
  await invoke('ping', {}, quiet);
  await invoke('stats', {}, quiet);
  await invoke('eval', { language: 'js', code: 'void (6 * 7)' }, quiet);
  if (rt.python.available) await invoke('eval', { language: 'python', code: '6 * 7' }, quiet);
  // run_code only where the recipe asked for it (python_cell): the plain python recipe stays as it was.
  if (rt.python.available && warmRunCode) await invoke('run_code', { code: '6 * 7' }, quiet);
  // Both browser paths, a screenshot included: Playwright's and Chromium's code for them then runs
  // first in the parent, not in every child's first call.
  if (rt.browser.connected) {
    await invoke('eval', { language: 'browser', code: "await page.goto('about:blank'); return await page.title()" }, quiet);
    await invoke('run_code', { language: 'browser', code: 'return await page.screenshot()' }, quiet);
  }
  // The whole restore path, system calls included, so no function on it is first compiled in a
  // child. Harmless here: the clock is set to the guest's own time, and the bytes mixed into the
  // kernel pool come from that pool (its CRNG is initialised long before, so the credit is moot).
  await invoke('restore', { now_ms: Date.now(), entropy_b64: crypto.randomBytes(LIMITS.restoreEntropyBytes).toString('base64') }, quiet);
  // The Python reseed is only queued by restore: wait for it here so its path is warm too.
  await reseedUserspace(rt, crypto.randomBytes(LIMITS.restoreEntropyBytes), true);
  await rt.sys.ping();
  // Let the timers armed above (exec's pipe grace) fire here. Guest time runs on in a restored
  // child, so a timer still pending at the snapshot fires in every child, during its restore, and
  // Node's timer code, never run in the parent, was then compiled there from scratch (measured:
  // ~150 ms of cold V8 parser and compiler per child under TCG).
  await sleep(PIPE_GRACE_MS + 200);
  emptyNursery();
}

/**
 * A scavenge right before the snapshot: a child then starts with V8's young generation empty
 * instead of wherever the warm-up left it, so its first calls do not run the collector (code that
 * would be translated afresh in every child under TCG) or copy survivors into fresh pages.
 */
function emptyNursery(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (o?: { type: string; execution: string }) => void;
    gc({ type: 'minor', execution: 'sync' });
  } catch {
    /* not available: the snapshot is only less tidy */
  }
}
