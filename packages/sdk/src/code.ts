/**
 * runCode, shaped like @e2b/code-interpreter's Execution, on the daemon's persistent eval: globals
 * set by one call are there in the next (and the parent snapshot's state is there from the start).
 * Pure mapping from the wire EvalResponse; unit-tested without a VM.
 */
import type { EvalResult } from './controller.js';
import { errorFor } from './errors.js';

export type RunCodeLanguage = 'python' | 'javascript' | 'js';

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

/** E2B's Result, for the value of the last expression (forkd gives its repr and, when serialisable, its JSON). */
export interface Result {
  text?: string;
  json?: unknown;
  isMainResult: boolean;
  /** The formats present ('text', 'json'). */
  formats(): string[];
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
  constructor(readonly results: Result[], readonly logs: Logs, readonly error?: ExecutionError) {}

  /** The main result's text (E2B's Execution.text). */
  get text(): string | undefined {
    return this.results.find((r) => r.isMainResult)?.text;
  }

  toJSON(): { results: Array<Omit<Result, 'formats'>>; logs: Logs; error?: ExecutionError } {
    return { results: this.results.map(({ text, json, isMainResult }) => ({ ...(text !== undefined ? { text } : {}), ...(json !== undefined ? { json } : {}), isMainResult })), logs: this.logs, ...(this.error ? { error: this.error } : {}) };
  }
}

/** The wire language for an E2B language name. */
export function evalLanguage(l: RunCodeLanguage | undefined): 'python' | 'js' | undefined {
  if (l === undefined || l === 'python') return l;
  if (l === 'javascript' || l === 'js') return 'js';
  throw errorFor('FORKD_E_INVALID_ARGUMENT', `language ${JSON.stringify(l)} is not offered; use 'python' or 'javascript'`);
}

/** "a\nb\n" -> ["a\n", "b\n"]; a last line without a newline is kept as it is. */
export function splitLines(s: string): string[] {
  if (!s) return [];
  const out = s.split(/(?<=\n)/);
  return out.filter((l) => l.length > 0);
}

export function toExecution(r: EvalResult): Execution {
  const results: Result[] = [];
  if (r.result !== null || (r.result_json !== null && r.result_json !== undefined)) {
    const text = r.result ?? undefined;
    const json = r.result_json === null ? undefined : r.result_json;
    results.push({
      ...(text !== undefined ? { text } : {}),
      ...(json !== undefined ? { json } : {}),
      isMainResult: true,
      formats: () => [...(text !== undefined ? ['text'] : []), ...(json !== undefined ? ['json'] : [])],
    });
  }
  const error = r.error !== null ? { name: r.error_type ?? 'Error', value: r.error, traceback: r.traceback ?? '' } : undefined;
  return new Execution(results, { stdout: splitLines(r.stdout), stderr: splitLines(r.stderr) }, error);
}

/** Replays an execution through E2B's callbacks. */
export function deliver(e: Execution, o: RunCodeOpts, nowUs = Date.now() * 1000): void {
  for (const line of e.logs.stdout) o.onStdout?.({ line, timestamp: nowUs, error: false });
  for (const line of e.logs.stderr) o.onStderr?.({ line, timestamp: nowUs, error: true });
  for (const r of e.results) o.onResult?.(r);
  if (e.error) o.onError?.(e.error);
}
