/**
 * The host's view of a sandbox for its metrics: the QEMU process's CPU time and resident memory
 * (/proc/<pid>/stat, /proc/<pid>/status), the memory its cgroup is charged (v1 or v2; null without
 * a memory limit) and the blocks its disk overlay holds. Readings only: rates are the caller's.
 */
import { promises as fs } from 'node:fs';

/** Linux reports process times in USER_HZ, which is 100 on every architecture forkd runs on. */
const USER_HZ = 100;

export interface HostStats {
  /** QEMU's user + system CPU time so far, seconds. */
  cpu_seconds: number;
  /** Seconds since QEMU started (for an average over its life when there is no earlier reading). */
  age_seconds: number;
  rss_bytes: number;
  cgroup_memory_bytes: number | null;
  /** Bytes allocated to the child's disk overlay on the host (its copy-on-write changes). */
  disk_overlay_bytes: number | null;
  /** Host CPUs (QEMU's percentages are of one of them). */
  host_cpus: number;
}

/** utime + stime and starttime (ticks) from /proc/<pid>/stat; the comm field may hold spaces and parentheses. */
export function parsePidStat(text: string): { cpuTicks: number; startTicks: number } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
  return { cpuTicks: Number(rest[11]) + Number(rest[12]), startTicks: Number(rest[19]) };
}

/** A process's user + system CPU time so far (ms). */
export async function processCpuMs(pid: number): Promise<number> {
  return (parsePidStat(await fs.readFile(`/proc/${pid}/stat`, 'utf8')).cpuTicks * 1000) / USER_HZ;
}

export async function readHostStats(o: { pid: number; cgroupMemory: () => Promise<number | null>; diskPath: string | null; hostCpus: number }): Promise<HostStats> {
  const [stat, status, uptime, cg, disk] = await Promise.all([
    fs.readFile(`/proc/${o.pid}/stat`, 'utf8'),
    fs.readFile(`/proc/${o.pid}/status`, 'utf8'),
    fs.readFile('/proc/uptime', 'utf8'),
    o.cgroupMemory().catch(() => null),
    o.diskPath ? fs.stat(o.diskPath).then((s) => s.blocks * 512, () => null) : Promise.resolve(null),
  ]);
  const { cpuTicks, startTicks } = parsePidStat(stat);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return {
    cpu_seconds: cpuTicks / USER_HZ,
    age_seconds: Math.max(0.001, Number(uptime.split(' ')[0]) - startTicks / USER_HZ),
    rss_bytes: rss ? Number(rss[1]) * 1024 : 0,
    cgroup_memory_bytes: cg,
    disk_overlay_bytes: disk,
    host_cpus: o.hostCpus,
  };
}
