/**
 * Sandbox metrics: a ring of samples per sandbox (METRICS_LIMITS.ringSamples). Sampling is on
 * demand: a request takes a sample (unless the newest is under a second old) and marks the sandbox
 * watched; watched sandboxes are sampled every sampleIntervalMs for watchMs after the last request,
 * then left alone (no agent call, no /proc read) until asked again. Rates (CPU %) are the difference
 * from the previous reading of the same sandbox, or the average since boot/start for the first.
 */
import { METRICS_LIMITS } from '@forkd/protocol';
import type { HostStats } from '@forkd/engine';
import type { StatsResultT } from '@forkd/protocol';
import type { z } from 'zod';
import type { SandboxMetric } from '@forkd/api';

export type Sample = z.output<typeof SandboxMetric>;

export interface Readings {
  guest: StatsResultT;
  host: HostStats;
}

interface Ring {
  samples: Sample[];
  prev: Readings | null;
  watchedUntil: number;
  inflight: Promise<Sample> | null;
}

const pct = (v: number): number => Math.round(Math.max(0, v) * 10) / 10;

/** One sample from two readings of the same sandbox (prev null: averages since the guest booted / QEMU started). */
export function toSample(now: Readings, prev: Readings | null, at: number): Sample {
  const g = now.guest;
  const dBusy = prev ? g.cpu_busy_ticks - prev.guest.cpu_busy_ticks : g.cpu_busy_ticks;
  const dTotal = prev ? g.cpu_total_ticks - prev.guest.cpu_total_ticks : g.cpu_total_ticks;
  const dCpu = prev ? now.host.cpu_seconds - prev.host.cpu_seconds : now.host.cpu_seconds;
  const dWall = prev ? now.host.age_seconds - prev.host.age_seconds : now.host.age_seconds;
  return {
    timestamp: new Date(at).toISOString(),
    timestamp_unix_ms: at,
    cpu_used_pct: pct(dTotal > 0 ? (100 * dBusy) / dTotal : 0),
    cpu_count: g.cpu_count,
    mem_used: g.mem_used_bytes,
    mem_total: g.mem_total_bytes,
    disk_used: g.disk_used_bytes,
    disk_total: g.disk_total_bytes,
    host: {
      cpu_pct: pct(dWall > 0 ? (100 * dCpu) / dWall : 0),
      rss_bytes: now.host.rss_bytes,
      cgroup_memory_bytes: now.host.cgroup_memory_bytes,
      disk_overlay_bytes: now.host.disk_overlay_bytes,
    },
  };
}

export interface SamplerDeps {
  /** Reads a live sandbox (throws when it is gone). */
  read: (id: string) => Promise<Readings>;
  /** Whether the sandbox is still live (rings of ended ones are dropped). */
  live: (id: string) => boolean;
  now?: () => number;
  onError?: (id: string, e: unknown) => void;
}

export interface SamplerLimits { ringSamples: number; sampleIntervalMs: number; watchMs: number; maxWatched: number }

export class MetricsSampler {
  private readonly rings = new Map<string, Ring>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly deps: SamplerDeps, private readonly limits: SamplerLimits = METRICS_LIMITS) {
    this.now = deps.now ?? Date.now;
  }

  /** Samples between start and end (unix ms), after taking a fresh one; marks the sandbox watched. */
  async samples(id: string, window: { start?: number; end?: number } = {}): Promise<Sample[]> {
    const ring = this.ring(id);
    ring.watchedUntil = this.now() + this.limits.watchMs;
    const newest = ring.samples.at(-1);
    if (!newest || this.now() - newest.timestamp_unix_ms >= 1000) await this.sample(id, ring);
    this.arm();
    return ring.samples.filter((s) => (window.start === undefined || s.timestamp_unix_ms >= window.start) && (window.end === undefined || s.timestamp_unix_ms <= window.end));
  }

  /** Sandboxes sampled in the background now. */
  get watched(): number {
    const t = this.now();
    return [...this.rings.values()].filter((r) => r.watchedUntil > t).length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One background round: watched sandboxes are sampled, rings of ended ones dropped. */
  async tick(): Promise<void> {
    const t = this.now();
    const due: Array<[string, Ring]> = [];
    for (const [id, r] of this.rings) {
      if (!this.deps.live(id)) this.rings.delete(id);
      else if (r.watchedUntil > t && due.length < this.limits.maxWatched) due.push([id, r]);
    }
    await Promise.all(due.map(([id, r]) => this.sample(id, r).catch((e: unknown) => this.deps.onError?.(id, e))));
    if (due.length === 0) this.stop();
  }

  private ring(id: string): Ring {
    let r = this.rings.get(id);
    if (!r) this.rings.set(id, (r = { samples: [], prev: null, watchedUntil: 0, inflight: null }));
    return r;
  }

  private sample(id: string, ring: Ring): Promise<Sample> {
    // Concurrent requests share one reading (one agent call, one /proc read).
    ring.inflight ??= (async () => {
      try {
        const readings = await this.deps.read(id);
        const s = toSample(readings, ring.prev, this.now());
        ring.prev = readings;
        ring.samples.push(s);
        if (ring.samples.length > this.limits.ringSamples) ring.samples.splice(0, ring.samples.length - this.limits.ringSamples);
        return s;
      } finally {
        ring.inflight = null;
      }
    })();
    return ring.inflight;
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.limits.sampleIntervalMs);
    this.timer.unref();
  }
}
