import crypto from 'node:crypto';
import { ForkdError, expandVary, toForkdError, type VaryT, type VaryValuesT } from '@forkd/protocol';
import { type Engine, type Sandbox, summarize, nowMs, since } from '@forkd/engine';
import type { Controller, SandboxInfo } from '@forkd/sdk';
import { ms, printJson, progressPrinter, table } from '../output.js';

export interface ForkOptions {
  tag: string;
  n: number;
  exec?: string;
  eval?: string;
  lang?: 'python' | 'js';
  json?: boolean;
  /** forkd's spawn flags for features not offered here, sent so the daemon's refusal shows. */
  spawnFlags?: Record<string, unknown>;
  /** Per-call timeout; default: the exec and eval routes' own. */
  timeoutMs?: number;
  /** Each child's values (env of its commands, its interpreter's variables) and seeds. */
  vary?: VaryT;
  seeds?: number[];
}

export interface ChildReport {
  id: string;
  pid: number;
  spawn_to_running_ms: number;
  spawn_to_ready_ms: number;
  /** The restore's phases; null through the daemon (its REST answer does not carry them). */
  phases: Sandbox['timings']['phases'] | null;
  clock_skew_ms: number;
  call_ms: number | null;
  ok: boolean;
  output: string | null;
  result: unknown;
  /** What the child was given (with --vary or --seeds): index, values, seed. */
  variant: { index: number; values: VaryValuesT; seed: number } | null;
}

export interface ForkReport {
  tag: string;
  n: number;
  all_ready_ms: number;
  spawn_to_running: ReturnType<typeof summarize>;
  spawn_to_ready: ReturnType<typeof summarize>;
  call: ReturnType<typeof summarize> | null;
  teardown_ms: number;
  children: ChildReport[];
}

/** The timing report of children that ran (or failed) their call. */
function forkReport(opts: ForkOptions, allReady: number, children: ChildReport[], teardown: number): ForkReport {
  const calls = children.map((c) => c.call_ms).filter((v): v is number => v !== null);
  return {
    tag: opts.tag,
    n: opts.n,
    all_ready_ms: allReady,
    spawn_to_running: summarize(children.map((c) => c.spawn_to_running_ms)),
    spawn_to_ready: summarize(children.map((c) => c.spawn_to_ready_ms)),
    call: calls.length ? summarize(calls) : null,
    teardown_ms: teardown,
    children,
  };
}

/** Through the daemon: spawns n children, runs the command or code in each, kills them. */
export async function runFork(c: Controller, opts: ForkOptions): Promise<ForkReport> {
  if (opts.exec !== undefined && opts.eval !== undefined) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--exec and --eval are exclusive');
  const progress = progressPrinter(!opts.json);
  progress.onProgress({ phase: 'spawn', message: `restoring ${opts.n} from ${opts.tag} and waiting for their agents` });
  const t0 = nowMs();
  let sandboxes: SandboxInfo[] = [];
  try {
    sandboxes = await c.spawnSandboxes({ ...opts.spawnFlags, snapshot_tag: opts.tag, n: opts.n, ...(opts.vary ? { vary: opts.vary } : {}), ...(opts.seeds ? { seeds: opts.seeds } : {}) });
    progress.done();
    const allReady = since(t0);
    const children = await Promise.all(sandboxes.map((sb) => callChildVia(c, sb, opts)));
    const tKill = nowMs();
    const killing = sandboxes;
    sandboxes = [];
    await Promise.all(killing.map((sb) => c.killSandbox(sb.id)));
    return forkReport(opts, allReady, children, since(tKill));
  } finally {
    progress.done();
    await Promise.all(sandboxes.map((sb) => c.killSandbox(sb.id).catch(() => undefined)));
  }
}

async function callChildVia(c: Controller, sb: SandboxInfo, opts: ForkOptions): Promise<ChildReport> {
  const base = { id: sb.id, pid: sb.pid ?? 0, ...sb.ready, phases: null, variant: sb.variant };
  if (opts.exec === undefined && opts.eval === undefined) return { ...base, call_ms: null, ok: true, output: null, result: null };
  const timeout = opts.timeoutMs !== undefined ? { timeout_secs: opts.timeoutMs / 1000 } : {};
  const t = nowMs();
  try {
    if (opts.exec !== undefined) {
      const r = await c.exec(sb.id, { cmd: opts.exec, ...timeout });
      return { ...base, call_ms: since(t), ok: r.exit_code === 0, output: (r.stdout + r.stderr).trimEnd() || (r.error ?? ''), result: r };
    }
    const r = await c.eval(sb.id, { code: opts.eval!, ...(opts.lang ? { language: opts.lang } : {}), ...timeout });
    const ok = r.error === null;
    const output = ok ? `${r.stdout}${r.result ?? ''}`.trimEnd() : `${r.error_type}: ${r.error}`;
    return { ...base, call_ms: since(t), ok, output, result: r };
  } catch (e) {
    const fe = toForkdError(e);
    return { ...base, call_ms: since(t), ok: false, output: `${fe.code}: ${fe.message}`, result: { error: fe.toJSON() } };
  }
}

