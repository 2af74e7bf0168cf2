import type { Logger } from 'pino';
import type { Engine } from '@forkd/engine';
import type { Journal } from '../state/journal.js';
import type { SandboxRegistry } from '../sandboxes/registry.js';
import type { Jobs } from '../jobs.js';
import type { Metrics } from '../metrics.js';
import type { SnapshotWrites } from '../snapshots/writes.js';
import type { Admission } from '../sandboxes/admission.js';
import type { Workspaces } from '../workspaces/registry.js';
import type { EgressSettings } from '../sandboxes/egress.js';
import type { SnapshotOwners } from '../tenancy/snapshot-owners.js';
import type { LazyEgress } from '../sandboxes/egress-service.js';
import type { EventLog } from '../events/log.js';
import type { WebhookDelivery } from '../events/webhook.js';
import type { MetricsSampler } from '../sandboxes/metrics-sampler.js';

/** What handlers may use. They map REST to engine calls: QMP, VM files and the guest agent protocol stay inside the engine. */
export interface DaemonServices {
  engine: Engine;
  journal: Journal;
  sandboxes: SandboxRegistry;
  jobs: Jobs;
  metrics: Metrics;
  log: Logger;
  writes: SnapshotWrites;
  admission: Admission;
  workspaces: Workspaces;
  egress: EgressSettings;
  owners: SnapshotOwners;
  /** Lifecycle events: the stream, its journal and (through it) webhooks. */
  events: EventLog;
  /** The operator's webhook, when configured (stopped with the daemon). */
  webhook?: WebhookDelivery;
  /** Per-sandbox metric samples (sampled while someone asks). */
  sampler: MetricsSampler;
  /** The egress proxy + nft service (as root; started on first networked child). */
  egressService?: LazyEgress;
}
