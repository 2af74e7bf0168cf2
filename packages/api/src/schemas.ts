/**
 * Wire types of the REST API (snake_case, as the original forkd). Field names match forkd where
 * it has them; additions are documented per field.
 */
import { z } from 'zod';
import { TAG_PATTERN, SANDBOX_ID_PATTERN, ERROR_CODES, LIMITS } from '@forkd/protocol';

export const Tag = z.string().regex(TAG_PATTERN, 'invalid tag').refine((t) => !t.includes('..'), 'invalid tag').describe('snapshot tag');
export const SandboxId = z.string().regex(SANDBOX_ID_PATTERN, 'invalid sandbox id');
const GuestPath = z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'path must be absolute').refine((p) => !p.includes('\0'), 'path must not contain NUL');
const Metadata = z.record(z.string().max(128), z.string().max(1024)).refine((m) => Object.keys(m).length <= 64, 'at most 64 metadata keys');
const Envs = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'invalid environment variable name'), z.string().max(32 * 1024)).refine((m) => Object.keys(m).length <= 256, 'at most 256 variables');

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...Array<keyof typeof ERROR_CODES>]),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const Healthz = z.object({ ok: z.literal(true) });
export const Version = z.object({ version: z.string(), api: z.literal('v1'), qemu: z.string().nullable(), accel: z.enum(['kvm', 'tcg']).nullable() });

export const SnapshotInfo = z.object({
  tag: Tag,
  created_at_unix: z.number().int(),
  status: z.enum(['writing', 'ready', 'failed']),
  bootable: z.boolean(),
  recipe: z.string().nullable(),
  language: z.enum(['python', 'js']),
  accel: z.enum(['kvm', 'tcg']),
  mem_mib: z.number().int(),
  vcpus: z.number().int(),
  parent_tag: z.string().nullable(),
  branched_from: z.string().nullable(),
  memory_physical_bytes: z.number(),
  disk_physical_bytes: z.number(),
  live_sandboxes: z.number().int(),
});
export const SnapshotInfoDetail = SnapshotInfo.extend({
  memory_logical_bytes: z.number(),
  vmstate_bytes: z.number(),
  qemu_version: z.string(),
  kernel_version: z.string(),
  image_key: z.string(),
  chain_depth: z.number().int(),
  ancestors: z.array(z.string()),
  dependents: z.array(z.string()),
  timings: z.object({ boot_to_agent_ms: z.number(), warmup_ms: z.number(), save_ms: z.number(), total_ms: z.number() }),
});
export const CreateSnapshotBody = z.object({
  tag: Tag,
  recipe: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'recipe must be a recipe name (no paths)'),
  mem_mib: z.number().int().min(128).max(65536).optional(),
  vcpus: z.number().int().min(1).max(8).optional(),
  /** false (default): 202 with a job to poll. true: block until done, 201 SnapshotInfo. */
  wait: z.boolean().optional(),
}).strict();
export const DeleteSnapshotQuery = z.object({
  cascade: z.enum(['true', 'false']).optional(),
  force: z.enum(['true', 'false']).optional(),
}).strict();

export const Job = z.object({
  id: z.string(),
  kind: z.enum(['snapshot.create']),
  status: z.enum(['queued', 'running', 'succeeded', 'failed']),
  created_at_unix: z.number().int(),
  progress: z.object({ phase: z.string(), message: z.string(), fraction: z.number().nullable() }),
  result: z.unknown().nullable(),
  error: ErrorBody.shape.error.nullable(),
});

