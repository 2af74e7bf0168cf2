/** Sandboxes: spawn, lifecycle, agent calls (ping, exec, eval), background processes, branch. */
import { z } from 'zod';
import { AllowGuestFork, Argv, CALL_TIMEOUT_SECS, EvalLanguage, LIMITS, MACHINE_LIMITS, QUOTA_LIMITS, RunCodeLanguage, Seed, Signal, Vary, VaryValues } from '@forkd/protocol';
import { Tag, SandboxId, Metadata, Envs, GuestPath, Identity } from './common.js';
import { EgressFields, EgressView } from './egress.js';

export { ProcessHandle, ProcessInfo } from '@forkd/protocol';

const { sandboxTimeoutMs } = MACHINE_LIMITS;
const SandboxTimeoutMs = z.number().int().min(sandboxTimeoutMs.min).max(sandboxTimeoutMs.max);

export const SandboxTimings = z.object({
  spawn_to_running_ms: z.number(),
  spawn_to_ready_ms: z.number(),
  clock_skew_ms: z.number(),
});

const Q = QUOTA_LIMITS;
/**
 * Per-sandbox limits (issue 14 §5), each applied through the child's cgroup or the spawn fails
 * (FORKD_E_QUOTA_UNAVAILABLE). Unset: the daemon's default (forkd serve --default-<field>); over the
 * daemon's maximum: 400.
 */
export const QuotaFields = {
  /** The QEMU process's memory in MiB (guest pages it copied, QEMU's own, page cache it charged); over it the child is killed with end_reason "oom". */
  memory_limit_mib: z.number().int().min(Q.memoryLimitMib.min).max(Q.memoryLimitMib.max),
  /** Relative CPU share (100 = default; cgroup v2 cpu.weight, v1 cpu.shares scaled). */
  cpu_weight: z.number().int().min(Q.cpuWeight.min).max(Q.cpuWeight.max),
  /** Hard CPU cap in cores (0.5 = half a core). */
  cpu_quota: z.number().min(Q.cpuQuota.min).max(Q.cpuQuota.max),
  /** Tasks of the QEMU process (its threads; guest processes live inside the VM). */
  pids_max: z.number().int().min(Q.pidsMax.min).max(Q.pidsMax.max),
  /** The child's disk overlay in MiB: writes past it are I/O errors in the guest. */
  disk_limit_mib: z.number().int().min(Q.diskLimitMib.min).max(Q.diskLimitMib.max),
  /** Disk read bandwidth, bytes per second. */
  io_read_bps: z.number().int().min(Q.ioBps.min).max(Q.ioBps.max),
  /** Disk write bandwidth, bytes per second (cgroup v1 throttles only direct I/O: see README). */
  io_write_bps: z.number().int().min(Q.ioBps.min).max(Q.ioBps.max),
};
export type QuotaField = keyof typeof QuotaFields;
export const QUOTA_FIELDS = Object.keys(QuotaFields) as QuotaField[];

/** The limits a sandbox runs with (null: none). */
export const SandboxLimits = z.object({
  cpu_weight: QuotaFields.cpu_weight.nullable(),
  cpu_quota: QuotaFields.cpu_quota.nullable(),
  pids_max: QuotaFields.pids_max.nullable(),
  disk_limit_mib: QuotaFields.disk_limit_mib.nullable(),
  io_read_bps: QuotaFields.io_read_bps.nullable(),
  io_write_bps: QuotaFields.io_write_bps.nullable(),
});

