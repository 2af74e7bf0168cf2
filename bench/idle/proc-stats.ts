/** Per-thread CPU and context switches of host processes, and guest counter files, for the idle probe. */
import { promises as fs } from 'node:fs';

const TICK_MS = 10; // USER_HZ = 100 on Linux

export interface ThreadSample {
  pid: number;
  tid: number;
  comm: string;
  cpuMs: number;
  /** Voluntary context switches: the thread slept and something woke it. */
  vol: number;
  invol: number;
}

/** Every thread of the given processes; processes or threads that vanished are skipped. */
export async function readThreads(pids: number[]): Promise<ThreadSample[]> {
  const out: ThreadSample[] = [];
  await Promise.all(pids.map(async (pid) => {
    let tids: string[];
    try {
      tids = await fs.readdir(`/proc/${pid}/task`);
    } catch {
      return;
    }
    await Promise.all(tids.map(async (tid) => {
      try {
        const [stat, status] = await Promise.all([fs.readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8'), fs.readFile(`/proc/${pid}/task/${tid}/status`, 'utf8')]);
        const close = stat.lastIndexOf(') ');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        const f = stat.slice(close + 2).split(' ');
        const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
        out.push({ pid, tid: Number(tid), comm, cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS, vol: num('voluntary_ctxt_switches'), invol: num('nonvoluntary_ctxt_switches') });
      } catch {
        // the thread exited between readdir and read
      }
    }));
  }));
  return out;
}

/**
 * /proc/interrupts and /proc/softirqs (as printed one after the other): each row's total over all
 * CPUs, keyed by its label (interrupts: the row name plus its description).
 */
export function parseProcCounters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+):\s+((?:\d+\s+)*\d+)(.*)$/.exec(line);
    if (!m) continue;
    const total = m[2]!.trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0);
    const desc = m[3]!.trim().replace(/\s+/g, ' ');
    out.set(desc ? `${m[1]} ${desc}` : m[1]!, total);
  }
  return out;
}

/** Rows whose counters grew, largest first. */
export function diffCounters(a: Map<string, number>, b: Map<string, number>): [string, number][] {
  return [...b].map(([k, v]): [string, number] => [k, v - (a.get(k) ?? 0)]).sort((x, y) => y[1] - x[1]);
}
