/** Sandbox metrics in E2B's shape (camelCase, Date timestamps) from the wire's samples. */
import type { SandboxMetricsResponse } from './controller.js';

export interface SandboxMetrics {
  timestamp: Date;
  /** Guest CPU busy over the interval since the previous sample, % of all its vCPUs. */
  cpuUsedPct: number;
  cpuCount: number;
  memUsed: number;
  memTotal: number;
  diskUsed: number;
  diskTotal: number;
  /** The host's view of the VM: QEMU's CPU (% of one host core), resident memory, cgroup charge, disk overlay. */
  host: { cpuPct: number; rssBytes: number; cgroupMemoryBytes: number | null; diskOverlayBytes: number | null };
}

export function metricsWindow(o: { start?: Date | number; end?: Date | number }): { start?: number; end?: number } {
  const ms = (v: Date | number) => (v instanceof Date ? v.getTime() : v);
  return { ...(o.start !== undefined ? { start: ms(o.start) } : {}), ...(o.end !== undefined ? { end: ms(o.end) } : {}) };
}

export function toMetrics(r: SandboxMetricsResponse): SandboxMetrics[] {
  return r.samples.map((s) => ({
    timestamp: new Date(s.timestamp_unix_ms),
    cpuUsedPct: s.cpu_used_pct,
    cpuCount: s.cpu_count,
    memUsed: s.mem_used,
    memTotal: s.mem_total,
    diskUsed: s.disk_used,
    diskTotal: s.disk_total,
    host: { cpuPct: s.host.cpu_pct, rssBytes: s.host.rss_bytes, cgroupMemoryBytes: s.host.cgroup_memory_bytes, diskOverlayBytes: s.host.disk_overlay_bytes },
  }));
}