export const SandboxInfo = z.object({
  id: SandboxId,
  snapshot_tag: Tag,
  status: z.enum(['running', 'killed']),
  pid: z.number().int().nullable(),
  created_at_unix: z.number().int(),
  /** Unix ms when the daemon kills it (E2B's timeout); null = no timeout. */
  expires_at_unix_ms: z.number().int().nullable(),
  metadata: z.record(z.string(), z.string()),
  /** How fast this child became ready (agent answered after clock + RNG reset). */
  ready: SandboxTimings,
  language: EvalLanguage,
  /** Whether the sandbox has its own way out (spawned with `network`). */
  network: z.boolean(),
  /** forkd fields: the sandbox's network namespace (a name `ip netns exec` takes), and from inside it the guest's address. */
  netns: z.string().nullable(),
  guest_addr: z.string().nullable(),
  memory_limit_mib: QuotaFields.memory_limit_mib.nullable(),
  /** The other limits it runs with. */
  limits: SandboxLimits,
  /** Why it ended, once it has: "oom" (killed by its memory limit) or "exited" (QEMU exited on its own); null while running. */
  end_reason: z.enum(['oom', 'exited']).nullable(),
  /** The egress policy asked for at spawn or by PUT …/network, resolved against the daemon's default; null when none was given. */
  egress: EgressView.nullable(),
  has_branched: z.boolean(),
  branch_count: z.number().int(),
  /** The workspace this sandbox belongs to, if any. */
  workspace: z.string().nullable(),
  /** The identity that spawned it. */
  owner: Identity,
  /** May its guest fork itself (forkd.fork()): its allow_guest_fork and how many guest forks deep it is (0: not a guest fork's child); null: not allowed. */
  guest_fork: AllowGuestFork.extend({ depth: z.number().int().min(0) }).nullable(),
  /** A fork child's index, values and RNG seed (fork with variations); null otherwise. */
  variant: z.object({ index: z.number().int(), values: VaryValues, seed: Seed }).nullable(),
  /**
   * The idle pause (daemon --pause-idle): paused = its guest is stopped now (no host CPU; the next
   * call wakes it and sets its clock); counts and time stopped so far. null: never paused (off, or
   * a sandbox with an uplink).
   */
  idle: z.object({ paused: z.boolean(), pauses: z.number().int(), wakes: z.number().int(), paused_ms: z.number().int(), last_wake_ms: z.number().nullable() }).nullable(),
});

/**
 * The per-request limit fields of a spawn (also taken by workspace create and resume), declared once.
 * forkd's null memory_limit_mib means "no value given" (the daemon's default).
 */
export const SpawnLimitFields = {
  memory_limit_mib: QuotaFields.memory_limit_mib.nullable().optional(),
  cpu_weight: QuotaFields.cpu_weight.optional(),
  cpu_quota: QuotaFields.cpu_quota.optional(),
  pids_max: QuotaFields.pids_max.optional(),
  disk_limit_mib: QuotaFields.disk_limit_mib.optional(),
  io_read_bps: QuotaFields.io_read_bps.optional(),
  io_write_bps: QuotaFields.io_write_bps.optional(),
};

/** A sandbox's own network, as spawn takes it (also workspace create and resume). */
export const NetworkFields = {
  /**
   * Its own network: a namespace, a unique address and a way out under the egress policy
   * (default deny). Without it the sandbox reaches nothing; its ports can still be exposed.
   */
  network: z.boolean().optional(),
  /** forkd's name for `network` (the same). */
  per_child_netns: z.boolean().optional(),
};

const notYet = (what: string) => z.boolean().optional().refine((v) => v !== true, `${what} is not supported by this forkd`);

export const SpawnBody = z.object({
  snapshot_tag: Tag,
  n: z.number().int().min(1).max(MACHINE_LIMITS.spawnMax).default(1),
  timeout_ms: SandboxTimeoutMs.optional(),
  metadata: Metadata.optional(),
  /** Environment for every command and eval in the sandbox (per-call envs override). */
  envs: Envs.optional(),
  /** Egress policy (enforced on children with a network). */
  ...EgressFields,
  ...NetworkFields,
  /** forkd's fields, accepted for compatibility; the features they ask for are not offered here. */
  prewarm: notYet('prewarm'),
  live_fork: notYet('live_fork'),
  hugepages: notYet('hugepages'),
  ...SpawnLimitFields,
  /**
   * Let programs in the guest fork the sandbox (forkd.fork(k, vary) in Python or Node): at most
   * max_count children per call, at most max_depth guest forks deep. The children count against
   * the daemon's limits like any fork's. Off by default: without it the guest call fails with
   * FORKD_E_GUEST_FORK_DENIED.
   */
  allow_guest_fork: AllowGuestFork.optional(),
  /** Each of the n children's values (as a fork's vary): {"temperature": [0.1, 0.5, 0.9]} or one object per child. */
  vary: Vary.optional(),
  /** Each child's RNG seed (default: random when vary is given; reported in each sandbox's variant). */
  seeds: z.array(Seed).max(MACHINE_LIMITS.spawnMax).optional(),
}).strict();

