/** Wire views of daemon and engine records (the API's snake_case shapes), and REST requests as engine requests. */
import type { z } from 'zod';
import type { ExecResponse, EvalResponse, RunCodeResponse, SandboxInfo } from '@forkd/api';
import type { ExecRequest, RunCodeOutcome } from '@forkd/engine';
import type { ExecResultT, EvalResultT } from '@forkd/protocol';
import type { SandboxEntry } from '../sandboxes/registry.js';
import { ownerOf } from '../tenancy/access.js';
import type { QuotaValues } from '../quotas/policy.js';

/** memory_limit_mib and the other limits as SandboxInfo and WorkspaceInfo show them (null: none). */
export function limitsView(q: QuotaValues): Pick<z.output<typeof SandboxInfo>, 'memory_limit_mib' | 'limits'> {
  return {
    memory_limit_mib: q.memory_limit_mib ?? null,
    limits: { cpu_weight: q.cpu_weight ?? null, cpu_quota: q.cpu_quota ?? null, pids_max: q.pids_max ?? null, disk_limit_mib: q.disk_limit_mib ?? null, io_read_bps: q.io_read_bps ?? null, io_write_bps: q.io_write_bps ?? null },
  };
}

export function sandboxInfo(entry: SandboxEntry): z.output<typeof SandboxInfo> {
  const r = entry.rec;
  const q = r.quotas ?? {};
  return {
    id: r.id,
    snapshot_tag: r.snapshot_tag,
    status: entry.ending || entry.endReason ? 'killed' : 'running',
    pid: r.pid,
    created_at_unix: r.created_at_unix,
    expires_at_unix_ms: r.expires_at_unix_ms,
    metadata: r.metadata,
    ready: { spawn_to_running_ms: r.timings.spawn_to_running_ms, spawn_to_ready_ms: r.timings.spawn_to_ready_ms, clock_skew_ms: r.timings.clock_skew_ms },
    language: r.language,
    network: entry.sb.network,
    netns: entry.sb.netns,
    guest_addr: entry.sb.guestAddr,
    ...limitsView(q),
    end_reason: entry.endReason,
    egress: r.egress ?? null,
    has_branched: r.branch_count > 0,
    branch_count: r.branch_count,
    workspace: r.workspace,
    owner: ownerOf(r),
    guest_fork: r.guest_fork ?? null,
    variant: r.variant ?? null,
    idle: entry.sb.alive ? entry.sb.idlePause : null,
  };
}

export function execView(r: ExecResultT): z.output<typeof ExecResponse> {
  return {
    stdout: r.stdout,
    stderr: r.stderr,
    exit_code: r.exit_code,
    signal: r.signal,
    error: r.error,
    timed_out: r.timed_out,
    stdout_truncated: r.stdout_truncated,
    stderr_truncated: r.stderr_truncated,
    duration_ms: r.duration_ms,
  };
}

export function evalView(r: EvalResultT): z.output<typeof EvalResponse> {
  return {
    result: r.repr,
    result_json: r.json_ok ? r.json : null,
    error: r.error ? r.error.message : null,
    error_type: r.error?.type ?? null,
    traceback: r.error?.traceback ?? null,
    exit_code: r.ok ? 0 : 1,
    stdout: r.stdout,
    stderr: r.stderr,
    duration_ms: r.duration_ms,
  };
}

/** run_code's engine reply as the REST body: images become base64, logs are grouped as E2B's. */
export function runCodeView(r: RunCodeOutcome): z.output<typeof RunCodeResponse> {
  return {
    results: r.results.map(({ png_bytes: _p, jpeg_bytes: _j, ...rest }, i) => ({
      ...rest,
      ...(r.images[i]?.png ? { png: r.images[i]!.png!.toString('base64') } : {}),
      ...(r.images[i]?.jpeg ? { jpeg: r.images[i]!.jpeg!.toString('base64') } : {}),
    })),
    logs: { stdout: r.stdout, stderr: r.stderr },
    error: r.error,
    execution_count: r.execution_count,
    interpreter: r.interpreter,
    dropped: r.dropped,
    duration_ms: r.duration_ms,
  };
}

/** A REST command (exec or process start) as the engine's request; the sandbox adds its own envs underneath. */
export function execRequest(body: { args?: string[]; cmd?: string; envs?: Record<string, string>; cwd?: string; timeout_secs?: number }): ExecRequest {
  return {
    ...(body.args ? { argv: body.args } : { shell: body.cmd! }),
    ...(body.envs ? { env: body.envs } : {}),
    ...(body.cwd ? { cwd: body.cwd } : {}),
    ...(body.timeout_secs !== undefined ? { timeout_ms: Math.round(body.timeout_secs * 1000) } : {}),
  };
}
