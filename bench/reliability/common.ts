/**
 * Shared by the reliability scenarios (issue 9 §4): options, figures (min / median / max), and
 * what a daemon holds (RSS, heap, fds) and leaves behind (QEMU processes, run directories).
 */
import { promises as fs, readdirSync, readlinkSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostLine } from '../host.js';
import type { TestDaemon } from '@forkd/daemon/testing';

export interface ScenarioOptions {
  quick: boolean;
  /** R1's spawn/kill cycles. */
  cycles: number;
  /** R3's random requests. */
  requests: number;
}

export interface Scenario {
  id: string;
  title: string;
  /** Boots VMs: run under the shared VM lock. */
  vm: boolean;
  /** Prints its figures through `out`. */
  run(o: ScenarioOptions, out: (line: string) => void): Promise<void>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function stats(xs: number[]): { min: number; median: number; max: number; p99: number } {
  if (xs.length === 0) return { min: NaN, median: NaN, max: NaN, p99: NaN };
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, p99: s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]! };
}
export const mmm = (xs: number[], unit = 'ms', digits = 0) => {
  const s = stats(xs);
  return `${s.min.toFixed(digits)} / ${s.median.toFixed(digits)} / ${s.max.toFixed(digits)} ${unit}`;
};

export const MiB = 1024 * 1024;

/** VmRSS of a process, MiB. */
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
/** Sockets among a process's fds. */
export function socketFdCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/** The daemon's V8 heap in use and its external memory (Buffers live there, off the V8 heap), from its own /metrics, MiB. */
export async function daemonMemory(d: TestDaemon): Promise<{ heap: number; external: number }> {
  const { raw } = await import('../../packages/daemon/src/testing/http.js');
  const r = await raw(d, { method: 'GET', path: '/metrics', headers: d.token ? { authorization: `Bearer ${d.token}` } : {} });
  const figure = (name: string) => {
    const m = new RegExp(`^forkd_daemon_${name} (\\S+)$`, 'm').exec(r.text);
    if (!m) throw new Error(`no ${name} in /metrics (HTTP ${r.status})`);
    return Number(m[1]) / MiB;
  };
  return { heap: figure('nodejs_heap_size_used_bytes'), external: figure('nodejs_external_memory_bytes') };
}
export const heapMiB = async (d: TestDaemon) => (await daemonMemory(d)).heap;

/**
 * The run directory the benches' daemons use: their own, so that counting what is left there is
 * not confused by other forkd users of this host (the default, /run/forkd, is shared).
 */
export function benchRunDir(): string {
  const dir = process.env.FORKD_RUN_DIR ?? path.join(os.tmpdir(), `forkd-rel-${process.pid}`);
  process.env.FORKD_RUN_DIR = dir;
  return dir;
}

/** VM run directories (vm-*) in the run directory. */
export function runDirCount(runDir: string): number {
  try {
    return readdirSync(runDir).filter((f) => f.startsWith('vm-')).length;
  } catch {
    return 0;
  }
}

/** Unix sockets under the run directory (QMP, agent and keeper sockets). */
export async function socketFileCount(runDir: string): Promise<number> {
  let n = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isSocket()) n++;
      else if (e.isDirectory()) await walk(path.join(dir, e.name));
    }
  };
  await walk(runDir);
  return n;
}

/** QEMU processes whose working directory is inside the run directory (each VM runs in its own). */
export function qemuCount(runDir: string): number {
  let n = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('qemu')) continue;
      if (readlinkSync(`/proc/${p}/cwd`).startsWith(`${runDir}/`)) n++;
    } catch {
      /* gone meanwhile */
    }
  }
  return n;
}

/** Waits until `f` is true or the time is up; returns its last value. */
export async function settle(f: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return true;
    if (Date.now() > end) return false;
    await sleep(250);
  }
}

/** One line about the host, for the figures: cores, memory, load (other helpers share it). */
export function machineLine(): string {
  const [l1, l5] = os.loadavg();
  return `${hostLine()}, node ${process.version}, load average ${l1!.toFixed(2)} (1 min) ${l5!.toFixed(2)} (5 min)`;
}
