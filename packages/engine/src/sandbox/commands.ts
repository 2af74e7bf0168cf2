/** Commands in a guest: runs to completion (collected or streamed) and background processes. */
import type { ExecResultT, ParamsOf, ProcessInfoT, ResultOf } from '@forkd/protocol';
import type { AgentClient } from '../agent-client/index.js';

export type Envs = Record<string, string>;

/** What to run (argv or shell, env, cwd, timeout_ms, max_output_bytes); the method picks stream and background. */
export type ExecRequest = Omit<ParamsOf<'exec'>, 'stream' | 'background'>;

export interface ExecOptions {
  /** Bytes for the process's stdin. */
  stdin?: Uint8Array;
  /** Streamed output; given either callback, the output arrives while the process runs. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /** Total streamed bytes before the call is cut. */
  maxStreamBytes?: number;
}

/** A background start: {handle, pid}, or the process's result when it could not start. */
export type StartResult = ResultOf<'exec'>;
export type ProcessSignal = NonNullable<ParamsOf<'proc.kill'>['signal']>;

export class SandboxCommands {
  readonly #agent: () => AgentClient;
  readonly #envs: () => Envs;

  /** envs: the sandbox's environment, under every request's own env. */
  constructor(agent: () => AgentClient, envs: () => Envs) {
    this.#agent = agent;
    this.#envs = envs;
  }

  /** Runs to completion and returns the result (the output also streams through the callbacks if given). */
  exec(request: ExecRequest, o: ExecOptions = {}): Promise<ExecResultT> {
    return this.#agent().exec(this.#withEnvs(request), {
      ...(o.stdin ? { stdin: o.stdin } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onStdout ? { onStdout: o.onStdout } : {}),
      ...(o.onStderr ? { onStderr: o.onStderr } : {}),
      ...(o.maxStreamBytes !== undefined ? { maxStreamBytes: o.maxStreamBytes } : {}),
    });
  }

  /** Starts in the background; the guest keeps its last output for wait. */
  start(request: Omit<ExecRequest, 'max_output_bytes'>, o: { stdin?: Uint8Array; signal?: AbortSignal } = {}): Promise<StartResult> {
    return this.#agent().execBackground(this.#withEnvs(request), o);
  }

  list(o: { signal?: AbortSignal } = {}): Promise<ProcessInfoT[]> {
    return this.#agent().procList(o);
  }

  /** Waits up to timeoutMs (in the guest) for a background process and returns its result. */
  wait(handle: string, timeoutMs?: number, o: { signal?: AbortSignal } = {}): Promise<ExecResultT> {
    return this.#agent().procWait(handle, timeoutMs, o);
  }

  kill(handle: string, signal?: ProcessSignal, o: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.#agent().procKill(handle, signal, o);
  }

  #withEnvs<R extends { env?: Envs }>(request: R): R {
    return { ...request, env: { ...this.#envs(), ...(request.env ?? {}) } };
  }
}
