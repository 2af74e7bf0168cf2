/** Background processes: start, list, wait, kill (the agent keeps their last output). */
import { ForkdError } from '@forkd/protocol';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { execRequest, execView } from './views.js';

type ProcRoutes = 'startProcess' | 'listProcesses' | 'waitProcess' | 'killProcess';

export function processHandlers(s: DaemonServices): Pick<Handlers, ProcRoutes> {
  return {
    async startProcess({ params, body, signal, caller }) {
      const r = await s.sandboxes.withSandbox(params.id, caller, 'process.start', (sb) => sb.commands.start(execRequest(body), { signal }));
      if (!('handle' in r)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `could not start the process: ${r.error ?? `exit ${r.exit_code}`}`, { exit_code: r.exit_code });
      return { status: 201, body: { handle: r.handle, pid: r.pid, command: body.cmd ?? body.args!.join(' '), started_at_ms: Date.now(), running: true, exit_code: null, signal: null } };
    },
    async listProcesses({ params, signal, caller }) {
      return { status: 200, body: await s.sandboxes.withSandbox(params.id, caller, 'process.list', (sb) => sb.commands.list({ signal })) };
    },
    async waitProcess({ params, body, signal, caller }) {
      const r = await s.sandboxes.withSandbox(params.id, caller, 'process.wait', (sb) => sb.commands.wait(params.handle, Math.round(body.timeout_secs * 1000), { signal }));
      return { status: 200, body: execView(r) };
    },
    async killProcess({ params, body, signal, caller }) {
      const killed = await s.sandboxes.withSandbox(params.id, caller, 'process.kill', (sb) => sb.commands.kill(params.handle, body.signal, { signal }));
      return { status: 200, body: { killed } };
    },
  };
}
