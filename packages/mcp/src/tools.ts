/** The MCP tools: one per forkd operation an agent needs, each a thin call through the SDK Controller. */
import type { Controller } from '@forkd/sdk';
import { schemas, type ArgsOf, type ToolName } from './schemas.js';
import { waitForText } from './wait-for-text.js';
import { runCodeResult } from './result.js';

export interface ToolContext {
  ctl: Controller;
  /** Aborted when the client cancels the call. */
  signal?: AbortSignal;
}

export interface ToolDef<N extends ToolName = ToolName> {
  name: N;
  description: string;
  readOnly?: boolean;
  destructive?: boolean;
  run(args: ArgsOf<N>, ctx: ToolContext): Promise<unknown>;
}

/** Sandboxes spawned through MCP without a timeout_ms die after this long, so a lost client leaks nothing forever. */
export const MCP_DEFAULT_SANDBOX_TIMEOUT_MS = 3_600_000;

/** A tool of any name (a union, so each run() keeps its own argument type). */
export type AnyTool = { [N in ToolName]: ToolDef<N> }[ToolName];

function def<N extends ToolName>(name: N, d: Omit<ToolDef<N>, 'name'>): ToolDef<N> {
  return { name, ...d };
}

async function readCapped(ctl: Controller, id: string, path: string, max: number): Promise<{ bytes: Buffer; size: number | null; truncated: boolean }> {
  const res = await ctl.readFileStream(id, path);
  const size = Number(res.headers['x-forkd-file-size'] ?? NaN);
  const parts: Buffer[] = [];
  let n = 0;
  let truncated = false;
  for await (const c of res.stream as AsyncIterable<Buffer>) {
    const take = Math.min(c.length, max - n);
    parts.push(c.subarray(0, take));
    n += take;
    if (n >= max) {
      truncated = c.length > take || !Number.isFinite(size) || size > max;
      res.stream.destroy();
      break;
    }
  }
  return { bytes: Buffer.concat(parts, n), size: Number.isFinite(size) ? size : null, truncated };
}

