/**
 * Idle cost probe (issue 11 §1): what N idle children (no calls) cost the host, and what wakes an
 * idle guest. Spawns N children from a snapshot, lets them settle, then measures over repeated
 * windows: host CPU of every QEMU (utime+stime, per thread from /proc/PID/task/*), voluntary and
 * involuntary context switches per thread (each voluntary one is a wake-up), and inside one child
 * the deltas of /proc/interrupts and /proc/softirqs, plus (TRACE=1) the guest's expired timers by
 * function (ftrace timer_expire_entry / hrtimer_expire_entry) over one window.
 *   flock /tmp/forkd-vm.lock npm run bench:idle
 * Modes (MODES, default "old,new"): each has its own snapshot (BENCH_TAG-old / -new, created here
 * from the python recipe with FORKD_IDLE_TUNING=off / on: the idle settings live in the guest
 * kernel's command line, which the snapshot carries, and in QEMU's machine arguments, which its
 * children must repeat, so each mode spawns under its own setting), measured one after the other.
 * Mode "paused" spawns the tuned snapshot's children under the idle pause (stopped after PAUSE_S,
 * default 10 s without a call; SETTLE_S must exceed it) and skips the in-guest counters, which
 * would wake the probed child; its first eval after the windows is the wake-up's cost.
 * Env: NS (child counts, largest first, default "100,20": children are killed down to each count),
 *      WINDOW_S (60), WINDOWS (3), SETTLE_S (15), BENCH_TAG (idle-python), TRACE (1),
 *      BATCH (10: children spawned per request; 100 at once on a loaded 2-core TCG host miss the
 *      agent's 60 s restore deadline, so do 10 at load 16-19: each gets 300 s here, since only
 *      idle children are measured, not the spawn).
 */
import os from 'node:os';
import { loadAverage } from './host.js';
import { promises as fs } from 'node:fs';
import { Engine, summarize, type Sandbox } from '@forkd/engine';
import { agentOf } from '@forkd/engine/testing';
import { speedProbeMs } from './speed-probe.js';
import { diffCounters, parseProcCounters, readThreads, type ThreadSample } from './idle/proc-stats.js';

const NS = (process.env.NS ?? '100,20').split(',').map(Number).sort((a, b) => b - a);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const WINDOWS = Number(process.env.WINDOWS ?? 3);
const SETTLE_S = Number(process.env.SETTLE_S ?? 15);
const TAG = process.env.BENCH_TAG ?? 'idle-python';
type Mode = 'old' | 'new' | 'paused';
const MODES = (process.env.MODES ?? 'old,new,paused').split(',') as Mode[];
/** Mode "paused": the tuned snapshot's children under the idle pause (the daemon's --pause-idle), after PAUSE_S. */
const PAUSE_S = Number(process.env.PAUSE_S ?? 10);
const TRACE = process.env.TRACE !== '0';
const BATCH = Number(process.env.BATCH ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f2 = (s: { min: number; median: number; max: number }) => `${s.min.toFixed(2)} / ${s.median.toFixed(2)} / ${s.max.toFixed(2)}`;
const load = loadAverage;

async function guestSh(sb: Sandbox, shell: string): Promise<string> {
  const r = await agentOf(sb).exec({ shell, timeout_ms: 30_000 });
  if (r.exit_code !== 0) throw new Error(`guest command failed (${r.exit_code}): ${shell}\n${r.stderr}`);
  return r.stdout;
}

const GUEST_COUNTERS = 'cat /proc/interrupts; echo ==; cat /proc/softirqs';
const TRACEFS = '/sys/kernel/tracing';
const TRACE_EVENTS = ['timer/timer_expire_entry', 'timer/hrtimer_expire_entry', 'sched/sched_wakeup', 'irq_vectors/local_timer_entry', 'workqueue/workqueue_execute_start'];
const setEvents = (v: 0 | 1) => TRACE_EVENTS.map((e) => `echo ${v} > events/${e}/enable`).join(' && ');
const TRACE_ON = `mountpoint -q ${TRACEFS} || mount -t tracefs nodev ${TRACEFS}; cd ${TRACEFS} && echo 4096 > buffer_size_kb && echo > trace && ${setEvents(1)} && echo 1 > tracing_on`;
const TRACE_OFF = `cd ${TRACEFS} && echo 0 > tracing_on && ${setEvents(0)} && cat trace && echo > trace`;

/**
 * From an ftrace text dump, per second: expired timers by function (and the task they interrupted),
 * tasks woken (sched_wakeup, by name: who runs while the guest is idle), work items run (by
 * function: what the kworkers do), local timer interrupts.
 */
function timerProfile(trace: string, seconds: number): string[] {
  const counts = new Map<string, number>();
  const bump = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const line of trace.split('\n')) {
    const m = /^\s*(\S+)-\d+\s.*\b(timer_expire_entry|hrtimer_expire_entry):.*function=(\S+)/.exec(line);
    if (m) bump(`${m[3]} (${m[2] === 'hrtimer_expire_entry' ? 'hrtimer' : 'timer'}, in ${m[1]})`);
    const w = /\bsched_wakeup: comm=(\S+)/.exec(line);
    if (w) bump(`wake-up of task ${w[1]}`);
    if (/\blocal_timer_entry:/.test(line)) bump('local timer interrupt');
    const q = /\bworkqueue_execute_start:.*function (\S+)/.exec(line);
    if (q) bump(`work item ${q[1]}`);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, n]) => `${(n / seconds).toFixed(2)}/s  ${k}`);
}

