/** Host-side readings of children's QEMU processes: memory by mapping class, CPU time, host memory. */
import { promises as fs } from 'node:fs';
import { classifySmaps, emptyBreakdown, MEM_CLASSES, totalPssKib, kvmEquivalentPssKib, type Breakdown, type MemClass } from './smaps.js';

const TICK_MS = 10; // USER_HZ = 100 on Linux

/** utime + stime of a process (ms), or null once it is gone. */
export async function cpuMs(pid: number): Promise<number | null> {
  try {
    const f = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return null;
  }
}

export async function totalCpuMs(pids: number[]): Promise<number> {
  let sum = 0;
  for (const p of pids) sum += (await cpuMs(p)) ?? 0;
  return sum;
}

/** Per-child breakdown of every pid still alive (a child that died in between is skipped). */
export async function breakdowns(pids: number[], guestMemFile = 'memory.bin'): Promise<Breakdown[]> {
  const out: Breakdown[] = [];
  for (const p of pids) {
    try {
      out.push(classifySmaps(await fs.readFile(`/proc/${p}/smaps`, 'utf8'), guestMemFile));
    } catch {
      /* gone */
    }
  }
  return out;
}

function median(v: number[]): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export interface MemSummary {
  children: number;
  /** Median over children, MiB. */
  pssMib: number;
  pssMaxMib: number;
  kvmEquivalentPssMib: number;
  /** Median over children of each class's PSS, MiB (medians need not add up to pssMib). */
  byClassMib: Record<MemClass, number>;
  /** Sum over all children of PSS, MiB: what the host pays for them together. */
  sumPssMib: number;
}

export function summarizeMem(bs: Breakdown[]): MemSummary {
  const mib = (kib: number) => kib / 1024;
  const totals = bs.map(totalPssKib);
  const byClassMib = Object.fromEntries(MEM_CLASSES.map((c) => [c, mib(median(bs.map((b) => b[c].pssKib)))])) as Record<MemClass, number>;
  return {
    children: bs.length,
    pssMib: mib(median(totals)),
    pssMaxMib: mib(Math.max(...totals, 0)),
    kvmEquivalentPssMib: mib(median(bs.map(kvmEquivalentPssKib))),
    byClassMib,
    sumPssMib: mib(totals.reduce((a, b) => a + b, 0)),
  };
}

export { emptyBreakdown };

export async function memAvailableMib(): Promise<number> {
  const t = await fs.readFile('/proc/meminfo', 'utf8');
  return Number(/^MemAvailable:\s+(\d+)/m.exec(t)![1]) / 1024;
}

/** KSM counters (pages), or null where the kernel has no KSM. */
export async function ksmPages(): Promise<{ shared: number; sharing: number; run: number } | null> {
  try {
    const r = async (f: string) => Number((await fs.readFile(`/sys/kernel/mm/ksm/${f}`, 'utf8')).trim());
    return { shared: await r('pages_shared'), sharing: await r('pages_sharing'), run: await r('run') };
  } catch {
    return null;
  }
}
