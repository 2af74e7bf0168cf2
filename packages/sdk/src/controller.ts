/**
 * Controller: the whole forkd REST API, one method per route, typed from the API's zod schemas
 * (wire names, snake_case). The E2B-shaped Sandbox (sandbox.ts) is built on it.
 */
import { Readable } from 'node:stream';
import { CALL_TIMEOUT_SECS, LIMITS } from '@forkd/protocol';
import { routes, routePath, type BodyOf, type QueryOf, type ResponseOf, type RouteName } from '@forkd/api';
import { errorFor } from './errors.js';
import { expectOk, readBody, readJson, resolveEndpoint, send, type ConnectionOptions, type Endpoint } from './transport.js';
import { eventsPage, followEvents, type EventsOpts, type ForkdEvent } from './events.js';

export type { ConnectionOptions } from './transport.js';
export type SnapshotInfo = ResponseOf<'getSnapshot'>;
export type SnapshotInfoDetail = ResponseOf<'snapshotInfo'>;
export type SandboxInfo = ResponseOf<'getSandbox'>;
export type Job = ResponseOf<'getJob'>;
export type PushResult = Extract<ResponseOf<'pushSnapshot'>, { bytes_sent: number }>;
export type PullResult = Extract<ResponseOf<'pullSnapshot'>, { bytes_received: number }>;
/** A branch with wait=false: the snapshot in status "writing" and the job writing it. */
export type SnapshotWriting = Extract<ResponseOf<'branch'>, { job_id: string }>;
export type ExecResult = ResponseOf<'exec'>;
export type EvalResult = ResponseOf<'eval'>;
export type RunCodeResponse = ResponseOf<'runCode'>;
export type ProcessInfo = ResponseOf<'startProcess'>;
export type EntryInfo = ResponseOf<'statFile'>;
export type WorkspaceInfo = ResponseOf<'getWorkspace'>;
export type SnapshotTree = ResponseOf<'snapshotTree'>;
export type SandboxMetricsResponse = ResponseOf<'getMetrics'>;

export interface StreamCallbacks {
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  signal?: AbortSignal;
}

/** Margin on top of a call's own timeout before the HTTP request gives up. */
const MARGIN_MS = 30_000;

export class Controller {
  readonly endpoint: Endpoint;

  constructor(opts: ConnectionOptions = {}) {
    this.endpoint = resolveEndpoint(opts);
  }

