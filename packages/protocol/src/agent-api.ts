/**
 * The agent's methods, declared once. The guest validates params with these schemas; the host
 * validates results with them. Binary data travels in the frame payload, never base64 in JSON.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';
import { Argv, EntryInfo, GuestPath, MergedEnvMap, ProcessHandle, ProcessInfo, Signal } from './shapes.js';
import { MACHINE_LIMITS } from './limits.js';
import { SANDBOX_ID_PATTERN } from './names.js';
import { Seed, VaryValues } from './vary.js';

export const PROTOCOL_VERSION = 1;

/**
 * What eval runs: the persistent Python interpreter, the persistent JS context, or the guest's
 * warm browser (the playwright-browser recipe): the code is the body of an async function with
 * Playwright's browser, context and page in scope.
 */
export const EvalLanguage = z.enum(['python', 'js', 'browser']);

const timeoutMs = z.number().int().positive().max(LIMITS.maxExecTimeoutMs);

export const PingParams = z.object({}).strict();
export const WarmupState = z.enum(['cold', 'warming', 'warm', 'failed']);
export const PingResult = z.object({
  pong: z.literal(true),
  protocol: z.number().int(),
  agent_version: z.string(),
  warmup: WarmupState,
  warmup_error: z.string().nullable(),
  languages: z.array(EvalLanguage),
  pid: z.number().int(),
  uptime_ms: z.number(),
  restores: z.number().int(),
});

export const RestoreParams = z.object({
  now_ms: z.number().positive(),
  entropy_b64: z.string().max(Math.ceil(LIMITS.maxEntropyBytes / 3) * 4 + 4),
}).strict();
export const RestoreResult = z.object({
  skew_ms: z.number(),
  clock_set: z.boolean(),
  rng_reseeded: z.boolean(),
  userspace_reseeded: z.array(z.string()),
  /** Where the guest spent the restore (guest monotonic ms), for profiles. */
  phases_ms: z.object({ validate: z.number(), system: z.number(), userspace: z.number(), total: z.number() }).optional(),
});

/** After the host held the VM stopped (idle pause): set the clock only; RNG state is untouched (no fork happened). */
export const ClockParams = z.object({ now_ms: z.number().positive() }).strict();
export const ClockResult = z.object({ skew_ms: z.number(), clock_set: z.boolean() });

export const BrowserWarmup = z.object({
  cdp_port: z.number().int().min(1).max(65535),
  code: z.string().max(LIMITS.maxCodeBytes).optional(),
}).strict();
export const WarmupParams = z.object({
  python: z.string().max(LIMITS.maxCodeBytes).optional(),
  js: z.string().max(LIMITS.maxCodeBytes).optional(),
  /** Python modules to have imported in the persistent interpreter. */
  python_modules: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)).max(64).optional(),
  /** A cell run through run_code after `python` (the code-interpreter draws a plot once), so its path is warm in children. */
  python_cell: z.string().max(LIMITS.maxCodeBytes).optional(),
  /** Connect Playwright to the browser a recipe service started (its DevTools port on the guest's loopback), open a context and a page, then run `code` as a browser eval. */
  browser: BrowserWarmup.optional(),
  timeout_ms: timeoutMs.optional(),
}).strict();
export const WarmupResult = z.object({
  duration_ms: z.number(),
  warmup: WarmupState,
  /** Why warm-up failed (added in protocol 1, optional for older agents). */
  error: z.string().nullable().optional(),
});

/**
 * Recipe services: long-running processes the parent starts before the snapshot, so every child
 * restores with them already running. Each has one ready check, polled until it passes or the
 * service's timeout ends (never a fixed sleep).
 */