/** --local: the engine in this process. */
export async function runForkLocal(engine: Engine, opts: ForkOptions): Promise<ForkReport> {
  if (opts.exec !== undefined && opts.eval !== undefined) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--exec and --eval are exclusive');
  if (opts.spawnFlags) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `${Object.keys(opts.spawnFlags).join(', ')}: not supported by this forkd`);
  const progress = progressPrinter(!opts.json);
  const t0 = nowMs();
  let sandboxes: Sandbox[] = [];
  try {
    const variants = opts.vary !== undefined || opts.seeds !== undefined
      ? expandVary(opts.vary, opts.n).map((values, i) => ({ values, seed: opts.seeds?.[i] ?? crypto.randomInt(0, 2 ** 32) }))
      : undefined;
    if (opts.seeds && opts.seeds.length !== opts.n) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--seeds lists ${opts.seeds.length} seeds for ${opts.n} children`);
    sandboxes = await engine.spawn({ tag: opts.tag, n: opts.n, onProgress: progress.onProgress, ...(variants ? { variants } : {}) });
    progress.done();
    const allReady = since(t0);
    const children: ChildReport[] = await Promise.all(sandboxes.map((sb) => callChild(sb, opts)));
    const tKill = nowMs();
    await Promise.all(sandboxes.map((sb) => sb.kill()));
    sandboxes = [];
    return forkReport(opts, allReady, children, since(tKill));
  } finally {
    progress.done();
    await Promise.all(sandboxes.map((sb) => sb.kill()));
  }
}

async function callChild(sb: Sandbox, opts: ForkOptions): Promise<ChildReport> {
  const v = sb.variant;
  const base = { id: sb.id, pid: sb.pid, ...sb.timings, variant: v ? { index: v.index, values: v.values, seed: v.seed } : null };
  if (opts.exec === undefined && opts.eval === undefined) return { ...base, call_ms: null, ok: true, output: null, result: null };
  const t = nowMs();
  try {
    if (opts.exec !== undefined) {
      const r = await sb.commands.exec({ shell: opts.exec, timeout_ms: opts.timeoutMs ?? 60_000 });
      const call = since(t);
      return { ...base, call_ms: call, ok: r.exit_code === 0, output: (r.stdout + r.stderr).trimEnd() || (r.error ?? ''), result: r };
    }
    const language = opts.lang ?? sb.language;
    const r = await sb.eval(language, opts.eval!, { timeoutMs: opts.timeoutMs ?? 60_000 });
    const call = since(t);
    const output = r.ok ? `${r.stdout}${r.repr ?? ''}`.trimEnd() : `${r.error?.type}: ${r.error?.message}`;
    return { ...base, call_ms: call, ok: r.ok, output, result: r };
  } catch (e) {
    const fe = toForkdError(e);
    return { ...base, call_ms: since(t), ok: false, output: `${fe.code}: ${fe.message}`, result: { error: fe.toJSON() } };
  }
}

export function printForkReport(report: ForkReport, json: boolean): void {
  if (json) {
    printJson(report);
    return;
  }
  const varied = report.children.some((c) => c.variant);
  const rows = report.children.map((c) => [c.id, ms(c.spawn_to_running_ms), ms(c.spawn_to_ready_ms), c.call_ms === null ? '-' : ms(c.call_ms), ...(varied ? [variantText(c.variant)] : []), oneLine(c.output ?? '')]);
  process.stdout.write(`${table(['CHILD', 'RUNNING', 'READY', 'CALL', ...(varied ? ['VARY'] : []), 'RESULT'], rows)}\n\n`);
  const line = (name: string, s: ReturnType<typeof summarize> | null) =>
    s ? `${name.padEnd(16)} min ${ms(s.min)}  median ${ms(s.median)}  max ${ms(s.max)}\n` : '';
  process.stdout.write(
    `${report.n} children from ${report.tag}: all ready in ${ms(report.all_ready_ms)}\n` +
      line('spawn→running', report.spawn_to_running) +
      line('spawn→ready', report.spawn_to_ready) +
      line('call latency', report.call) +
      `teardown         ${ms(report.teardown_ms)}\n`,
  );
}

export function variantText(v: ChildReport['variant']): string {
  if (!v) return '-';
  return oneLine([...Object.entries(v.values).map(([k, x]) => `${k}=${String(x)}`), `seed=${v.seed}`].join(' '));
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 70 ? `${t.slice(0, 67)}...` : t;
}
