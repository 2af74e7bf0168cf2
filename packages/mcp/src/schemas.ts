/**
 * Tool argument schemas, built from the REST API's zod declarations: each tool takes the fields of
 * the request it makes (same names, limits and defaults as the API), plus `sandbox_id` where the
 * route has one. Only wait_for_text, read_file and write_file add fields of their own.
 */
import { z } from 'zod';
import {
  BranchBody, CreateSnapshotBody, ExposePortBody, CreateWorkspaceFields, DeleteSnapshotQuery, EvalBody, RunCodeBody, ExecBody, FileListQuery, FilePathQuery, FileWriteQuery, ForkBody,
  GuestPath, JobId, ListSandboxesQuery, MAX_CALL_TIMEOUT_SECS, PullBody, PushBody, SandboxId, SpawnBody, Tag, WorkspaceParams,
} from '@forkd/api';

/** The named fields of an API object's shape (zod's .pick() refuses objects with refinements, like ExecBody). */
export function pickShape<T extends Record<string, z.ZodType>, K extends keyof T & string>(shape: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = shape[k];
  return out;
}

const sandbox = { sandbox_id: SandboxId };
const snapshot = { tag: Tag };
const oneOfArgsOrCmd = (b: { args?: unknown; cmd?: unknown }) => (b.args === undefined) !== (b.cmd === undefined);
const oneOfTagOrSandbox = (b: { snapshot_tag?: unknown; sandbox_id?: unknown }) => (b.snapshot_tag === undefined) !== (b.sandbox_id === undefined);
/**
 * DELETE /v1/snapshots/:tag's query flags as booleans (the query schema takes the strings a URL
 * carries); the keys are the API's, which mcp.test.ts checks.
 */
const deleteFlags = {
  cascade: z.boolean().optional().describe('also delete every snapshot layered on this one'),
  force: z.boolean().optional().describe('delete even while sandboxes run from it (they keep running)'),
} satisfies Record<keyof typeof DeleteSnapshotQuery.shape, z.ZodType>;
const encoding = z.enum(['utf8', 'base64']).default('utf8').describe('utf8 text, or base64 for binary content');

export const schemas = {
  list_snapshots: z.object({}).strict(),
  spawn_sandboxes: z.object(pickShape(SpawnBody.shape, ['snapshot_tag', 'n', 'timeout_ms', 'metadata', 'envs', 'memory_limit_mib', 'cpu_weight', 'cpu_quota', 'pids_max', 'disk_limit_mib', 'io_read_bps', 'io_write_bps', 'network', 'allow_internet_access', 'allow_out', 'deny_out', 'allow_guest_fork', 'vary', 'seeds'])).strict(),
  list_sandboxes: ListSandboxesQuery,
  get_sandbox: z.object(sandbox).strict(),
  kill_sandbox: z.object(sandbox).strict(),
  ping_sandbox: z.object(sandbox).strict(),
  expose_port: z.object({ ...sandbox, ...ExposePortBody.shape }).strict(),
  exec_command: z.object({ ...sandbox, ...pickShape(ExecBody.shape, ['args', 'cmd', 'timeout_secs', 'envs', 'cwd', 'stdin']) }).strict()
    .refine(oneOfArgsOrCmd, 'exactly one of args or cmd is required'),
  eval_code: z.object({ ...sandbox, ...EvalBody.shape }).strict(),
  run_code: z.object({ ...sandbox, ...RunCodeBody.shape }).strict(),
  read_file: z.object({
    ...sandbox,
    ...FilePathQuery.shape,
    encoding,
    max_bytes: z.number().int().min(1).max(16 * 1024 * 1024).default(1024 * 1024).describe('read at most this many bytes (the answer says when it was truncated)'),
  }).strict(),
  write_file: z.object({ ...sandbox, ...FileWriteQuery.shape, content: z.string().max(64 * 1024 * 1024), encoding }).strict(),
  list_files: z.object({ ...sandbox, ...FileListQuery.shape }).strict(),
  wait_for_text: z.object({
    ...sandbox,
    path: GuestPath,
    marker: z.string().min(1).max(4096).describe('text to wait for'),
    timeout_secs: z.number().positive().max(MAX_CALL_TIMEOUT_SECS).default(60),
    poll_interval_ms: z.number().int().min(50).max(10_000).default(200),
  }).strict(),
  create_snapshot: z.object(pickShape(CreateSnapshotBody.shape, ['tag', 'recipe', 'mem_mib', 'vcpus'])).strict(),
  get_job: z.object({ job_id: JobId }).strict(),
  /*
   * Registry credentials are not tool arguments (they would sit in the agent's transcript): the
   * daemon uses its own Docker config.json for the registry.
   */
  push_snapshot: z.object({ ...snapshot, ...pickShape(PushBody.shape, ['ref', 'plain_http']) }).strict(),
  pull_snapshot: z.object(pickShape(PullBody.shape, ['ref', 'tag', 'plain_http'])).strict(),
  branch_sandbox: z.object({ ...sandbox, ...BranchBody.shape }).strict(),
  fork_sandbox: z.object({ ...sandbox, ...ForkBody.shape }).strict(),
  snapshot_info: z.object(snapshot).strict(),
  snapshot_tree: z.object({}).strict(),
  delete_snapshot: z.object({ ...snapshot, ...deleteFlags }).strict(),
  list_workspaces: z.object({}).strict(),
  create_workspace: z.object(pickShape(CreateWorkspaceFields.shape, ['name', 'snapshot_tag', 'sandbox_id', 'metadata', 'envs'])).strict()
    .refine(oneOfTagOrSandbox, 'exactly one of snapshot_tag or sandbox_id is required'),
  suspend_workspace: WorkspaceParams,
  resume_workspace: WorkspaceParams,
  delete_workspace: WorkspaceParams,
} as const;

export type ToolName = keyof typeof schemas;
export type ArgsOf<N extends ToolName> = z.output<(typeof schemas)[N]>;

/** The JSON Schema a client sees (what the tool accepts, so input-side: defaults are optional). */
export function jsonSchemaOf(s: z.ZodType): { type: 'object'; [k: string]: unknown } {
  const j = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete j.$schema;
  return { ...j, type: 'object' };
}