export const tools: AnyTool[] = [
  def('list_snapshots', { description: 'List snapshots (tags you can spawn sandboxes from).', readOnly: true, run: (_a, { ctl }) => ctl.listSnapshots() }),
  def('spawn_sandboxes', {
    description: `Spawn n sandboxes (microVMs) from a snapshot; returns them once their agents answer. Optional per-sandbox limits (memory_limit_mib, cpu_quota in cores, pids_max, disk_limit_mib, ...); a sandbox killed by its memory limit shows end_reason "oom" in get_sandbox. Without timeout_ms they are killed after ${MCP_DEFAULT_SANDBOX_TIMEOUT_MS / 60_000} minutes.`,
    run: (a, { ctl }) => ctl.spawnSandboxes({ ...a, timeout_ms: a.timeout_ms ?? MCP_DEFAULT_SANDBOX_TIMEOUT_MS }),
  }),
  def('list_sandboxes', { description: 'List live sandboxes (filter by snapshot tag or one metadata key=value).', readOnly: true, run: (a, { ctl }) => ctl.listSandboxes(a) }),
  def('get_sandbox', { description: 'One sandbox.', readOnly: true, run: (a, { ctl }) => ctl.getSandbox(a.sandbox_id) }),
  def('kill_sandbox', {
    description: 'Kill a sandbox.',
    destructive: true,
    run: async (a, { ctl }) => {
      await ctl.killSandbox(a.sandbox_id);
      return { id: a.sandbox_id, killed: true };
    },
  }),
  def('expose_port', { description: "Expose a sandbox's guest TCP port on the daemon's host (E2B getHost): returns host and port a client there connects to. Works without network access.", run: (a, { ctl }) => ctl.exposePort(a.sandbox_id, a.port) }),
  def('ping_sandbox', { description: "The sandbox agent's health.", readOnly: true, run: (a, { ctl }) => ctl.pingSandbox(a.sandbox_id) }),
  def('exec_command', {
    description: 'Run a command in a sandbox: `cmd` (a shell line: pipes, &&) or `args` (argv, no shell), exactly one. Returns stdout, stderr, exit_code; a non-zero exit is a result, not an error.',
    run: (a, { ctl, signal }) => {
      const { sandbox_id, ...body } = a;
      return ctl.exec(sandbox_id, body, signal);
    },
  }),
  def('eval_code', {
    description: "Evaluate code in the sandbox's persistent interpreter (python or js; globals persist between calls). Returns the last expression's repr and JSON, stdout, stderr, and error/traceback.",
    run: (a, { ctl, signal }) => {
      const { sandbox_id, ...body } = a;
      return ctl.eval(sandbox_id, body, signal);
    },
  }),
  def('run_code', {
    description: "Run a Python cell in the sandbox's persistent interpreter with rich results, like a notebook (E2B runCode): display() outputs and the last expression as results (text, html, markdown, svg, png, jpeg, latex, json), matplotlib figures as PNG images (returned as image content), logs.stdout/stderr, and error {name, value, traceback}. IPython semantics in the code-interpreter snapshot.",
    run: async (a, { ctl, signal }) => {
      const { sandbox_id, ...body } = a;
      return runCodeResult(await ctl.runCode(sandbox_id, body, signal));
    },
  }),
  def('read_file', {
    description: 'Read a file from a sandbox (utf8 text or base64), at most max_bytes.',
    readOnly: true,
    run: async (a, { ctl }) => {
      const r = await readCapped(ctl, a.sandbox_id, a.path, a.max_bytes);
      return { path: a.path, size: r.size, truncated: r.truncated, encoding: a.encoding, content: r.bytes.toString(a.encoding) };
    },
  }),
  def('write_file', {
    description: 'Write a file in a sandbox (parents created, replaced atomically). content is utf8 text or base64.',
    run: (a, { ctl }) => ctl.writeFile(a.sandbox_id, a.path, Buffer.from(a.content, a.encoding), a.mode !== undefined ? { mode: Number.parseInt(a.mode, 8) } : {}),
  }),
  def('list_files', { description: 'List a directory in a sandbox (depth for subdirectories).', readOnly: true, run: (a, { ctl }) => ctl.listFiles(a.sandbox_id, a.path, a.depth) }),
  def('wait_for_text', {
    description: 'Wait until a file in the sandbox contains marker (e.g. a log line), polling; returns found, elapsed_ms and an excerpt. found=false when timeout_secs passes.',
    readOnly: true,
    run: (a, { ctl, signal }) => waitForText(ctl, a, signal),
  }),
  def('create_snapshot', {
    description: 'Start building a snapshot from a recipe (boot, warm up, capture). Returns a job; poll it with get_job.',
    run: (a, { ctl }) => ctl.createSnapshot({ ...a, wait: false }),
  }),
  def('get_job', { description: 'A long-running job (snapshot creation, branch with wait=false): status, progress, result or error.', readOnly: true, run: (a, { ctl }) => ctl.getJob(a.job_id) }),
  def('push_snapshot', {
    description: 'Push a snapshot (and the links of its chain the registry lacks) to an OCI registry reference host[:port]/repo[:tag] (admin). Returns a job; poll get_job for digest and bytes sent. Credentials: the daemon\'s Docker config.json.',
    run: (a, { ctl }) => {
      const { tag, ...body } = a;
      return ctl.pushSnapshot(tag, { ...body, wait: false });
    },
  }),
  def('pull_snapshot', {
    description: "Pull a snapshot from an OCI registry reference (admin), the head stored as tag (default: its own). Signatures are checked against the daemon's trust policy before anything lands (FORKD_E_SIGNATURE_MISSING / FORKD_E_SIGNATURE_INVALID). Returns a job; poll get_job: the result has verification (status, signers).",
    run: (a, { ctl }) => ctl.pullSnapshot({ ...a, wait: false }),
  }),
  def('branch_sandbox', {
    description: 'Capture a running sandbox (memory, devices, disk) as a new snapshot layer on its snapshot; the sandbox keeps running. Returns the snapshot (with pause_ms), or with wait=false the snapshot in status "writing" and its job_id (poll get_job). Spawn from its tag to continue from that instant.',
    run: (a, { ctl }) => {
      const { sandbox_id, ...body } = a;
      return ctl.branchSandbox(sandbox_id, body);
    },
  }),
  def('fork_sandbox', {
    description: `Capture a running sandbox once and spawn count children from that capture; the source keeps running. vary gives each child its own values before it answers (environment variables of new commands and variables of its interpreter): {"temperature": [0.1, 0.5, 0.9]} (one value per child) or one object per child; each child also gets its own RNG seed. Returns snapshot_tag, pause_ms, fork_ms, the children and children[i] {id, index, values, seed}. Without timeout_ms the children are killed after ${MCP_DEFAULT_SANDBOX_TIMEOUT_MS / 60_000} minutes.`,
    run: (a, { ctl }) => {
      const { sandbox_id, ...body } = a;
      return ctl.forkSandbox(sandbox_id, { ...body, timeout_ms: body.timeout_ms ?? MCP_DEFAULT_SANDBOX_TIMEOUT_MS });
    },
  }),
  def('snapshot_info', {
    description: 'One snapshot in detail: chain_depth, ancestors (root first), dependents, layer and logical sizes, versions.',
    readOnly: true,
    run: (a, { ctl }) => ctl.snapshotInfo(a.tag),
  }),
  def('snapshot_tree', { description: 'The forest of snapshots: each with its layers (branches, diffs) as children and the sandboxes running from it.', readOnly: true, run: (_a, { ctl }) => ctl.snapshotTree() }),
  def('delete_snapshot', {
    description: 'Delete a snapshot. Refused (FORKD_E_HAS_DEPENDENTS, naming them) when layers are built on it unless cascade, and (FORKD_E_IN_USE) while sandboxes run from it unless force.',
    destructive: true,
    run: async (a, { ctl }) => {
      await ctl.deleteSnapshot(a.tag, { ...(a.cascade ? { cascade: true } : {}), ...(a.force ? { force: true } : {}) });
      return { tag: a.tag, deleted: true };
    },
  }),
  def('list_workspaces', { description: 'List workspaces (named long-lived sandboxes): running or suspended, with their sandbox id.', readOnly: true, run: (_a, { ctl }) => ctl.listWorkspaces() }),
  def('create_workspace', {
    description: 'Create a workspace: a new sandbox from snapshot_tag, or make the running sandbox_id one (exactly one). A workspace has no timeout and can be suspended and resumed.',
    // Either form's fields are accepted here; the daemon validates which one it is (CreateWorkspaceBody).
    run: (a, { ctl }) => ctl.createWorkspace(a as Parameters<typeof ctl.createWorkspace>[0]),
  }),
  def('suspend_workspace', {
    description: "Save a running workspace (memory, devices, disk) as a snapshot layer and stop its VM. resume_workspace brings it back with the same sandbox id.",
    run: (a, { ctl }) => ctl.suspendWorkspace(a.name),
  }),
  def('resume_workspace', {
    description: 'Restore a suspended workspace: the same sandbox id, interpreter state, files, envs and metadata.',
    run: (a, { ctl }) => ctl.resumeWorkspace(a.name),
  }),
  def('delete_workspace', {
    description: 'Delete a workspace: kills its sandbox and removes its saved state.',
    destructive: true,
    run: async (a, { ctl }) => {
      await ctl.deleteWorkspace(a.name);
      return { name: a.name, deleted: true };
    },
  }),
];

export { schemas };