interface Window {
  cpuMsPerChildS: number;
  byThread: Map<string, { cpuMs: number; vol: number; invol: number }>;
  guest: string[];
}

async function measureWindow(sbs: Sandbox[], probe: Sandbox | null, trace: boolean): Promise<Window> {
  const g0 = probe ? parseProcCounters(await guestSh(probe, GUEST_COUNTERS)) : new Map<string, number>();
  if (trace && probe) await guestSh(probe, TRACE_ON);
  const pids = sbs.map((s) => s.pid);
  const t0 = performance.now();
  const a = await readThreads(pids);
  await sleep(WINDOW_S * 1000);
  const b = await readThreads(pids);
  const secs = (performance.now() - t0) / 1000;
  const traceText = trace && probe ? await guestSh(probe, TRACE_OFF) : '';
  const g1 = probe ? parseProcCounters(await guestSh(probe, GUEST_COUNTERS)) : new Map<string, number>();
  const byThread = new Map<string, { cpuMs: number; vol: number; invol: number }>();
  let cpuMs = 0;
  const before = new Map<string, ThreadSample>(a.map((t) => [`${t.pid}/${t.tid}`, t]));
  for (const t of b) {
    const p = before.get(`${t.pid}/${t.tid}`);
    if (!p) continue;
    const d = { cpuMs: t.cpuMs - p.cpuMs, vol: t.vol - p.vol, invol: t.invol - p.invol };
    cpuMs += d.cpuMs;
    // QEMU's threads share its name: the main loop is the thread whose id is the process's.
    const kind = t.tid === t.pid ? 'main loop' : `other ${t.comm.replace(/\d+/g, 'N')}`;
    const acc = byThread.get(kind) ?? { cpuMs: 0, vol: 0, invol: 0 };
    byThread.set(kind, { cpuMs: acc.cpuMs + d.cpuMs, vol: acc.vol + d.vol, invol: acc.invol + d.invol });
  }
  const perChildS = (x: number) => x / sbs.length / secs;
  const threadLines = [...byThread].sort((x, y) => y[1].cpuMs - x[1].cpuMs)
    .map(([k, v]) => `    ${k.padEnd(18)} ${perChildS(v.cpuMs).toFixed(3)} ms CPU/s, ${perChildS(v.vol).toFixed(1)} wake-ups/s, ${perChildS(v.invol).toFixed(1)} preemptions/s per child`);
  const guestLines = diffCounters(g0, g1).filter(([, n]) => n > 0).map(([k, n]) => `    ${(n / secs).toFixed(2)}/s ${k}`);
  const traceLines = trace ? timerProfile(traceText, secs).map((l) => `    ${l}`) : [];
  return {
    cpuMsPerChildS: perChildS(cpuMs),
    byThread,
    guest: ['  per thread kind (all children):', ...threadLines, '  guest (one child) interrupts/softirqs:', ...guestLines, ...(trace ? ['  guest timers expired (one child, ftrace):', ...traceLines] : [])],
  };
}

