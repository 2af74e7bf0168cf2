/** AgentClient: the connection plus typed conveniences for every agent method. */
import { ForkdError, LIMITS, unpackRichImages, type ExecResultT, type EvalResultT, type EntryInfoT, type ParamsOf, type ResultOf, type RichImages, type RunCodeResultT, type EvalLanguageT, type RunCodeLanguageT } from '@forkd/protocol';
import { AgentConnection, type CallOptions, type ConnectOptions } from './connection.js';
import { jsonDepthExceeds } from './json-depth.js';

/** Options of the convenience methods (a subset of CallOptions). */
export interface Opts {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Past the idle pause's gate (its own calls, made while the guest runs). */
  ungated?: boolean;
}

export interface ExecOptions extends Opts {
  /** Bytes for the process's stdin. */
  stdin?: Uint8Array;
  /** Streamed output; given either callback, the exec runs with stream: true. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  maxStreamBytes?: number;
}

/** run_code's reply with images[i] holding result i's PNG/JPEG bytes. */
export type RunCodeOutcome = RunCodeResultT & { images: RichImages[] };

/** Host-side margin on top of a guest-side timeout, so the guest's own timeout answers first. */
const GUEST_TIMEOUT_MARGIN_MS = 5_000;

export class AgentClient extends AgentConnection {
  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<AgentClient> {
    const socket = await AgentConnection.open(socketPath, opts);
    return new AgentClient(socket, opts);
  }

  async ping(o: Opts = {}): Promise<ResultOf<'ping'>> {
    return (await this.call('ping', {}, o)).result;
  }

  /** The guest's CPU ticks, memory and root-disk usage (sandbox metrics). */
  async stats(o: Opts = {}): Promise<ResultOf<'stats'>> {
    return (await this.call('stats', {}, o)).result;
  }

  async restore(p: ParamsOf<'restore'>, o: Opts = {}): Promise<ResultOf<'restore'>> {
    return (await this.call('restore', p, o)).result;
  }

  /** Sets the guest's clock to the host's (after an idle pause). */
  async clock(o: Opts = {}): Promise<ResultOf<'clock'>> {
    return (await this.call('clock', { now_ms: Date.now() }, o)).result;
  }

  async warmup(p: ParamsOf<'warmup'>, o: Opts = {}): Promise<ResultOf<'warmup'>> {
    return (await this.call('warmup', p, { timeoutMs: (p.timeout_ms ?? 600_000) + GUEST_TIMEOUT_MARGIN_MS, ...o })).result;
  }

  /** Starts recipe services in order, each until its ready check passes (see engine/recipe/services.ts). */
  async servicesStart(p: ParamsOf<'services.start'>, o: Opts = {}): Promise<ResultOf<'services.start'>> {
    const budgetMs = p.services.reduce((sum, s) => sum + s.timeout_secs * 1000 + 4_000, 0);
    return (await this.call('services.start', p, { timeoutMs: budgetMs + GUEST_TIMEOUT_MARGIN_MS, ...o })).result;
  }

  /** A fork child's values and seed (and, for a guest's fork, its waiting caller's answer). */
  async vary(p: ParamsOf<'vary'>, o: Opts = {}): Promise<ResultOf<'vary'>> {
    return (await this.call('vary', p, o)).result;
  }

  /** Long poll: the next guest forkd.fork() request (held until one comes, the signal aborts or the connection ends). */
  async guestForkWait(o: Opts = {}): Promise<ResultOf<'guest_fork.wait'>> {
    return (await this.call('guest_fork.wait', {}, { timeoutMs: LIMITS.maxExecTimeoutMs, ...o })).result;
  }

  /** The original's answer to a guest fork: its children, or why there are none. */
  async guestForkResolve(p: ParamsOf<'guest_fork.resolve'>, o: Opts = {}): Promise<ResultOf<'guest_fork.resolve'>> {
    return (await this.call('guest_fork.resolve', p, o)).result;
  }

  async servicesList(o: Opts = {}): Promise<ResultOf<'services.list'>> {
    return (await this.call('services.list', {}, o)).result;
  }

  /** Runs to completion (streaming through the callbacks if given) and returns the result. */
  async exec(p: Omit<ParamsOf<'exec'>, 'background'>, o: ExecOptions = {}): Promise<ExecResultT> {
    const stream = p.stream ?? (o.onStdout !== undefined || o.onStderr !== undefined);
    const call: CallOptions = {
      timeoutMs: o.timeoutMs ?? (p.timeout_ms ?? LIMITS.defaultExecTimeoutMs) + GUEST_TIMEOUT_MARGIN_MS,
      payload: o.stdin,
      signal: o.signal,
      maxEventBytes: o.maxStreamBytes,
      onEvent: (event, _data, payload) => {
        if (event === 'stdout') o.onStdout?.(payload);
        else if (event === 'stderr') o.onStderr?.(payload);
      },
    };
    const { result } = await this.call('exec', { ...p, stream, background: false }, call);
    if ('handle' in result) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', 'agent started a background process for a foreground exec');
    return result;
  }

