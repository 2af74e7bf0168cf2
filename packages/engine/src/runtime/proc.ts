import { promises as fs } from 'node:fs';

/** State (field 3) and start time (field 22, clock ticks since boot) from /proc/<pid>/stat; null if gone. */
export async function procStat(pid: number): Promise<{ state: string; startTime: number } | null> {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state), so field 22 is rest[19].
    const v = Number(rest[19]);
    return Number.isFinite(v) ? { state: rest[0] ?? '?', startTime: v } : null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null if the process is gone. */
export async function procStartTime(pid: number): Promise<number | null> {
  return (await procStat(pid))?.startTime ?? null;
}

/** argv of a process (NUL-separated in /proc), or null if it is gone or unreadable. */
export async function procCmdline(pid: number): Promise<string[] | null> {
  try {
    const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return null; // zombie or kernel thread
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

export async function listPids(): Promise<number[]> {
  return (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Boot time (seconds since the epoch) from /proc/stat. */
export async function bootTimeSec(): Promise<number> {
  const m = /^btime (\d+)$/m.exec(await fs.readFile('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Clock ticks per second for /proc times (USER_HZ: 100 on every Linux ABI in use). */
export const CLK_TCK = 100;

/** Whether the process identified by (pid, starttime) is still the one running under that pid. */
export async function sameProcessAlive(pid: number, startTime: number): Promise<boolean> {
  const st = await procStat(pid);
  // A zombie (Z) or dead (X) process has exited; its parent just has not reaped it yet.
  return st !== null && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}
