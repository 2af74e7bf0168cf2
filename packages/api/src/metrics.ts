/**
 * Sandbox metrics (GET /v1/sandboxes/:id/metrics), E2B's getMetrics shape in wire names: the
 * guest's CPU, memory and disk as it sees them, plus the host's view of the VM (QEMU's CPU and
 * memory, the cgroup's charge, the disk overlay). Samples come from a ring the daemon keeps per
 * sandbox while someone asks (METRICS_LIMITS).
 */
import { z } from 'zod';

export const SandboxMetric = z.object({
  /** ISO 8601 UTC, and the same instant in unix ms. */
  timestamp: z.string(),
  timestamp_unix_ms: z.number().int(),
  /** Guest CPU busy over the interval since the previous sample (or since boot for the first), % of all its vCPUs. */
  cpu_used_pct: z.number(),
  cpu_count: z.number().int(),
  /** Guest memory: total - MemAvailable, and MemTotal (bytes). */
  mem_used: z.number(),
  mem_total: z.number(),
  /** The guest's root filesystem (bytes). */
  disk_used: z.number(),
  disk_total: z.number(),
  host: z.object({
    /** QEMU's CPU time over the interval as % of one host core (as top shows it). */
    cpu_pct: z.number(),
    /** QEMU's resident memory, and what its cgroup is charged (null without a memory limit). */
    rss_bytes: z.number(),
    cgroup_memory_bytes: z.number().nullable(),
    /** Blocks the child's disk overlay holds on the host (null: no overlay). */
    disk_overlay_bytes: z.number().nullable(),
  }),
});

const Instant = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime().transform((s) => Date.parse(s))]);
/** start/end: unix ms or ISO 8601; default: every sample kept. A sample is taken now unless the newest is under a second old. */
export const MetricsQuery = z.object({ start: Instant.optional(), end: Instant.optional() }).strict();
export const MetricsResponse = z.object({ sandbox_id: z.string(), samples: z.array(SandboxMetric) });
