/**
 * `services.start` / `services.list`: a recipe's long-running processes, started in the parent
 * before the snapshot so that every restored child has them running already. Each service is
 * started, then its ready check is polled until it passes, the process ends, or its timeout runs
 * out; the result carries the service's own newest output so the host can say why it failed.
 */
import { LIMITS, type ResultOf, type ServiceSpecT, type ServiceStatusT } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import { RingBuffer } from '../output-buffer.js';
import { RunningProcess, defaultShell } from '../process-runner.js';
import type { SpawnHelper } from '../spawn-helper.js';
import { checkOnce, type ReadyCheck } from './service-ready.js';
import { accountOf, asUser } from './service-user.js';

interface Started {
  spec: ServiceSpecT;
  proc: RunningProcess;
  output: RingBuffer;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function makeServiceMethods(launcher: SpawnHelper | null) {
  /** Services that became ready; they live as long as the guest (and so in every child). */
  const running: Started[] = [];

  async function start(spec: ServiceSpecT): Promise<{ started: Started | null; status: ServiceStatusT }> {
    const t0 = performance.now();
    const output = new RingBuffer(LIMITS.services.outputBytes);
    const status = (state: ServiceStatusT['state'], proc: RunningProcess | null, error: string | null): ServiceStatusT => ({
      name: spec.name,
      state,
      pid: proc && proc.pid > 0 ? proc.pid : null,
      exit_code: proc?.exitCode ?? null,
      signal: proc?.exitSignal ?? null,
      error: error ?? proc?.error ?? null,
      output: output.text(),
      output_truncated: output.truncated,
      ready_ms: Math.round(performance.now() - t0),
    });
    let account;
    try {
      account = spec.user === undefined ? null : accountOf(spec.user);
    } catch (e) {
      return { started: null, status: status('exited', null, (e as Error).message) };
    }
    const command = typeof spec.start === 'string' ? [defaultShell(), '-c', spec.start] : spec.start;
    const proc = new RunningProcess({
      argv: asUser(account, command),
      env: { ...(account ? account.env : {}), ...(spec.env ?? {}) },
      ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
      // One ring for both streams: the error shows them interleaved, the way they were written.
      stdout: output,
      stderr: output,
      launcher,
    });
    await proc.started;
    const check: ReadyCheck = { ready: spec.ready, account, cwd: spec.cwd, env: spec.env, launcher };
    const deadline = t0 + spec.timeout_secs * 1000;
    let lastError: string | null = null;
    for (;;) {
      if (!proc.running) return { started: null, status: status('exited', proc, null) };
      const left = deadline - performance.now();
      if (left <= 0) break;
      const r = await checkOnce(check, Math.min(left, 10_000));
      if (r.ok) {
        // Ready, unless it died while the check ran (a port another process holds, say).
        if (!proc.running) return { started: null, status: status('exited', proc, null) };
        return { started: { spec, proc, output }, status: status('ready', proc, null) };
      }
      lastError = r.error;
      // Wakes early when the process ends: an exit is reported at once, not after a poll.
      await Promise.race([sleep(LIMITS.services.pollIntervalMs), proc.done]);
    }
    proc.kill('SIGKILL');
    await Promise.race([proc.done, sleep(2000)]);
    return { started: null, status: status('not_ready', proc, lastError ? `ready check: ${lastError}` : null) };
  }

  return {
    async 'services.start'(p: ParamsOut<'services.start'>, _ctx: CallContext): Promise<Reply<ResultOf<'services.start'>>> {
      const statuses: ServiceStatusT[] = [];
      const mine: Started[] = [];
      for (const spec of p.services) {
        if (running.some((s) => s.spec.name === spec.name && s.proc.running)) {
          statuses.push({ name: spec.name, state: 'exited', pid: null, exit_code: null, signal: null, error: `service ${spec.name} is already running`, output: '', output_truncated: false, ready_ms: 0 });
          break;
        }
        const { started, status } = await start(spec);
        statuses.push(status);
        if (!started) break;
        mine.push(started);
      }
      // A service that became ready and then died while a later one started is not running either.
      for (const s of mine) {
        const st = statuses.find((x) => x.name === s.spec.name)!;
        if (!s.proc.running && st.state === 'ready') Object.assign(st, { state: 'exited', exit_code: s.proc.exitCode, signal: s.proc.exitSignal, output: s.output.text(), output_truncated: s.output.truncated });
      }
      if (statuses.every((s) => s.state === 'ready')) {
        running.push(...mine);
      } else {
        // All or nothing: the ones that did start are stopped, so a failed call leaves no process.
        for (const s of mine) s.proc.kill('SIGKILL');
        await Promise.race([Promise.all(mine.map((s) => s.proc.done)), sleep(2000)]);
      }
      return { result: { services: statuses } };
    },

    async 'services.list'(): Promise<Reply<ResultOf<'services.list'>>> {
      return { result: { services: running.map((s) => ({ name: s.spec.name, pid: s.proc.pid > 0 ? s.proc.pid : null, running: s.proc.running && pidAlive(s.proc.pid) })) } };
    },

    /** Stops every service (agent shutdown). */
    stopAll(): void {
      for (const s of running) s.proc.kill('SIGKILL');
    },
  };
}

function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