  /** Starts in the background: returns {handle, pid}, or the result if it could not start. */
  async execBackground(p: Omit<ParamsOf<'exec'>, 'background' | 'stream'>, o: Opts & { stdin?: Uint8Array } = {}): Promise<ResultOf<'exec'>> {
    return (await this.call('exec', { ...p, background: true }, { ...o, payload: o.stdin })).result;
  }

  async procList(o: Opts = {}): Promise<ResultOf<'proc.list'>['processes']> {
    return (await this.call('proc.list', {}, o)).result.processes;
  }

  async procWait(handle: string, timeoutMs?: number, o: Opts = {}): Promise<ExecResultT> {
    const guest = timeoutMs ?? LIMITS.defaultExecTimeoutMs;
    return (await this.call('proc.wait', { handle, timeout_ms: guest }, { timeoutMs: guest + GUEST_TIMEOUT_MARGIN_MS, ...o })).result;
  }

  async procKill(handle: string, signal?: ParamsOf<'proc.kill'>['signal'], o: Opts = {}): Promise<boolean> {
    return (await this.call('proc.kill', signal ? { handle, signal } : { handle }, o)).result.killed;
  }

  async eval(language: EvalLanguageT, code: string, o: Opts & { evalTimeoutMs?: number } = {}): Promise<EvalResultT> {
    const guest = o.evalTimeoutMs ?? LIMITS.defaultEvalTimeoutMs;
    const r = (await this.call('eval', { language, code, timeout_ms: guest }, { timeoutMs: o.timeoutMs ?? guest + GUEST_TIMEOUT_MARGIN_MS, signal: o.signal })).result;
    // A value nested deeper than callers' serialisers go is passed on as its repr only.
    if (r.json_ok && jsonDepthExceeds(r.json, LIMITS.maxResultJsonDepth)) return { ...r, json: null, json_ok: false };
    return r;
  }

  /** A cell with rich results (run_code); each result's PNG/JPEG bytes come back beside it in images. */
  async runCode(code: string, o: Opts & { evalTimeoutMs?: number; language?: RunCodeLanguageT } = {}): Promise<RunCodeOutcome> {
    const guest = o.evalTimeoutMs ?? LIMITS.defaultEvalTimeoutMs;
    const { result, payload } = await this.call('run_code', { code, timeout_ms: guest, ...(o.language ? { language: o.language } : {}) }, { timeoutMs: o.timeoutMs ?? guest + GUEST_TIMEOUT_MARGIN_MS, signal: o.signal });
    const results = result.results.map((r) => (r.json !== undefined && jsonDepthExceeds(r.json, LIMITS.maxResultJsonDepth) ? { ...r, json: undefined } : r));
    return { ...result, results, images: unpackRichImages(result.results, payload) };
  }

  /** Reads a whole file in chunks. maxBytes (default 256 MiB) bounds what is collected. */
  async readFile(path: string, o: Opts & { maxBytes?: number } = {}): Promise<Buffer> {
    const max = o.maxBytes ?? 256 * 1024 * 1024;
    const parts: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const { result, payload } = await this.call('files.read', { path, offset, length: LIMITS.maxFileChunkBytes }, o);
      if (offset + payload.length > max || result.size > max) {
        throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `file ${path} is larger than ${max} bytes`, { path, size: result.size });
      }
      parts.push(payload);
      offset += payload.length;
      if (result.eof || payload.length === 0) break;
    }
    return Buffer.concat(parts);
  }

  /** Writes a whole file (replacing it) in chunks of LIMITS.maxFileChunkBytes. */
  async writeFile(path: string, data: Uint8Array, o: Opts & { mode?: number; mkdirs?: boolean } = {}): Promise<ResultOf<'files.write'>> {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let offset = 0;
    let last: ResultOf<'files.write'> | null = null;
    do {
      const chunk = buf.subarray(offset, offset + LIMITS.maxFileChunkBytes);
      const params: ParamsOf<'files.write'> = { path, offset, truncate: offset === 0 };
      if (o.mode !== undefined) params.mode = o.mode;
      if (o.mkdirs) params.mkdirs = true;
      last = (await this.call('files.write', params, { ...o, payload: chunk })).result;
      offset += chunk.length;
    } while (offset < buf.length);
    return last;
  }

  async list(path: string, depth?: number, o: Opts = {}): Promise<ResultOf<'files.list'>> {
    return (await this.call('files.list', depth ? { path, depth } : { path }, o)).result;
  }

  async stat(path: string, o: Opts = {}): Promise<EntryInfoT> {
    return (await this.call('files.stat', { path }, o)).result;
  }

  async mkdir(path: string, parents = true, o: Opts = {}): Promise<boolean> {
    return (await this.call('files.mkdir', { path, parents }, o)).result.created;
  }

  async remove(path: string, recursive = false, o: Opts = {}): Promise<boolean> {
    return (await this.call('files.remove', { path, recursive }, o)).result.removed;
  }

  async rename(from: string, to: string, o: Opts = {}): Promise<EntryInfoT> {
    return (await this.call('files.rename', { from, to }, o)).result;
  }
}