export const ServiceName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'service name: lowercase letters, digits, _ -');
/** A Unix account name as Debian's adduser accepts it. */
export const GuestUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'invalid user name');
const httpUrl = z.string().max(2048).url().refine((u) => /^https?:\/\//.test(u), 'ready url must be http:// or https://');
/** Exactly one check: a TCP port on the guest's loopback accepts, a URL answers 2xx/3xx, a file exists, a command exits 0. */
export const ServiceReady = z.union([
  z.object({ port: z.number().int().min(1).max(65535) }).strict(),
  z.object({ url: httpUrl }).strict(),
  z.object({ file: GuestPath }).strict(),
  z.object({ cmd: z.string().min(1).max(LIMITS.maxArgBytes) }).strict(),
]);
export const ServiceSpec = z.object({
  name: ServiceName,
  /** argv, or a shell command (run by the guest's shell; `exec` the server to keep its pid). */
  start: z.union([Argv, z.string().min(1).max(LIMITS.maxArgBytes)]),
  /** Runs as this guest account (postgres refuses root); default root. */
  user: GuestUser.optional(),
  env: MergedEnvMap.optional(),
  cwd: GuestPath.optional(),
  ready: ServiceReady,
  timeout_secs: z.number().int().min(1).max(LIMITS.services.maxTimeoutSecs),
}).strict();
export const ServiceList = z.array(ServiceSpec).max(LIMITS.services.maxServices)
  .refine((l) => new Set(l.map((s) => s.name)).size === l.length, 'service names must be unique');
export const ServicesStartParams = z.object({ services: ServiceList }).strict();
/** ready: its check passed; exited: it ended (or never started) first; not_ready: its timeout ran out (it was killed). */
export const ServiceState = z.enum(['ready', 'exited', 'not_ready']);
export const ServiceStatus = z.object({
  name: z.string(),
  state: ServiceState,
  pid: z.number().int().nullable(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** Why it could not start (spawn error), or why its ready check last failed. */
  error: z.string().nullable(),
  /** The service's newest stdout+stderr (interleaved as written). */
  output: z.string(),
  output_truncated: z.boolean(),
  ready_ms: z.number(),
});
/** Services are started in order; the first that fails stops the rest from starting. */
export const ServicesStartResult = z.object({ services: z.array(ServiceStatus) });
export const ServicesListParams = z.object({}).strict();
/** Whether each started service's process is alive now (a child checks what it restored). */
export const ServicesListResult = z.object({ services: z.array(z.object({ name: z.string(), pid: z.number().int().nullable(), running: z.boolean() })) });

export const ExecParams = z.object({
  argv: Argv.optional(),
  shell: z.string().min(1).max(LIMITS.maxCodeBytes).optional(),
  env: MergedEnvMap.optional(),
  cwd: GuestPath.optional(),
  timeout_ms: timeoutMs.optional(),
  /** Send stdout/stderr as `evt` frames while the process runs. */
  stream: z.boolean().optional(),
  /** Start in the background and return a handle at once. */
  background: z.boolean().optional(),
  max_output_bytes: z.number().int().positive().max(LIMITS.maxOutputBytes).optional(),
}).strict().refine((p) => (p.argv === undefined) !== (p.shell === undefined), 'exactly one of argv or shell is required');
export const ExecResult = z.object({
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  timed_out: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  duration_ms: z.number(),
  error: z.string().nullable(),
});
export const ExecStarted = z.object({ handle: ProcessHandle, pid: z.number().int() });

export const ProcListParams = z.object({}).strict();
export const ProcListResult = z.object({ processes: z.array(ProcessInfo) });
export const ProcWaitParams = z.object({ handle: ProcessHandle, timeout_ms: timeoutMs.optional() }).strict();
export const ProcKillParams = z.object({ handle: ProcessHandle, signal: Signal.optional() }).strict();
export const ProcKillResult = z.object({ killed: z.boolean() });

export const FilesReadParams = z.object({
  path: GuestPath,
  offset: z.number().int().nonnegative().optional(),
  length: z.number().int().positive().max(LIMITS.maxFileChunkBytes).optional(),
}).strict();
export const FilesReadResult = z.object({ size: z.number(), bytes: z.number().int(), eof: z.boolean() });
export const FilesWriteParams = z.object({
  path: GuestPath,
  /** Byte offset of this chunk; 0 with truncate starts the file over. */
  offset: z.number().int().nonnegative().optional(),
  truncate: z.boolean().optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
  mkdirs: z.boolean().optional(),
}).strict();
export const FilesWriteResult = z.object({ path: z.string(), size: z.number() });
export const FilesListParams = z.object({ path: GuestPath, depth: z.number().int().min(1).max(LIMITS.maxListDepth).optional() }).strict();
export const FilesListResult = z.object({ entries: z.array(EntryInfo), truncated: z.boolean() });
export const FilesStatParams = z.object({ path: GuestPath }).strict();
export const FilesMkdirParams = z.object({ path: GuestPath, parents: z.boolean().optional() }).strict();
export const FilesMkdirResult = z.object({ created: z.boolean() });
export const FilesRemoveParams = z.object({ path: GuestPath, recursive: z.boolean().optional() }).strict();
export const FilesRemoveResult = z.object({ removed: z.boolean() });
export const FilesRenameParams = z.object({ from: GuestPath, to: GuestPath }).strict();

export const EvalParams = z.object({
  language: EvalLanguage,
  code: z.string().max(LIMITS.maxCodeBytes),
  timeout_ms: timeoutMs.optional(),
}).strict();
export const EvalError = z.object({ type: z.string(), message: z.string(), traceback: z.string() });
export const EvalResult = z.object({
  ok: z.boolean(),
  /** repr() / util.inspect() of the value of the last expression, or null. */
  repr: z.string().nullable(),
  /** The value as JSON when it is serialisable, else null (see json_ok). */
  json: z.unknown(),
  json_ok: z.boolean(),
  error: EvalError.nullable(),
  stdout: z.string(),
  stderr: z.string(),
  duration_ms: z.number(),
});

/**
 * run_code: a cell in the persistent Python interpreter with IPython's semantics (display(), the
 * display protocol, the last expression as the main result, open matplotlib figures as PNGs), the
 * way E2B's runCode answers. PNG and JPEG bytes travel in the frame's payload, concatenated in
 * result order (png before jpeg within a result); each result says how many bytes are its own.
 */
/** run_code's languages: a Python cell, or browser code whose PNG value (page.screenshot()) is a PNG result. */
export const RunCodeLanguage = z.enum(['python', 'browser']);
export const RunCodeParams = z.object({
  code: z.string().max(LIMITS.maxCodeBytes),
  language: RunCodeLanguage.optional(),
  timeout_ms: timeoutMs.optional(),
}).strict();
const richText = z.string().max(LIMITS.richResults.maxTextChars);
const imageBytes = z.number().int().positive().max(LIMITS.richResults.maxImageBytes);
export const RichResultWire = z.object({
  text: richText.optional(),
  html: richText.optional(),
  markdown: richText.optional(),
  svg: richText.optional(),
  latex: richText.optional(),
  javascript: richText.optional(),
  json: z.unknown().optional(),
  png_bytes: imageBytes.optional(),
  jpeg_bytes: imageBytes.optional(),
  is_main_result: z.boolean(),
}).strict();
export const RunCodeError = z.object({ name: z.string(), value: z.string(), traceback: z.string() });
export const RunCodeResult = z.object({
  results: z.array(RichResultWire).max(LIMITS.richResults.maxResults),
  /** Output as it was written, chunk by chunk (E2B's logs). */
  stdout: z.array(z.string()),
  stderr: z.array(z.string()),
  error: RunCodeError.nullable(),
  /** IPython's prompt number of this cell; null in the plain interpreter. */
  execution_count: z.number().int().nullable(),
  /** What ran the cell: IPython when the image has it, else forkd's plain interpreter. */
  interpreter: z.enum(['ipython', 'plain', 'browser']),
  /** Results or formats left out because of LIMITS.richResults, each with why. */
  dropped: z.array(z.string().max(1000)).max(LIMITS.richResults.maxResults * 10),
  duration_ms: z.number(),
});

/**
 * Fork with variations: a child's values and seed, given after its restore and before it answers
 * anything else. With guest_fork, the child is one of a guest's forkd.fork() and the guest caller
 * blocked in that call gets {role: "child", index, values, seed}.
 */
export const GuestForkRequestId = z.string().regex(/^gf-[0-9a-f]{16}$/, 'invalid guest fork request id');
export const VaryParams = z.object({
  index: z.number().int().min(0).max(MACHINE_LIMITS.forkMax - 1),
  values: VaryValues,
  seed: Seed,
  guest_fork: z.object({ request_id: GuestForkRequestId }).strict().optional(),
  /** The host will watch this child for guest forks: calls made before its first guest_fork.wait are queued, not refused. */
  watch_guest_forks: z.boolean().optional(),
}).strict();
export const VaryResult = z.object({
  /** The names now in every new process's environment (the values' and FORKD_SEED). */
  env: z.array(z.string()),
  /** The generators seeded from `seed`, and the interpreters given the values. */
  applied: z.array(z.string()),
  /** Whether a guest caller was waiting in that fork and got its answer. */
  guest_fork_delivered: z.boolean(),
});
/**
 * A guest's own fork: the host holds one guest_fork.wait open on a sandbox allowed to fork itself;
 * it returns when a guest program calls forkd.fork(count, vary) (the agent expanded vary to one
 * object per child). The host answers the original with guest_fork.resolve (children or an error).
 */
export const GuestForkWaitParams = z.object({}).strict();
export const GuestForkWaitResult = z.object({
  request_id: GuestForkRequestId,
  count: z.number().int().min(1).max(MACHINE_LIMITS.forkMax),
  vary: z.array(VaryValues).max(MACHINE_LIMITS.forkMax),
  /** Guest monotonic ms when the guest called (the agent received the request). */
  called_at_ms: z.number(),
}).strict().refine((r) => r.vary.length === r.count, 'vary must hold one object per child');
const SandboxIdString = z.string().regex(SANDBOX_ID_PATTERN);
export const GuestForkResolveParams = z.object({
  request_id: GuestForkRequestId,
  children: z.array(SandboxIdString).max(MACHINE_LIMITS.forkMax).optional(),
  error: z.object({ code: z.string().max(64), message: z.string().max(LIMITS.maxErrorMessageChars) }).strict().optional(),
  /** What the fork cost, for the guest caller (benchmarks read it): the original's pause and call → all children continuing. */
  timings: z.object({ pause_ms: z.number(), fork_ms: z.number() }).strict().optional(),
}).strict().refine((p) => (p.children === undefined) !== (p.error === undefined), 'exactly one of children or error');
export const GuestForkResolveResult = z.object({ delivered: z.boolean() });

/**
 * stats: the guest's own view for sandbox metrics. cpu_* are /proc/stat's aggregate jiffies (the
 * host turns two samples into a percentage); memory from /proc/meminfo (used = total - available);
 * disk from statfs of / (used = blocks - free, of what non-root users see as total).
 */
export const StatsParams = z.object({}).strict();
export const StatsResult = z.object({
  cpu_count: z.number().int().nonnegative(),
  cpu_busy_ticks: z.number().nonnegative(),
  cpu_total_ticks: z.number().nonnegative(),
  mem_total_bytes: z.number().nonnegative(),
  mem_used_bytes: z.number().nonnegative(),
  disk_total_bytes: z.number().nonnegative(),
  disk_used_bytes: z.number().nonnegative(),
  /** Guest clock when sampled (unix ms). */
  time_unix_ms: z.number(),
});

/** Method name -> params and result schemas. */
export const AGENT_METHODS = {
  ping: { params: PingParams, result: PingResult },
  restore: { params: RestoreParams, result: RestoreResult },
  clock: { params: ClockParams, result: ClockResult },
  warmup: { params: WarmupParams, result: WarmupResult },
  exec: { params: ExecParams, result: z.union([ExecResult, ExecStarted]) },
  'proc.list': { params: ProcListParams, result: ProcListResult },
  'proc.wait': { params: ProcWaitParams, result: ExecResult },
  'proc.kill': { params: ProcKillParams, result: ProcKillResult },
  'files.read': { params: FilesReadParams, result: FilesReadResult },
  'files.write': { params: FilesWriteParams, result: FilesWriteResult },
  'files.list': { params: FilesListParams, result: FilesListResult },
  'files.stat': { params: FilesStatParams, result: EntryInfo },
  'files.mkdir': { params: FilesMkdirParams, result: FilesMkdirResult },
  'files.remove': { params: FilesRemoveParams, result: FilesRemoveResult },
  'files.rename': { params: FilesRenameParams, result: EntryInfo },
  eval: { params: EvalParams, result: EvalResult },
  run_code: { params: RunCodeParams, result: RunCodeResult },
  'services.start': { params: ServicesStartParams, result: ServicesStartResult },
  'services.list': { params: ServicesListParams, result: ServicesListResult },
  vary: { params: VaryParams, result: VaryResult },
  'guest_fork.wait': { params: GuestForkWaitParams, result: GuestForkWaitResult },
  'guest_fork.resolve': { params: GuestForkResolveParams, result: GuestForkResolveResult },
  stats: { params: StatsParams, result: StatsResult },
} as const;

export type AgentMethod = keyof typeof AGENT_METHODS;
export type ParamsOf<M extends AgentMethod> = z.input<(typeof AGENT_METHODS)[M]['params']>;
export type ResultOf<M extends AgentMethod> = z.output<(typeof AGENT_METHODS)[M]['result']>;

export type PingResultT = z.output<typeof PingResult>;
export type StatsResultT = z.output<typeof StatsResult>;
export type ExecParamsT = z.input<typeof ExecParams>;
export type ExecResultT = z.output<typeof ExecResult>;
export type EvalResultT = z.output<typeof EvalResult>;
export type EvalLanguageT = z.output<typeof EvalLanguage>;
export type RunCodeLanguageT = z.output<typeof RunCodeLanguage>;
export type RunCodeResultT = z.output<typeof RunCodeResult>;
export type RichResultWireT = z.output<typeof RichResultWire>;
export type ServiceSpecT = z.output<typeof ServiceSpec>;
export type ServiceStatusT = z.output<typeof ServiceStatus>;
export type GuestForkRequestT = z.output<typeof GuestForkWaitResult>;

export function isAgentMethod(m: unknown): m is AgentMethod {
  return typeof m === 'string' && Object.prototype.hasOwnProperty.call(AGENT_METHODS, m);
}

/** Frame headers. `evt` frames carry streamed output of the request with the same id. */
const ErrorBody = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });
export const RequestHeader = z.object({ kind: z.literal('req'), id: z.number().int().nonnegative(), method: z.string().max(64), params: z.unknown() });
export const ResponseHeader = z.object({
  kind: z.literal('res'),
  id: z.number().int().nonnegative(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  /** The result is JSON at the head of the payload, this long (result-frame.ts): headers stay small. */
  result_bytes: z.number().int().nonnegative().max(LIMITS.maxFrameBytes).optional(),
  error: ErrorBody.optional(),
});
export const EventHeader = z.object({ kind: z.literal('evt'), id: z.number().int().nonnegative(), event: z.string().max(64), data: z.unknown().optional() });
export const CancelHeader = z.object({ kind: z.literal('cancel'), id: z.number().int().nonnegative() });
export const FrameHeader = z.discriminatedUnion('kind', [RequestHeader, ResponseHeader, EventHeader, CancelHeader]);
