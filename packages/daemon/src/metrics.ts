/** Prometheus metrics: counters and histograms of what users feel, plus live gauges. */
import client from 'prom-client';
import type { WarmPoolTagState } from '@forkd/engine';

export class Metrics {
  readonly registry = new client.Registry();
  readonly spawnReady: client.Histogram;
  readonly spawnRequest: client.Histogram;
  readonly agentCall: client.Histogram<'call'>;
  readonly errors: client.Counter<'code'>;
  readonly http: client.Counter<'route' | 'status'>;
  readonly httpSeconds: client.Histogram<'route'>;
  readonly sandboxesSpawned: client.Counter;
  readonly sandboxesEnded: client.Counter<'reason'>;
  readonly branchPause: client.Histogram<'mode'>;
  readonly webhookDeliveries: client.Counter<'result'>;

  constructor(gauges: { sandboxes: () => number; snapshots: () => Promise<number>; jobsRunning: () => number; pool?: () => WarmPoolTagState[] }) {
    const r = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'forkd_daemon_' });
    const latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.spawnReady = new client.Histogram({ name: 'forkd_spawn_ready_seconds', help: 'Per child: spawn request to agent answered after restore', buckets: latency, registers: r });
    this.spawnRequest = new client.Histogram({ name: 'forkd_spawn_request_seconds', help: 'Whole spawn request (all n children ready)', buckets: latency, registers: r });
    this.agentCall = new client.Histogram({ name: 'forkd_agent_call_seconds', help: 'Agent calls through the API (exec, eval, files, ...)', labelNames: ['call'], buckets: latency, registers: r });
    this.errors = new client.Counter({ name: 'forkd_errors_total', help: 'Failed requests by FORKD_E code', labelNames: ['code'], registers: r });
    this.http = new client.Counter({ name: 'forkd_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: r });
    this.httpSeconds = new client.Histogram({ name: 'forkd_http_request_seconds', help: 'HTTP request latency by route', labelNames: ['route'], buckets: latency, registers: r });
    this.sandboxesSpawned = new client.Counter({ name: 'forkd_sandboxes_spawned_total', help: 'Sandboxes spawned', registers: r });
    this.sandboxesEnded = new client.Counter({ name: 'forkd_sandboxes_ended_total', help: 'Sandboxes ended, by reason (killed, timeout, exited, lost)', labelNames: ['reason'], registers: r });
    this.branchPause = new client.Histogram({ name: 'forkd_branch_pause_seconds', help: 'How long a branched sandbox was paused', labelNames: ['mode'], buckets: latency, registers: r });
    this.webhookDeliveries = new client.Counter({ name: 'forkd_webhook_deliveries_total', help: 'Webhook delivery attempts by result (ok, retry, gave_up)', labelNames: ['result'], registers: r });
    new client.Gauge({ name: 'forkd_sandboxes_active', help: 'Live sandboxes', registers: r, collect() { this.set(gauges.sandboxes()); } });
    new client.Gauge({ name: 'forkd_snapshots', help: 'Bootable snapshots', registers: r, async collect() { this.set(await gauges.snapshots()); } });
    const pool = gauges.pool ?? (() => []);
    new client.Gauge({ name: 'forkd_warm_pool_ready', help: 'Warm-pool children started ahead and waiting, by snapshot tag', labelNames: ['tag'], registers: r, collect() { this.reset(); for (const t of pool()) this.set({ tag: t.tag }, t.ready); } });
    new client.Gauge({ name: 'forkd_warm_pool_target', help: 'What the warm pool refills to (configured or recent demand), by snapshot tag', labelNames: ['tag'], registers: r, collect() { this.reset(); for (const t of pool()) this.set({ tag: t.tag }, t.target); } });
    new client.Gauge({ name: 'forkd_warm_pool_takes', help: 'Children spawned from the warm pool (hit) or started for lack of one (miss), by snapshot tag', labelNames: ['tag', 'result'], registers: r, collect() { this.reset(); for (const t of pool()) { this.set({ tag: t.tag, result: 'hit' }, t.hits); this.set({ tag: t.tag, result: 'miss' }, t.misses); } } });
    new client.Gauge({ name: 'forkd_jobs_running', help: 'Jobs queued or running', registers: r, collect() { this.set(gauges.jobsRunning()); } });
  }
}
