/**
 * The route table: one entry per endpoint. The daemon registers exactly these (validating with
 * the schemas), the OpenAPI document is generated from them, the SDKs type their calls from them.
 */
import { z } from 'zod';
import * as C from './common.js';
import * as Sn from './snapshots.js';
import * as Sb from './sandboxes.js';
import * as F from './files.js';
import * as W from './workspaces.js';
import * as Eg from './egress.js';
import * as Ui from './ui.js';
import * as Ev from './events.js';
import * as Mt from './metrics.js';
import * as Tp from './templates.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type ResponseKind = z.ZodType | 'octet' | 'ndjson' | 'text' | 'empty';

export interface RouteDef {
  method: Method;
  path: string;
  summary: string;
  auth: boolean;
  /** Only admin tokens may call it (403 FORKD_E_FORBIDDEN otherwise). read-only tokens call GET routes only. */
  admin?: boolean;
  /** A POST a read-only token may call too: it changes no resource (a web view login code). */
  readOnlyAllowed?: boolean;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** 'json' (default) or 'octet' (raw bytes, streamed). */
  bodyKind?: 'json' | 'octet';
  responses: Record<number, ResponseKind>;
  /** A second success shape when the request asks for streaming (exec with stream=true; events unless follow=false). */
  stream?: 'ndjson' | 'sse';
}

const TagParams = z.object({ tag: C.Tag }).strict();
const IdParams = z.object({ id: C.SandboxId }).strict();
const ProcParams = z.object({ id: C.SandboxId, handle: Sb.ProcessHandle }).strict();
const JobParams = z.object({ id: C.JobId }).strict();
const E = C.ErrorBody;
/** Errors every sandbox call can give: unknown id, agent gone or slow, too many calls. */
const sbErr = { 400: E, 404: E, 409: E, 429: E, 502: E, 504: E } as const;

