/** `stats`: CPU ticks, memory and root-disk usage as the guest sees them (for sandbox metrics). */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { ResultOf } from '@forkd/protocol';
import type { Reply } from '../handler.js';

/** /proc/stat's first line: busy = all but idle and iowait. */
export function parseProcStat(text: string): { busy: number; total: number } {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  const f = (line ?? '').trim().split(/\s+/).slice(1).map(Number).filter((n) => Number.isFinite(n));
  // user nice system idle iowait irq softirq steal (guest, guest_nice are inside user/nice)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: Math.max(0, total - idle), total };
}

/** /proc/meminfo: total and used (total - MemAvailable, or - free - buffers - cached on old kernels), bytes. */
export function parseMeminfo(text: string): { total: number; used: number } {
  const kb = (k: string): number | null => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const total = kb('MemTotal') ?? 0;
  const avail = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  return { total, used: Math.max(0, total - avail) };
}

export function makeStatsMethods() {
  async function stats(): Promise<Reply<ResultOf<'stats'>>> {
    const [stat, mem, disk] = await Promise.all([
      fs.readFile('/proc/stat', 'utf8').catch(() => ''),
      fs.readFile('/proc/meminfo', 'utf8').catch(() => ''),
      fs.statfs('/').catch(() => null),
    ]);
    const cpu = parseProcStat(stat);
    const m = parseMeminfo(mem);
    const bsize = disk?.bsize ?? 0;
    const total = disk ? (disk.blocks - disk.bfree + disk.bavail) * bsize : 0;
    return {
      result: {
        cpu_count: os.cpus().length,
        cpu_busy_ticks: cpu.busy,
        cpu_total_ticks: cpu.total,
        mem_total_bytes: m.total,
        mem_used_bytes: m.used,
        disk_total_bytes: total,
        disk_used_bytes: disk ? (disk.blocks - disk.bfree) * bsize : 0,
        time_unix_ms: Date.now(),
      },
    };
  }
  return { stats };
}