export const SandboxTimings = z.object({
  spawn_to_running_ms: z.number(),
  spawn_to_ready_ms: z.number(),
  clock_skew_ms: z.number(),
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
  envs: z.record(z.string(), z.string()),
  ready: SandboxTimings.nullable(),
  has_branched: z.boolean(),
  branch_count: z.number().int(),
});
export const SpawnBody = z.object({
  snapshot_tag: Tag,
  n: z.number().int().min(1).max(1000).default(1),
  timeout_ms: z.number().int().min(1000).max(24 * 3600 * 1000).optional(),
  metadata: Metadata.optional(),
  envs: Envs.optional(),
}).strict();
export const SetTimeoutBody = z.object({ timeout_ms: z.number().int().min(1000).max(24 * 3600 * 1000) }).strict();
export const KillQuery = z.object({}).strict();

export const PingResponse = z.object({
  pong: z.literal(true),
  warmup_ready: z.boolean(),
  agent_version: z.string(),
  uptime_ms: z.number(),
  languages: z.array(z.enum(['python', 'js'])),
});

export const MAX_EXEC_TIMEOUT_SECS = 3600;
export const ExecBody = z.object({
  /** forkd's form: argv, no shell. */
  args: z.array(z.string().max(128 * 1024)).min(1).max(4096).optional(),
  /** A shell command line (`&&`, pipes work): run with bash -c. */
  cmd: z.string().min(1).max(LIMITS.maxCodeBytes).optional(),
  timeout_secs: z.number().positive().max(MAX_EXEC_TIMEOUT_SECS).default(30),
  envs: Envs.optional(),
  cwd: GuestPath.optional(),
  /** Bytes for the process's stdin (UTF-8). */
  stdin: z.string().max(LIMITS.maxFileChunkBytes).optional(),
  /** true: respond with NDJSON lines as output is produced ({"type":"stdout"|"stderr","data"} ... {"type":"exit",...}). */
  stream: z.boolean().optional(),
}).strict().refine((b) => (b.args === undefined) !== (b.cmd === undefined), 'exactly one of args or cmd is required');
export const ExecResponse = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number().int().nullable(),
  error: z.string().nullable(),
  timed_out: z.boolean(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  duration_ms: z.number(),
});

export const EvalBody = z.object({
  code: z.string().max(LIMITS.maxCodeBytes),
  language: z.enum(['python', 'js']).optional(),
  timeout_secs: z.number().positive().max(MAX_EXEC_TIMEOUT_SECS).default(60),
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

export const ProcessStartBody = z.object({
  args: z.array(z.string()).min(1).max(4096).optional(),
  cmd: z.string().min(1).max(LIMITS.maxCodeBytes).optional(),
  envs: Envs.optional(),
  cwd: GuestPath.optional(),
}).strict().refine((b) => (b.args === undefined) !== (b.cmd === undefined), 'exactly one of args or cmd is required');
export const ProcessInfo = z.object({
  handle: z.string(),
  pid: z.number().int(),
  command: z.string(),
  started_at_ms: z.number(),
  running: z.boolean(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
});
export const ProcessWaitBody = z.object({ timeout_secs: z.number().positive().max(MAX_EXEC_TIMEOUT_SECS).default(30) }).strict();
export const ProcessKillBody = z.object({ signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP']).default('SIGKILL') }).strict();

export const FilePathQuery = z.object({ path: GuestPath }).strict();
export const FileListQuery = z.object({ path: GuestPath, depth: z.coerce.number().int().min(1).max(16).optional() }).strict();
export const FileRemoveQuery = z.object({ path: GuestPath, recursive: z.enum(['true', 'false']).optional() }).strict();
export const MkdirBody = z.object({ path: GuestPath, parents: z.boolean().default(true) }).strict();
export const EntryInfo = z.object({
  name: z.string(),
  path: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'other']),
  size: z.number(),
  mode: z.number().int(),
  permissions: z.string(),
  modified_ms: z.number(),
  symlink_target: z.string().nullable(),
});
export const WriteInfo = z.object({ path: z.string(), size: z.number() });
export const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

export const BranchBody = z.object({
  tag: Tag.optional(),
  mode: z.enum(['full', 'live']).optional(),
  wait: z.boolean().optional(),
}).strict();