const engine = new Engine();
const pausingEngine = new Engine({ idlePause: { afterMs: PAUSE_S * 1000 } });
const tagOf = (mode: Mode) => `${TAG}-${mode === 'old' ? 'old' : 'new'}`;
for (const mode of MODES) {
  try {
    await engine.getSnapshot(tagOf(mode));
  } catch {
    console.log(`creating snapshot ${tagOf(mode)} (recipe python, FORKD_IDLE_TUNING=${mode === 'old' ? 'off' : 'on'})`);
    process.env.FORKD_IDLE_TUNING = mode === 'old' ? 'off' : 'on';
    await engine.createSnapshot({ tag: tagOf(mode), recipe: 'python' });
    delete process.env.FORKD_IDLE_TUNING;
  }
}
console.log(`idle-probe: ${os.cpus().length} x ${os.cpus()[0]?.model}, ${(await engine.getSnapshot(tagOf(MODES[0]!))).manifest.accel}, windows ${WINDOWS} x ${WINDOW_S} s after ${SETTLE_S} s settle; speed probe ${speedProbeMs()} ms; load ${load()}`);
const summary: string[] = [];
for (const mode of MODES) {
  const cmdline = (await engine.getSnapshot(tagOf(mode))).manifest.kernel.cmdline;
  console.log(`\n== mode ${mode}: snapshot ${tagOf(mode)}, guest cmdline: ${cmdline}`);
  // The machine arguments depend on it too (pit=off), and children must repeat their snapshot's.
  process.env.FORKD_IDLE_TUNING = mode === 'old' ? 'off' : 'on';
  let sbs: Sandbox[] = [];
  try {
    const spawner = mode === 'paused' ? pausingEngine : engine;
    while (sbs.length < NS[0]!) sbs.push(...await spawner.spawn({ tag: tagOf(mode), n: Math.min(BATCH, NS[0]! - sbs.length), readyTimeoutMs: 300_000 }));
    console.log(`${mode}: ${sbs.length} children up; load ${load()}`);
    for (const n of NS) {
      const extra = sbs.slice(n);
      sbs = sbs.slice(0, n);
      await Promise.all(extra.map((s) => s.kill()));
      await sleep(SETTLE_S * 1000);
      const ws: Window[] = [];
      for (let w = 0; w < WINDOWS; w++) {
        ws.push(await measureWindow(sbs, mode === 'paused' ? null : sbs[0]!, TRACE && w === 0));
        if (mode === 'paused') console.log(`  stopped now: ${sbs.filter((s) => s.idlePause?.paused).length} of ${sbs.length}`);
        console.log(`${mode} N=${n} window ${w + 1}: ${ws.at(-1)!.cpuMsPerChildS.toFixed(3)} ms host CPU per child per second; load ${load()}`);
      }
      const s = summarize(ws.map((w) => w.cpuMsPerChildS));
      summary.push(`${mode} N=${n}: idle host CPU per child per second (ms) min/median/max ${f2(s)}; all ${n}: ${(s.median * n / 10).toFixed(1)} % of one core`);
      console.log(summary.at(-1));
      for (const line of ws[0]!.guest) console.log(line);
      // The agent still answers after the idle windows, and the guest clock is right.
      const t = performance.now();
      const r = await sbs[sbs.length - 1]!.eval('python', 'import time; time.time()', { timeoutMs: 30_000 });
      const guestS = Number(r.repr ?? NaN);
      console.log(`  first eval after ${WINDOWS * WINDOW_S} s idle: ${(performance.now() - t).toFixed(1)} ms; guest clock - host clock: ${((guestS * 1000 - Date.now())).toFixed(0)} ms`);
    }
  } finally {
    await Promise.all(sbs.map((s) => s.kill()));
  }
}
console.log(`\nsummary (speed probe ${speedProbeMs()} ms; load ${load()}):`);
for (const l of summary) console.log(`  ${l}`);