export const routes = {
  healthz: { method: 'GET', path: '/healthz', summary: 'Liveness (no auth)', auth: false, responses: { 200: C.Healthz } },
  version: { method: 'GET', path: '/version', summary: 'Daemon and API version', auth: true, responses: { 200: C.Version } },
  metrics: { method: 'GET', path: '/metrics', summary: 'Prometheus metrics', auth: true, responses: { 200: 'text' } },
  openapi: { method: 'GET', path: '/v1/openapi.json', summary: 'This API as OpenAPI 3.1', auth: true, responses: { 200: z.record(z.string(), z.unknown()) } },

  createUiCode: { method: 'POST', path: '/v1/ui/codes', summary: 'A one-time login code for the web view (forkd ui): open login_path on this address within seconds', auth: true, readOnlyAllowed: true, responses: { 201: Ui.UiCode } },
  openUiSession: { method: 'POST', path: '/v1/ui/session', summary: 'Trade a web view login code for an HttpOnly session cookie (with the caller\'s identity and scope)', auth: false, readOnlyAllowed: true, body: Ui.UiSessionBody, responses: { 204: 'empty', 400: E, 401: E, 403: E, 429: E } },
  closeUiSession: { method: 'DELETE', path: '/v1/ui/session', summary: 'End the web view session of this cookie', auth: true, responses: { 204: 'empty' } },

  listSnapshots: { method: 'GET', path: '/v1/snapshots', summary: 'List snapshots', auth: true, responses: { 200: z.array(Sn.SnapshotInfo) } },
  createSnapshot: { method: 'POST', path: '/v1/snapshots', summary: 'Create a snapshot from a recipe (a job to poll unless wait=true)', auth: true, body: Sn.CreateSnapshotBody, responses: { 201: Sn.SnapshotInfo, 202: C.Job, 400: E, 404: E, 409: E, 503: E } },
  snapshotTree: { method: 'GET', path: '/v1/snapshots/tree', summary: 'The forest of snapshots, layers and the sandboxes running from each', auth: true, responses: { 200: Sn.SnapshotTree } },
  getSnapshot: { method: 'GET', path: '/v1/snapshots/:tag', summary: 'One snapshot', auth: true, params: TagParams, responses: { 200: Sn.SnapshotInfo, 400: E, 404: E } },
  snapshotInfo: { method: 'GET', path: '/v1/snapshots/:tag/info', summary: 'Snapshot detail (sizes, chain, dependents)', auth: true, params: TagParams, responses: { 200: Sn.SnapshotInfoDetail, 400: E, 404: E } },
  deleteSnapshot: { method: 'DELETE', path: '/v1/snapshots/:tag', summary: 'Delete a snapshot (409 with dependents unless cascade, with live sandboxes unless force)', auth: true, params: TagParams, query: Sn.DeleteSnapshotQuery, responses: { 204: 'empty', 400: E, 404: E, 409: E } },
  shareSnapshot: { method: 'POST', path: '/v1/snapshots/:tag/share', summary: 'Share a snapshot with every identity (admin): all may spawn from it, only its owner and admins change it', auth: true, admin: true, params: TagParams, responses: { 200: Sn.SnapshotInfo, 400: E, 403: E, 404: E } },
  unshareSnapshot: { method: 'POST', path: '/v1/snapshots/:tag/unshare', summary: 'Stop sharing a snapshot (admin); running sandboxes spawned from it keep running', auth: true, admin: true, params: TagParams, responses: { 200: Sn.SnapshotInfo, 400: E, 403: E, 404: E } },
  compactSnapshot: { method: 'POST', path: '/v1/snapshots/:tag/compact', summary: 'Flatten a layered snapshot into a new self-contained one', auth: true, params: TagParams, body: Sn.CompactBody, responses: { 200: Sn.SnapshotInfo, 202: C.Job, 400: E, 404: E, 409: E } },
  diffSnapshot: { method: 'POST', path: '/v1/snapshots/:tag/diff', summary: 'Run a command in a child of the snapshot and keep the result as a layer that stores only what changed', auth: true, params: TagParams, body: Sn.DiffBody, responses: { 201: Sn.SnapshotInfo, 202: C.Job, 400: E, 404: E, 409: E } },
  pushSnapshot: { method: 'POST', path: '/v1/snapshots/:tag/push', summary: 'Push a snapshot and the links of its chain the registry lacks to an OCI registry (admin; a job unless wait=true)', auth: true, admin: true, params: TagParams, body: Sn.PushBody, responses: { 200: Sn.PushResult, 202: C.Job, 400: E, 403: E, 404: E, 502: E } },
  pullSnapshot: { method: 'POST', path: '/v1/snapshot-pulls', summary: 'Pull a snapshot from an OCI registry; only the links this store lacks travel (admin; a job unless wait=true)', auth: true, admin: true, body: Sn.PullBody, responses: { 201: Sn.PullResult, 202: C.Job, 400: E, 403: E, 404: E, 409: E, 413: E, 502: E } },
  events: { method: 'GET', path: '/v1/events', summary: 'Lifecycle events (created, killed, timed_out, oom, branched, forked, paused, resumed, ...) of the caller\'s resources (an admin: all) as server-sent events, resuming after Last-Event-ID or since; follow=false answers one JSON page', auth: true, query: Ev.EventsQuery, stream: 'sse', responses: { 200: Ev.EventsPage, 400: E } },
  buildTemplate: { method: 'POST', path: '/v1/templates', summary: 'Build a template (a recipe with steps) into its image (a cached layer per step) and warm snapshot (a job to poll unless wait=true)', auth: true, body: Tp.TemplateBuildBody, responses: { 201: Tp.TemplateBuildResult, 202: C.Job, 400: E, 403: E, 404: E, 409: E, 503: E } },
  templateFilesMissing: { method: 'POST', path: '/v1/template-files/missing', summary: 'Which of these template file digests the daemon lacks (upload only those)', auth: true, body: Tp.TemplateFilesQuery, responses: { 200: Tp.TemplateFilesMissing, 400: E } },
  putTemplateFile: { method: 'PUT', path: '/v1/template-files/:sha256', summary: 'Upload a file a template copies, stored by its sha256 (raw body; refused if the bytes do not hash to it)', auth: true, params: Tp.TemplateFileParams, bodyKind: 'octet', responses: { 201: Tp.TemplateFileInfo, 400: E, 413: E } },
  getJob: { method: 'GET', path: '/v1/jobs/:id', summary: 'A long-running job with progress', auth: true, params: JobParams, responses: { 200: C.Job, 400: E, 404: E } },

  listSandboxes: { method: 'GET', path: '/v1/sandboxes', summary: 'List live sandboxes', auth: true, query: Sb.ListSandboxesQuery, responses: { 200: z.array(Sb.SandboxInfo), 400: E } },
  spawn: { method: 'POST', path: '/v1/sandboxes', summary: 'Spawn n children from a snapshot; returns them once their agents answer', auth: true, body: Sb.SpawnBody, responses: { 201: z.array(Sb.SandboxInfo), 400: E, 404: E, 409: E, 429: E, 503: E } },
  getSandbox: { method: 'GET', path: '/v1/sandboxes/:id', summary: 'One sandbox', auth: true, params: IdParams, responses: { 200: Sb.SandboxInfo, 400: E, 404: E } },
  killSandbox: { method: 'DELETE', path: '/v1/sandboxes/:id', summary: 'Kill a sandbox', auth: true, params: IdParams, responses: { 204: 'empty', 400: E, 404: E } },
  setTimeout: { method: 'POST', path: '/v1/sandboxes/:id/timeout', summary: 'Kill the sandbox timeout_ms from now (E2B setTimeout)', auth: true, params: IdParams, body: Sb.SetTimeoutBody, responses: { 200: Sb.SandboxInfo, 400: E, 404: E } },
  exposePort: { method: 'POST', path: '/v1/sandboxes/:id/ports', summary: 'Expose a guest TCP port on the host (E2B getHost): connections to host:port reach the guest\'s port', auth: true, params: IdParams, body: Sb.ExposePortBody, responses: { 200: Sb.ExposedPort, ...sbErr, 501: E } },
  getMetrics: { method: 'GET', path: '/v1/sandboxes/:id/metrics', summary: 'CPU, memory and disk of a sandbox from the guest and the host (E2B getMetrics), the samples between start and end', auth: true, params: IdParams, query: Mt.MetricsQuery, responses: { 200: Mt.MetricsResponse, ...sbErr } },
  ping: { method: 'POST', path: '/v1/sandboxes/:id/ping', summary: 'Agent health', auth: true, params: IdParams, responses: { 200: Sb.PingResponse, ...sbErr } },
  exec: { method: 'POST', path: '/v1/sandboxes/:id/exec', summary: 'Run a command (argv or shell line); stream=true answers NDJSON as output is produced', auth: true, params: IdParams, body: Sb.ExecBody, stream: 'ndjson', responses: { 200: Sb.ExecResponse, ...sbErr } },
  eval: { method: 'POST', path: '/v1/sandboxes/:id/eval', summary: 'Evaluate code in the persistent interpreter', auth: true, params: IdParams, body: Sb.EvalBody, responses: { 200: Sb.EvalResponse, ...sbErr } },
  runCode: { method: 'POST', path: '/v1/sandboxes/:id/run_code', summary: 'Run a Python cell with rich results (E2B runCode): display data, plots as PNG, logs, error', auth: true, params: IdParams, body: Sb.RunCodeBody, responses: { 200: Sb.RunCodeResponse, ...sbErr } },
  branch: { method: 'POST', path: '/v1/sandboxes/:id/branch', summary: 'Capture a running sandbox (memory, devices, disk) as a snapshot layer; the sandbox keeps running', auth: true, params: IdParams, body: Sb.BranchBody, responses: { 201: Sn.SnapshotInfo, 202: Sn.SnapshotWriting, ...sbErr, 503: E } },
  updateNetwork: { method: 'PUT', path: '/v1/sandboxes/:id/network', summary: 'Replace the egress policy of a live sandbox (E2B updateNetwork); applied atomically', auth: true, params: IdParams, body: Eg.NetworkPolicyBody, responses: { 200: Sb.SandboxInfo, 400: E, 404: E, 409: E } },
  fork: { method: 'POST', path: '/v1/sandboxes/:id/fork', summary: 'Branch the sandbox and spawn count children from the branch (E2B fork)', auth: true, params: IdParams, body: Sb.ForkBody, responses: { 201: Sb.ForkResponse, ...sbErr, 503: E } },

  startProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes', summary: 'Start a background process', auth: true, params: IdParams, body: Sb.ProcessStartBody, responses: { 201: Sb.ProcessInfo, ...sbErr } },
  listProcesses: { method: 'GET', path: '/v1/sandboxes/:id/processes', summary: 'Background processes', auth: true, params: IdParams, responses: { 200: z.array(Sb.ProcessInfo), ...sbErr } },
  waitProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes/:handle/wait', summary: 'Wait for a background process (its output: the last 1 MiB per stream)', auth: true, params: ProcParams, body: Sb.ProcessWaitBody, responses: { 200: Sb.ExecResponse, ...sbErr } },
  killProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes/:handle/kill', summary: 'Signal a background process (its whole process group)', auth: true, params: ProcParams, body: Sb.ProcessKillBody, responses: { 200: Sb.Killed, ...sbErr } },

  readFile: { method: 'GET', path: '/v1/sandboxes/:id/files', summary: 'Download a file (streamed)', auth: true, params: IdParams, query: F.FilePathQuery, responses: { 200: 'octet', ...sbErr, 413: E } },
  writeFile: { method: 'PUT', path: '/v1/sandboxes/:id/files', summary: 'Upload a file (raw body, streamed; parents created; replaced atomically)', auth: true, params: IdParams, query: F.FileWriteQuery, bodyKind: 'octet', responses: { 200: F.WriteInfo, ...sbErr, 413: E } },
  removeFile: { method: 'DELETE', path: '/v1/sandboxes/:id/files', summary: 'Remove a path', auth: true, params: IdParams, query: F.FileRemoveQuery, responses: { 200: F.Removed, ...sbErr } },
  listFiles: { method: 'GET', path: '/v1/sandboxes/:id/files/list', summary: 'List a directory', auth: true, params: IdParams, query: F.FileListQuery, responses: { 200: F.ListFilesResponse, ...sbErr } },
  statFile: { method: 'GET', path: '/v1/sandboxes/:id/files/stat', summary: 'Stat a path', auth: true, params: IdParams, query: F.FilePathQuery, responses: { 200: F.EntryInfo, ...sbErr } },
  mkdir: { method: 'POST', path: '/v1/sandboxes/:id/files/mkdir', summary: 'Make a directory', auth: true, params: IdParams, body: F.MkdirBody, responses: { 200: F.Created, ...sbErr } },
  renameFile: { method: 'POST', path: '/v1/sandboxes/:id/files/rename', summary: 'Rename a path', auth: true, params: IdParams, body: F.RenameBody, responses: { 200: F.EntryInfo, ...sbErr } },

  listWorkspaces: { method: 'GET', path: '/v1/workspaces', summary: 'List workspaces', auth: true, responses: { 200: z.array(W.WorkspaceInfo) } },
  createWorkspace: { method: 'POST', path: '/v1/workspaces', summary: 'Create a named long-lived sandbox from a snapshot', auth: true, body: W.CreateWorkspaceBody, responses: { 201: W.WorkspaceInfo, 400: E, 404: E, 409: E } },
  getWorkspace: { method: 'GET', path: '/v1/workspaces/:name', summary: 'One workspace', auth: true, params: W.WorkspaceParams, responses: { 200: W.WorkspaceInfo, 400: E, 404: E } },
  deleteWorkspace: { method: 'DELETE', path: '/v1/workspaces/:name', summary: 'Delete a workspace (kills its sandbox, removes its saved state)', auth: true, params: W.WorkspaceParams, responses: { 204: 'empty', 400: E, 404: E } },
  suspendWorkspace: { method: 'POST', path: '/v1/workspaces/:name/suspend', summary: 'Save the workspace (memory, devices, disk) and stop its VM', auth: true, params: W.WorkspaceParams, body: W.SuspendBody, responses: { 200: W.WorkspaceInfo, 400: E, 404: E, 409: E, 503: E } },
  resumeWorkspace: { method: 'POST', path: '/v1/workspaces/:name/resume', summary: 'Restore a suspended workspace with its settings', auth: true, params: W.WorkspaceParams, body: W.ResumeBody, responses: { 200: W.WorkspaceInfo, 400: E, 404: E, 409: E } },
} as const satisfies Record<string, RouteDef>;

export type RouteName = keyof typeof routes;
type R = typeof routes;
type Infer<T> = T extends z.ZodType ? z.output<T> : never;
type InferIn<T> = T extends z.ZodType ? z.input<T> : never;
export type BodyOf<K extends RouteName> = R[K] extends { body: infer B } ? InferIn<B> : never;
export type QueryOf<K extends RouteName> = R[K] extends { query: infer Q } ? InferIn<Q> : never;
export type ParamsOf<K extends RouteName> = R[K] extends { params: infer P } ? Infer<P> : never;
type SuccessKeys<T> = { [S in keyof T]: S extends 200 | 201 | 202 ? S : never }[keyof T];
export type ResponseOf<K extends RouteName> = Infer<R[K]['responses'][SuccessKeys<R[K]['responses']>]>;

/** Fills a route's path parameters (URL-encoded). */
export function routePath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([a-z][a-z0-9_]*)/g, (_, k: string) => {
    const v = params[k];
    if (v === undefined) throw new Error(`missing path parameter ${k}`);
    return encodeURIComponent(v);
  });
}
