/**
 * The route table: one entry per endpoint. The daemon registers exactly these (validating with
 * the schemas), the OpenAPI document is generated from them, the SDKs type their calls from them.
 */
import { z } from 'zod';
import * as S from './schemas.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDef {
  method: Method;
  path: string;
  summary: string;
  auth: boolean;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** 'json' (default), 'octet' (raw bytes), 'ndjson' (streamed lines), 'text' (Prometheus). */
  bodyKind?: 'json' | 'octet';
  responses: Record<number, z.ZodType | 'octet' | 'ndjson' | 'text' | 'empty'>;
}

const TagParams = z.object({ tag: S.Tag }).strict();
const IdParams = z.object({ id: S.SandboxId }).strict();
const ProcParams = z.object({ id: S.SandboxId, handle: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }).strict();
const JobParams = z.object({ id: z.string().regex(/^job-[0-9a-f]{16}$/) }).strict();
const E = S.ErrorBody;

export const routes = {
  healthz: { method: 'GET', path: '/healthz', summary: 'Liveness (no auth)', auth: false, responses: { 200: S.Healthz } },
  version: { method: 'GET', path: '/version', summary: 'Daemon and API version', auth: true, responses: { 200: S.Version } },
  metrics: { method: 'GET', path: '/metrics', summary: 'Prometheus metrics', auth: true, responses: { 200: 'text' } },

  listSnapshots: { method: 'GET', path: '/v1/snapshots', summary: 'List snapshots', auth: true, responses: { 200: z.array(S.SnapshotInfo) } },
  createSnapshot: { method: 'POST', path: '/v1/snapshots', summary: 'Create a snapshot from a recipe (async job unless wait=true)', auth: true, body: S.CreateSnapshotBody, responses: { 201: S.SnapshotInfo, 202: S.Job, 400: E, 404: E, 409: E } },
  getSnapshot: { method: 'GET', path: '/v1/snapshots/:tag', summary: 'One snapshot', auth: true, params: TagParams, responses: { 200: S.SnapshotInfo, 404: E } },
  snapshotInfo: { method: 'GET', path: '/v1/snapshots/:tag/info', summary: 'Snapshot detail (sizes, chain, dependents)', auth: true, params: TagParams, responses: { 200: S.SnapshotInfoDetail, 404: E } },
  deleteSnapshot: { method: 'DELETE', path: '/v1/snapshots/:tag', summary: 'Delete a snapshot (409 while sandboxes use it unless force)', auth: true, params: TagParams, query: S.DeleteSnapshotQuery, responses: { 204: 'empty', 404: E, 409: E } },
  getJob: { method: 'GET', path: '/v1/jobs/:id', summary: 'A long-running job (snapshot creation) with progress', auth: true, params: JobParams, responses: { 200: S.Job, 404: E } },

  listSandboxes: { method: 'GET', path: '/v1/sandboxes', summary: 'List live sandboxes', auth: true, responses: { 200: z.array(S.SandboxInfo) } },
  spawn: { method: 'POST', path: '/v1/sandboxes', summary: 'Spawn n children from a snapshot; returns only ready ones', auth: true, body: S.SpawnBody, responses: { 201: z.array(S.SandboxInfo), 400: E, 404: E, 409: E, 429: E, 503: E } },
  getSandbox: { method: 'GET', path: '/v1/sandboxes/:id', summary: 'One sandbox', auth: true, params: IdParams, responses: { 200: S.SandboxInfo, 404: E } },
  killSandbox: { method: 'DELETE', path: '/v1/sandboxes/:id', summary: 'Kill a sandbox', auth: true, params: IdParams, responses: { 204: 'empty', 404: E } },
  setTimeout: { method: 'POST', path: '/v1/sandboxes/:id/timeout', summary: 'Set the auto-kill timeout from now (E2B setTimeout)', auth: true, params: IdParams, body: S.SetTimeoutBody, responses: { 200: S.SandboxInfo, 404: E } },
  ping: { method: 'POST', path: '/v1/sandboxes/:id/ping', summary: 'Agent health', auth: true, params: IdParams, responses: { 200: S.PingResponse, 404: E, 502: E, 504: E } },
  exec: { method: 'POST', path: '/v1/sandboxes/:id/exec', summary: 'Run a command (argv or shell); stream=true gives NDJSON', auth: true, params: IdParams, body: S.ExecBody, responses: { 200: S.ExecResponse, 400: E, 404: E, 504: E } },
  eval: { method: 'POST', path: '/v1/sandboxes/:id/eval', summary: 'Evaluate code in the persistent interpreter', auth: true, params: IdParams, body: S.EvalBody, responses: { 200: S.EvalResponse, 400: E, 404: E, 504: E } },
  branch: { method: 'POST', path: '/v1/sandboxes/:id/branch', summary: 'Capture a running sandbox as a snapshot (not implemented yet)', auth: true, params: IdParams, body: S.BranchBody, responses: { 501: E, 404: E } },

  startProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes', summary: 'Start a background process', auth: true, params: IdParams, body: S.ProcessStartBody, responses: { 201: S.ProcessInfo, 404: E } },
  listProcesses: { method: 'GET', path: '/v1/sandboxes/:id/processes', summary: 'Background processes', auth: true, params: IdParams, responses: { 200: z.array(S.ProcessInfo), 404: E } },
  waitProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes/:handle/wait', summary: 'Wait for a background process', auth: true, params: ProcParams, body: S.ProcessWaitBody, responses: { 200: S.ExecResponse, 404: E, 504: E } },
  killProcess: { method: 'POST', path: '/v1/sandboxes/:id/processes/:handle/kill', summary: 'Signal a background process', auth: true, params: ProcParams, body: S.ProcessKillBody, responses: { 200: z.object({ killed: z.boolean() }), 404: E } },

  readFile: { method: 'GET', path: '/v1/sandboxes/:id/files', summary: 'Download a file (streamed)', auth: true, params: IdParams, query: S.FilePathQuery, responses: { 200: 'octet', 404: E, 413: E } },
  writeFile: { method: 'PUT', path: '/v1/sandboxes/:id/files', summary: 'Upload a file (raw body, streamed; parents created)', auth: true, params: IdParams, query: S.FilePathQuery, bodyKind: 'octet', responses: { 200: S.WriteInfo, 404: E, 413: E } },
  listFiles: { method: 'GET', path: '/v1/sandboxes/:id/files/list', summary: 'List a directory', auth: true, params: IdParams, query: S.FileListQuery, responses: { 200: z.array(S.EntryInfo), 404: E } },
  statFile: { method: 'GET', path: '/v1/sandboxes/:id/files/stat', summary: 'Stat a path', auth: true, params: IdParams, query: S.FilePathQuery, responses: { 200: S.EntryInfo, 404: E } },
  mkdir: { method: 'POST', path: '/v1/sandboxes/:id/files/mkdir', summary: 'Make a directory', auth: true, params: IdParams, body: S.MkdirBody, responses: { 200: z.object({ created: z.boolean() }), 404: E } },
  removeFile: { method: 'DELETE', path: '/v1/sandboxes/:id/files', summary: 'Remove a path', auth: true, params: IdParams, query: S.FileRemoveQuery, responses: { 200: z.object({ removed: z.boolean() }), 404: E } },
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