export const ListSandboxesQuery = z.object({
  tag: Tag.optional(),
  /** metadata filter as key=value (E2B's list query). */
  metadata: z.string().max(1024).optional(),
}).strict();

export const SetTimeoutBody = z.object({ timeout_ms: SandboxTimeoutMs }).strict();

/** A guest TCP port to expose on the host (E2B's getHost). */
export const ExposePortBody = z.object({ port: z.number().int().min(1).max(65535) }).strict();
export const ExposedPort = z.object({
  /** Where a host client connects (loopback unless the operator chose another address). */
  host: z.string(),
  port: z.number().int(),
  guest_port: z.number().int(),
});

export const PingResponse = z.object({
  pong: z.literal(true),
  warmup_ready: z.boolean(),
  agent_version: z.string(),
  uptime_ms: z.number(),
  languages: z.array(EvalLanguage),
});

/** The longest single call (seconds); also what a client's 0 ("no timeout") becomes. */
export const MAX_CALL_TIMEOUT_SECS = CALL_TIMEOUT_SECS.max;
const callTimeoutSecs = (byDefault: number) => z.number().positive().max(CALL_TIMEOUT_SECS.max).default(byDefault);

export const ExecBody = z.object({
  /** forkd's form: argv, no shell. */
  args: Argv.optional(),
  /** A shell command line (`&&`, pipes work), run with /bin/sh -c. */
  cmd: z.string().min(1).max(LIMITS.maxCodeBytes).optional(),
  timeout_secs: callTimeoutSecs(CALL_TIMEOUT_SECS.exec),
  envs: Envs.optional(),
  cwd: GuestPath.optional(),
  /** Text for the process's stdin (UTF-8). */
  stdin: z.string().max(LIMITS.maxFileChunkBytes).optional(),
  /** true: the response is NDJSON, one ExecStreamLine per line, as output is produced. */
  stream: z.boolean().optional(),
}).strict().refine((b) => (b.args === undefined) !== (b.cmd === undefined), 'exactly one of args or cmd is required');

export const ExecResponse = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number().int().nullable(),
  /** The signal that ended it (e.g. SIGKILL), or null when it exited. */
  signal: z.string().nullable(),
  /** Why the command did not run or finish normally (missing binary, timeout, signal); null when it exited. */
  error: z.string().nullable(),
  timed_out: z.boolean(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  duration_ms: z.number(),
});

/** One line of a streamed exec: output chunks as they come, then the result (without the output). */
export const ExecStreamLine = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stdout'), data: z.string() }),
  z.object({ type: z.literal('stderr'), data: z.string() }),
  z.object({ type: z.literal('exit'), exit_code: z.number().int().nullable(), signal: z.string().nullable(), error: z.string().nullable(), timed_out: z.boolean(), duration_ms: z.number() }),
  z.object({ type: z.literal('error'), error: z.object({ code: z.string(), message: z.string() }) }),
]);

export const EvalBody = z.object({
  code: z.string().max(LIMITS.maxCodeBytes),
  /** Default: the snapshot's language. */
  language: EvalLanguage.optional(),
  timeout_secs: callTimeoutSecs(CALL_TIMEOUT_SECS.eval),
}).strict();

export const EvalResponse = z.object({
  /** repr of the last expression (forkd's `result`). */
  result: z.string().nullable(),
  /** The value as JSON when serialisable (forkd's Node-only `result_json`, here for both languages). */
  result_json: z.unknown(),
  error: z.string().nullable(),
  error_type: z.string().nullable(),
  traceback: z.string().nullable(),
  exit_code: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  duration_ms: z.number(),
});

export const RunCodeBody = z.object({
  code: z.string().max(LIMITS.maxCodeBytes),
  /** python: a cell in the persistent interpreter; browser: browser code whose PNG value (page.screenshot()) is a PNG result. Default: browser for a browser snapshot, else python. */
  language: RunCodeLanguage.optional(),
  timeout_secs: callTimeoutSecs(CALL_TIMEOUT_SECS.eval),
}).strict();

