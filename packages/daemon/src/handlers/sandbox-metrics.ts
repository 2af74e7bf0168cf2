/** GET /v1/sandboxes/:id/metrics: the sampler's ring for the window, after a fresh sample. */
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';

export function sandboxMetricsHandlers(s: DaemonServices): Pick<Handlers, 'getMetrics'> {
  return {
    async getMetrics({ params, query, caller }) {
      s.sandboxes.get(params.id, caller); // another identity's sandbox is not found, before any reading
      const samples = await s.sandboxes.withSandbox(params.id, caller, 'metrics', () => s.sampler.samples(params.id, { ...(query.start !== undefined ? { start: query.start } : {}), ...(query.end !== undefined ? { end: query.end } : {}) }));
      return { status: 200, body: { sandbox_id: params.id, samples } };
    },
  };
}
