/**
 * Starting a recipe's services through the agent, and turning a failed one into a ForkdError
 * the caller can act on: which service, why (exit status, or the ready check's last failure),
 * and the service's own newest output. The guest reports a status; the host picks the code.
 */
import { ForkdError, LIMITS, type ServiceSpecT, type ServiceStatusT } from '@forkd/protocol';
import type { AgentClient } from '../agent-client/index.js';

/** The newest part of a service's output, for an error message (the guest already caps it). */
function tail(s: string): string {
  const max = LIMITS.services.errorOutputChars;
  return s.length <= max ? s : `…${s.slice(-max)}`;
}

export function serviceError(st: ServiceStatusT, spec: ServiceSpecT | undefined): ForkdError {
  const output = tail(st.output);
  const details = { service: st.name, state: st.state, pid: st.pid, exit_code: st.exit_code, signal: st.signal, reason: st.error, output, output_truncated: st.output_truncated || output.length < st.output.length };
  const said = output.trim() ? `; its output:\n${output.trimEnd()}` : '; it printed nothing';
  if (st.state === 'not_ready') {
    const secs = spec?.timeout_secs ?? Math.round(st.ready_ms / 1000);
    return new ForkdError('FORKD_E_SERVICE_NOT_READY', `service ${st.name} was not ready within ${secs} s${st.error ? ` (${st.error})` : ''}${said}`, details);
  }
  const how = st.error && st.exit_code === null && st.signal === null ? `could not start: ${st.error}` : st.signal ? `was killed by ${st.signal}` : `exited with code ${st.exit_code}`;
  return new ForkdError('FORKD_E_SERVICE_EXITED', `service ${st.name} ${how} before it was ready${said}`, details);
}

/** Starts every service in order; throws the first failure's error (the agent stopped the others). */
export async function startServices(agent: AgentClient, services: ServiceSpecT[]): Promise<ServiceStatusT[]> {
  if (services.length === 0) return [];
  const r = await agent.servicesStart({ services });
  const bad = r.services.find((s) => s.state !== 'ready');
  if (bad) throw serviceError(bad, services.find((s) => s.name === bad.name));
  if (r.services.length !== services.length) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', `agent reported ${r.services.length} of ${services.length} services`);
  return r.services;
}
