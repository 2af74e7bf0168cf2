/**
 * runCode, shaped like @e2b/code-interpreter's Execution, on the daemon's persistent eval: globals
 * set by one call are there in the next (and the parent snapshot's state is there from the start).
 * Python runs through the run_code route (IPython display data: plots as PNG, DataFrames as HTML);
 * JavaScript through eval. Pure mapping from the wire shapes; unit-tested without a VM.
 */
import type { EvalResult, RunCodeResponse } from './controller.js';
import { errorFor } from './errors.js';

export type RunCodeLanguage = 'python' | 'javascript' | 'js' | 'browser';

/** E2B's OutputMessage. timestamp: microseconds since the epoch, as E2B. */
export interface OutputMessage {
  line: string;
  timestamp: number;
  error: boolean;
}

export interface RunCodeOpts {
  /** Default: the sandbox snapshot's language. 'javascript' and 'js' are the same interpreter. */
  language?: RunCodeLanguage;
  /**
   * Called per output line. The daemon's eval is not streamed, so these run after the code has
   * finished, in order (stdout lines, then stderr lines).
   */
  onStdout?: (msg: OutputMessage) => void;
  onStderr?: (msg: OutputMessage) => void;
  onResult?: (result: Result) => void;
  onError?: (error: ExecutionError) => void;
  /** Default 60 000 (the eval route's default); 0 = the API's cap of one hour. */
  timeoutMs?: number;
}

/**
 * E2B's Result: one display output of the cell, or the value of its last expression
 * (isMainResult). png and jpeg are base64, as E2B gives them. The js eval gives text and json only.
 */
export interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  svg?: string;
  png?: string;
  jpeg?: string;
  latex?: string;
  json?: unknown;
  javascript?: string;
  isMainResult: boolean;
  /** The formats present (E2B's names: 'text', 'html', 'png', ...). */
  formats(): string[];
}

/** Result fields that carry a format, in E2B's order. */
export const RESULT_FORMATS = ['text', 'html', 'markdown', 'svg', 'png', 'jpeg', 'latex', 'json', 'javascript'] as const;
type ResultFormat = (typeof RESULT_FORMATS)[number];

function makeResult(fields: Partial<Record<ResultFormat, unknown>>, isMainResult: boolean): Result {
  const r: Record<string, unknown> = {};
  for (const f of RESULT_FORMATS) if (fields[f] !== undefined) r[f] = fields[f];
  const present = RESULT_FORMATS.filter((f) => r[f] !== undefined);
  return Object.assign(r, { isMainResult, formats: () => [...present] }) as unknown as Result;
}

export interface ExecutionError {
  name: string;
  value: string;
  traceback: string;
}

export interface Logs {
  stdout: string[];
  stderr: string[];
}

export class Execution {
  constructor(
    readonly results: Result[],
    readonly logs: Logs,
    readonly error?: ExecutionError,
    /** IPython's prompt number of the cell (E2B executionCount); absent for the js eval and the plain interpreter. */
    readonly executionCount?: number,
    /** Results or formats the guest left out because of their size, each with why (forkd's own). */
    readonly dropped: string[] = [],
  ) {}

  /** The main result's text (E2B's Execution.text). */
  get text(): string | undefined {
    return this.results.find((r) => r.isMainResult)?.text;
  }

  toJSON(): { results: Array<Omit<Result, 'formats'>>; logs: Logs; error?: ExecutionError; executionCount?: number } {
    return {
      results: this.results.map((r) => {
        const o: Record<string, unknown> = {};
        for (const f of RESULT_FORMATS) if (r[f] !== undefined) o[f] = r[f];
        return { ...o, isMainResult: r.isMainResult };
      }),
      logs: this.logs,
      ...(this.error ? { error: this.error } : {}),
      ...(this.executionCount !== undefined ? { executionCount: this.executionCount } : {}),
    };
  }
}

/** The wire language for an E2B language name. */
export function evalLanguage(l: RunCodeLanguage | undefined): 'python' | 'js' | 'browser' | undefined {
  if (l === undefined || l === 'python' || l === 'browser') return l;
  if (l === 'javascript' || l === 'js') return 'js';
  throw errorFor('FORKD_E_INVALID_ARGUMENT', `language ${JSON.stringify(l)} is not offered; use 'python', 'javascript' or 'browser'`);
}

/** "a\nb\n" -> ["a\n", "b\n"]; a last line without a newline is kept as it is. */
export function splitLines(s: string): string[] {
  if (!s) return [];
  const out = s.split(/(?<=\n)/);
  return out.filter((l) => l.length > 0);
}

/** The js eval's answer (repr and JSON of the last value) as an Execution. */
export function toExecution(r: EvalResult): Execution {
  const results: Result[] = [];
  if (r.result !== null || (r.result_json !== null && r.result_json !== undefined)) {
    results.push(makeResult({ text: r.result ?? undefined, json: r.result_json === null ? undefined : r.result_json }, true));
  }
  const error = r.error !== null ? { name: r.error_type ?? 'Error', value: r.error, traceback: r.traceback ?? '' } : undefined;
  return new Execution(results, { stdout: splitLines(r.stdout), stderr: splitLines(r.stderr) }, error);
}

/** The run_code route's answer (rich results) as an Execution. */
export function fromRunCode(r: RunCodeResponse): Execution {
  const results = r.results.map(({ is_main_result, ...formats }) => makeResult(formats, is_main_result));
  return new Execution(results, { stdout: [...r.logs.stdout], stderr: [...r.logs.stderr] }, r.error ?? undefined, r.execution_count ?? undefined, [...r.dropped]);
}

/** Replays an execution through E2B's callbacks. */
export function deliver(e: Execution, o: RunCodeOpts, nowUs = Date.now() * 1000): void {
  for (const line of e.logs.stdout) o.onStdout?.({ line, timestamp: nowUs, error: false });
  for (const line of e.logs.stderr) o.onStderr?.({ line, timestamp: nowUs, error: true });
  for (const r of e.results) o.onResult?.(r);
  if (e.error) o.onError?.(e.error);
}