const richText = z.string().max(LIMITS.richResults.maxTextChars);
/** Base64 of at most LIMITS.richResults.maxImageBytes bytes. */
const richImage = z.string().max(Math.ceil(LIMITS.richResults.maxImageBytes / 3) * 4);
/** One display result, as E2B's Result (formats it does not have are absent). */
export const RichResult = z.object({
  text: richText.optional(),
  html: richText.optional(),
  markdown: richText.optional(),
  svg: richText.optional(),
  /** PNG file, base64. */
  png: richImage.optional(),
  /** JPEG file, base64. */
  jpeg: richImage.optional(),
  latex: richText.optional(),
  json: z.unknown().optional(),
  javascript: richText.optional(),
  /** The value of the cell's last expression (E2B isMainResult); display() output is not. */
  is_main_result: z.boolean(),
});
export const RunCodeResponse = z.object({
  results: z.array(RichResult).max(LIMITS.richResults.maxResults),
  logs: z.object({ stdout: z.array(z.string()), stderr: z.array(z.string()) }),
  error: z.object({ name: z.string(), value: z.string(), traceback: z.string() }).nullable(),
  execution_count: z.number().int().nullable(),
  /** ipython: the image has IPython (the code-interpreter recipe); plain: forkd's own interpreter (fewer formats, display() of _repr_*_ only). */
  interpreter: z.enum(['ipython', 'plain', 'browser']),
  /** Results or formats left out because of their size (LIMITS.richResults), each with why. */
  dropped: z.array(z.string()),
  duration_ms: z.number(),
});

export const ProcessStartBody = z.object({
  args: Argv.optional(),
  cmd: z.string().min(1).max(LIMITS.maxCodeBytes).optional(),
  envs: Envs.optional(),
  cwd: GuestPath.optional(),
  /** Kill it after this long (default: no limit). */
  timeout_secs: z.number().positive().max(LIMITS.maxExecTimeoutMs / 1000).optional(),
}).strict().refine((b) => (b.args === undefined) !== (b.cmd === undefined), 'exactly one of args or cmd is required');

export const ProcessWaitBody = z.object({ timeout_secs: callTimeoutSecs(CALL_TIMEOUT_SECS.processWait) }).strict();
export const ProcessKillBody = z.object({ signal: Signal.default('SIGKILL') }).strict();
export const Killed = z.object({ killed: z.boolean() });

export const BranchBody = z.object({
  tag: Tag.optional(),
  /** full: paused for the whole capture. live: memory copied while the source runs; paused only for the last dirty pages and device state. diff: forkd's name for full (every branch is stored as a layer). */
  mode: z.enum(['full', 'live', 'diff']).optional(),
  /** false: 202 with the snapshot in status "writing" and its job_id; GET /v1/snapshots shows when it is ready (or failed). */
  wait: z.boolean().optional(),
}).strict();

export const ForkBody = z.object({
  count: z.number().int().min(1).max(MACHINE_LIMITS.forkMax).default(1),
  timeout_ms: SandboxTimeoutMs.optional(),
  mode: z.enum(['full', 'live']).optional(),
  metadata: Metadata.optional(),
  /**
   * Each child's values, before it answers: environment variables of new processes, variables of
   * its persistent interpreters (Python, JS). {"temperature": [0.1, 0.5, 0.9]} (one value per child)
   * or [{"temperature": 0.1}, ...] (one object per child).
   */
  vary: Vary.optional(),
  /** Each child's RNG seed (Python random and numpy, JS Math.random, FORKD_SEED); default: random, reported in `children`. */
  seeds: z.array(Seed).max(MACHINE_LIMITS.forkMax).optional(),
}).strict();
/** One child of a fork: its index, values and seed. */
export const ForkChild = z.object({ id: SandboxId, index: z.number().int(), values: VaryValues, seed: Seed });
export const ForkResponse = z.object({
  snapshot_tag: Tag,
  /** How long the source was paused for the capture. */
  pause_ms: z.number(),
  /** From the request to every child ready with its values (capture, restores, vary). */
  fork_ms: z.number(),
  sandboxes: z.array(SandboxInfo),
  /** sandboxes[i]'s index, values and seed. */
  children: z.array(ForkChild),
});