  /** Any route by name: the typed core every method below uses. */
  async call<K extends RouteName>(route: K, args: { params?: Record<string, string>; query?: QueryOf<K>; body?: BodyOf<K>; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ResponseOf<K>> {
    const def = routes[route];
    const res = await send(this.endpoint, {
      method: def.method,
      path: routePath(def.path, args.params),
      ...(args.query ? { query: args.query as Record<string, string> } : {}),
      ...(args.body !== undefined ? { json: args.body } : def.method === 'POST' ? { json: {} } : {}),
      ...(args.timeoutMs ? { timeoutMs: args.timeoutMs } : {}),
      ...(args.signal ? { signal: args.signal } : {}),
    });
    return readJson<ResponseOf<K>>(res);
  }

  health() { return this.call('healthz'); }

  /** A sandbox's metric samples between start and end (unix ms), after a fresh one. */
  getSandboxMetrics(id: string, window: { start?: number; end?: number } = {}) {
    return this.call('getMetrics', { params: { id }, query: { ...(window.start !== undefined ? { start: String(window.start) } : {}), ...(window.end !== undefined ? { end: String(window.end) } : {}) } as QueryOf<'getMetrics'> });
  }

  /** Lifecycle events of the caller's resources (an admin: all), followed live; see EventsOpts. */
  events(opts: EventsOpts = {}): AsyncGenerator<ForkdEvent> { return followEvents(this.endpoint, opts); }
  /** One page of past events after opts.since (default: from the oldest kept). */
  eventsPage(opts: EventsOpts & { limit?: number } = {}) { return eventsPage(this.endpoint, opts); }
  version() { return this.call('version'); }
  async metrics(): Promise<string> {
    const res = await send(this.endpoint, { method: 'GET', path: '/metrics' });
    await expectOk(res);
    return (await readBody(res)).toString('utf8');
  }

  // Snapshots and jobs
  listSnapshots() { return this.call('listSnapshots'); }
  getSnapshot(tag: string) { return this.call('getSnapshot', { params: { tag } }); }
  snapshotInfo(tag: string) { return this.call('snapshotInfo', { params: { tag } }); }
  snapshotTree() { return this.call('snapshotTree'); }
  /** 202 Job unless body.wait (then the SnapshotInfo). See waitJob. */
  createSnapshot(body: BodyOf<'createSnapshot'>) { return this.call('createSnapshot', { body, timeoutMs: body.wait ? 3_600_000 : undefined }) as Promise<Job | SnapshotInfo>; }
  /** Admin: every identity may see and spawn from the snapshot (only its owner and admins change it). */
  shareSnapshot(tag: string) { return this.call('shareSnapshot', { params: { tag } }); }
  /** Admin: stop sharing it (sandboxes already spawned from it keep running). */
  unshareSnapshot(tag: string) { return this.call('unshareSnapshot', { params: { tag } }); }
  async deleteSnapshot(tag: string, opts: { cascade?: boolean; force?: boolean } = {}): Promise<void> {
    await this.call('deleteSnapshot', { params: { tag }, query: { ...(opts.cascade ? { cascade: 'true' } : {}), ...(opts.force ? { force: 'true' } : {}) } as QueryOf<'deleteSnapshot'> });
  }
  compactSnapshot(tag: string, body: BodyOf<'compactSnapshot'>) { return this.call('compactSnapshot', { params: { tag }, body, timeoutMs: 3_600_000 }) as Promise<SnapshotInfo | Job>; }
  diffSnapshot(tag: string, body: BodyOf<'diffSnapshot'>) { return this.call('diffSnapshot', { params: { tag }, body, timeoutMs: 3_600_000 }) as Promise<SnapshotInfo | Job>; }
  /** Admin: push a snapshot (and its chain's missing links) to an OCI registry; 202 Job unless body.wait. */
  pushSnapshot(tag: string, body: BodyOf<'pushSnapshot'>) { return this.call('pushSnapshot', { params: { tag }, body, timeoutMs: 3_600_000 }) as Promise<PushResult | Job>; }
  /** Admin: pull a snapshot from an OCI registry (only missing links travel); 202 Job unless body.wait. */
  pullSnapshot(body: BodyOf<'pullSnapshot'>) { return this.call('pullSnapshot', { body, timeoutMs: 3_600_000 }) as Promise<PullResult | Job>; }
  getJob(id: string) { return this.call('getJob', { params: { id } }); }
  /** Polls a job until it ends; resolves with its result, throws its error. */
  async waitJob(id: string, opts: { onProgress?: (job: Job) => void; pollMs?: number; timeoutMs?: number } = {}): Promise<unknown> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
    for (;;) {
      const job = await this.getJob(id);
      opts.onProgress?.(job);
      if (job.status === 'succeeded') return job.result;
      if (job.status === 'failed') throw errorFor(job.error?.code ?? 'FORKD_E_INTERNAL', job.error?.message ?? 'job failed', job.error?.details);
      if (Date.now() > deadline) throw errorFor('FORKD_E_TIMEOUT', `job ${id} did not finish in time`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  }

  // Sandboxes
  listSandboxes(query: QueryOf<'listSandboxes'> = {}) { return this.call('listSandboxes', { query }); }
  spawnSandboxes(body: BodyOf<'spawn'>) { return this.call('spawn', { body, timeoutMs: 600_000 }); }
  getSandbox(id: string) { return this.call('getSandbox', { params: { id } }); }
  async killSandbox(id: string): Promise<void> { await this.call('killSandbox', { params: { id } }); }
  setSandboxTimeout(id: string, timeoutMs: number) { return this.call('setTimeout', { params: { id }, body: { timeout_ms: timeoutMs } }); }
  /** Replaces a live sandbox's egress policy (E2B's updateNetwork). */
  updateSandboxNetwork(id: string, body: BodyOf<'updateNetwork'>) { return this.call('updateNetwork', { params: { id }, body }); }
  pingSandbox(id: string) { return this.call('ping', { params: { id } }); }
  /** A host address whose connections reach the guest's TCP port (E2B getHost). */
  exposePort(id: string, port: number) { return this.call('exposePort', { params: { id }, body: { port } }); }
  exec(id: string, body: BodyOf<'exec'>, signal?: AbortSignal) {
    return this.call('exec', { params: { id }, body: { ...body, stream: false }, timeoutMs: (body.timeout_secs ?? CALL_TIMEOUT_SECS.exec) * 1000 + MARGIN_MS, ...(signal ? { signal } : {}) });
  }
  /**
   * Streams stdout/stderr through the callbacks as the command produces them; resolves with the
   * result, whose stdout/stderr keep the first LIMITS.maxOutputBytes characters of each (the
   * callbacks see everything; *_truncated says when more came).
   */
  async execStream(id: string, body: BodyOf<'exec'>, cb: StreamCallbacks = {}): Promise<ExecResult> {
    const res = await send(this.endpoint, { method: 'POST', path: routePath(routes.exec.path, { id }), json: { ...body, stream: true }, timeoutMs: (body.timeout_secs ?? CALL_TIMEOUT_SECS.exec) * 1000 + MARGIN_MS, ...(cb.signal ? { signal: cb.signal } : {}) });
    await expectOk(res);
    const out = { stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false };
    const keep = (k: 'stdout' | 'stderr', data: string): void => {
      const room = LIMITS.maxOutputBytes - out[k].length;
      if (data.length > room) out[`${k}_truncated`] = true;
      if (room > 0) out[k] += data.length > room ? data.slice(0, room) : data;
    };
    let exit: { exit_code: number | null; signal: string | null; error: string | null; timed_out: boolean; duration_ms: number } | null = null;
    let buf = '';
    const onLine = (line: string): void => {
      if (!line) return;
      const v = JSON.parse(line) as { type: string; data?: string; error?: { code: string; message: string } } & NonNullable<typeof exit>;
      if (v.type === 'stdout') {
        keep('stdout', v.data ?? '');
        cb.onStdout?.(v.data ?? '');
      } else if (v.type === 'stderr') {
        keep('stderr', v.data ?? '');
        cb.onStderr?.(v.data ?? '');
      } else if (v.type === 'exit') exit = v;
      else if (v.type === 'error') throw errorFor((v.error?.code ?? 'FORKD_E_INTERNAL') as never, v.error?.message ?? 'stream failed');
    };
    res.stream.setEncoding('utf8');
    for await (const chunk of res.stream as AsyncIterable<string>) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > LIMITS.maxStreamLineBytes) {
        res.stream.destroy();
        throw errorFor('FORKD_E_PAYLOAD_TOO_LARGE', `the exec stream sent a line longer than ${LIMITS.maxStreamLineBytes} bytes`);
      }
    }
    onLine(buf);
    if (!exit) throw errorFor('FORKD_E_UNAVAILABLE', 'the exec stream ended without a result');
    const e = exit as { exit_code: number | null; signal: string | null; error: string | null; timed_out: boolean; duration_ms: number };
    return { ...out, exit_code: e.exit_code, signal: e.signal ?? null, error: e.error, timed_out: e.timed_out, duration_ms: e.duration_ms };
  }
  runCode(id: string, body: BodyOf<'runCode'>, signal?: AbortSignal) {
    return this.call('runCode', { params: { id }, body, timeoutMs: (body.timeout_secs ?? CALL_TIMEOUT_SECS.eval) * 1000 + MARGIN_MS, ...(signal ? { signal } : {}) });
  }

  eval(id: string, body: BodyOf<'eval'>, signal?: AbortSignal) {
    return this.call('eval', { params: { id }, body, timeoutMs: (body.timeout_secs ?? CALL_TIMEOUT_SECS.eval) * 1000 + MARGIN_MS, ...(signal ? { signal } : {}) });
  }
  /** The SnapshotInfo, or with wait=false the snapshot in status "writing" with its job_id (see waitJob, listSnapshots). */
  branchSandbox(id: string, body: BodyOf<'branch'> = {}) { return this.call('branch', { params: { id }, body, timeoutMs: 3_600_000 }) as Promise<SnapshotInfo | SnapshotWriting>; }
  forkSandbox(id: string, body: BodyOf<'fork'> = {}) { return this.call('fork', { params: { id }, body, timeoutMs: 3_600_000 }); }

  // Background processes
  startProcess(id: string, body: BodyOf<'startProcess'>) { return this.call('startProcess', { params: { id }, body }); }
  listProcesses(id: string) { return this.call('listProcesses', { params: { id } }); }
  waitProcess(id: string, handle: string, timeoutSecs: number = CALL_TIMEOUT_SECS.processWait) { return this.call('waitProcess', { params: { id, handle }, body: { timeout_secs: timeoutSecs }, timeoutMs: timeoutSecs * 1000 + MARGIN_MS }); }
  killProcess(id: string, handle: string, signal: BodyOf<'killProcess'>['signal'] = 'SIGKILL') { return this.call('killProcess', { params: { id, handle }, body: { signal } }); }

  // Files
  async readFile(id: string, path: string): Promise<Buffer> {
    return readBody(await this.readFileStream(id, path), 1024 * 1024 * 1024);
  }
  /** The response as it arrives (large files). */
  async readFileStream(id: string, path: string) {
    const res = await send(this.endpoint, { method: 'GET', path: routePath(routes.readFile.path, { id }), query: { path }, timeoutMs: 600_000 });
    await expectOk(res);
    return res;
  }
  async writeFile(id: string, path: string, data: string | Uint8Array | Readable, opts: { mode?: number } = {}) {
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data instanceof Readable ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const res = await send(this.endpoint, { method: 'PUT', path: routePath(routes.writeFile.path, { id }), query: { path, ...(opts.mode !== undefined ? { mode: opts.mode.toString(8) } : {}) }, body, timeoutMs: 600_000 });
    return readJson<ResponseOf<'writeFile'>>(res);
  }
  listFiles(id: string, path: string, depth?: number) { return this.call('listFiles', { params: { id }, query: { path, ...(depth ? { depth } : {}) } }); }
  statFile(id: string, path: string) { return this.call('statFile', { params: { id }, query: { path } }); }
  mkdir(id: string, path: string, parents = true) { return this.call('mkdir', { params: { id }, body: { path, parents } }); }
  removeFile(id: string, path: string, recursive = false) { return this.call('removeFile', { params: { id }, query: { path, ...(recursive ? { recursive: 'true' } : {}) } as QueryOf<'removeFile'> }); }
  renameFile(id: string, from: string, to: string) { return this.call('renameFile', { params: { id }, body: { from, to } }); }

  // Workspaces
  listWorkspaces() { return this.call('listWorkspaces'); }
  createWorkspace(body: BodyOf<'createWorkspace'>) { return this.call('createWorkspace', { body, timeoutMs: 600_000 }); }
  getWorkspace(name: string) { return this.call('getWorkspace', { params: { name } }); }
  async deleteWorkspace(name: string): Promise<void> { await this.call('deleteWorkspace', { params: { name } }); }
  suspendWorkspace(name: string, body: BodyOf<'suspendWorkspace'> = {}) { return this.call('suspendWorkspace', { params: { name }, body, timeoutMs: 3_600_000 }); }
  /** Fields given (network, egress policy, limits) replace the workspace's recorded ones from now on. */
  resumeWorkspace(name: string, body: BodyOf<'resumeWorkspace'> = {}) { return this.call('resumeWorkspace', { params: { name }, body, timeoutMs: 600_000 }); }
}
