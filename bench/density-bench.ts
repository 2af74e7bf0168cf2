/**
 * Issue-11 density benchmark, through the daemon's REST API (a separate process on a Unix socket):
 *   1. one child alone: eval (`1 + 1`) round trip p50 — the same run's single-child baseline;
 *   2. N (100) children spawned in one request on an otherwise empty machine: all ready (201),
 *      all answered (first eval in every one, from the spawn request), PSS per child after it;
 *   3. 10 active children (each: eval, 100 ms pause, repeat) on an otherwise empty machine: eval p50;
 *   4. the ramp: idle children (spawned, never called) added in steps; after each step their idle CPU
 *      per child (host CPU of their QEMUs over a window), PSS per child by mapping class, then the
 *      active children's eval p50 again. The ramp stops at the first step whose p50 is more than 2x
 *      the empty machine's, when the daemon refuses a spawn (the refusal's code and message say which
 *      limit), or at MAX. The density figure is the last step that kept the 2x.
 * Everything is repeated ROUNDS times (min / median / max). The daemon runs with --max-sandboxes
 * MAX+20 so its default cap (256) is not what stops the ramp; a refusal is then host memory.
 *   npm run bench:density            ROUNDS=2 STEP=50 MAX=600 N100=100
 *   npm run bench:density -- --quick (1 round, steps of 10 up to 30, N100=20)
 * PAUSE_IDLE (default 30s; "off"): the daemon's --pause-idle, so idle children are stopped once
 * idle that long; each step is measured once they are (at most 3 minutes after its spawn) and
 * reports how many are.
 * Ctrl-C / SIGTERM end the daemon, which ends every VM it started (--on-stop end).
 */
import { promises as fs } from 'node:fs';
import { cpuModel, loadAverage, hostLine } from './host.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarize, nowMs, since } from '@forkd/engine';
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { breakdowns, summarizeMem, totalCpuMs, memAvailableMib, ksmPages, type MemSummary } from './density/probe.js';
import { speedProbeMs } from './speed-probe.js';

const quick = process.argv.includes('--quick');
const num = (k: string, dflt: number, q: number) => Number(process.env[k] ?? (quick ? q : dflt));
const ROUNDS = num('ROUNDS', 2, 1);
const STEP = num('STEP', 50, 10);
const MAX = num('MAX', 600, 30);
const N100 = num('N100', 100, 20);
const ACTIVE = num('ACTIVE', 10, 4);
const ACTIVE_EVALS = num('ACTIVE_EVALS', 15, 8);
const SINGLE_EVALS = num('SINGLE_EVALS', 30, 15);
const SETTLE_MS = num('SETTLE_MS', 5000, 3000);
const CPU_WINDOW_MS = num('CPU_WINDOW_MS', 10_000, 5000);
/** The daemon's --pause-idle for this run ("off": idle children keep running). */
const PAUSE_IDLE = process.env.PAUSE_IDLE ?? '30s';
const SPAWN_BATCH = 100; // under the daemon's --max-spawn-in-flight (128)
const log = (s: string) => process.stderr.write(`${s}\n`);
const load = loadAverage;

let d: TestDaemon | null = null;
let stopping = false;
async function stopDaemon(): Promise<void> {
  if (stopping || !d) return;
  stopping = true;
  await d.stop().catch(() => undefined);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the daemon (it ends every VM)`);
    void stopDaemon().finally(() => process.exit(130));
  });
}

d = await startTestDaemon({ keeperGraceSecs: 5, extraArgs: ['--max-sandboxes', String(MAX + 20), '--pause-idle', PAUSE_IDLE] });
const c = new Controller({ socketPath: d.socketPath });
type Sb = { id: string; pid: number };

async function spawn(n: number): Promise<Sb[]> {
  const out: Sb[] = [];
  for (let left = n; left > 0; left -= SPAWN_BATCH) {
    const list = await c.spawnSandboxes({ snapshot_tag: d!.tag, n: Math.min(SPAWN_BATCH, left) });
    out.push(...list.map((s) => ({ id: s.id, pid: s.pid ?? -1 })));
  }
  return out;
}

async function killAll(sbs: Sb[]): Promise<void> {
  for (let i = 0; i < sbs.length; i += 50) await Promise.all(sbs.slice(i, i + 50).map((s) => c.killSandbox(s.id).catch(() => undefined)));
}

async function evalMs(id: string): Promise<number> {
  const t = nowMs();
  const r = await c.eval(id, { code: '1 + 1' });
  if (r.result !== '2') throw new Error(`eval 1 + 1 in ${id} answered ${JSON.stringify(r)}`);
  return since(t);
}

/** Each active child: eval, 100 ms pause, repeat. p50 over all calls. */
async function activeP50(active: Sb[]): Promise<{ p50: number; p99: number }> {
  const all: number[] = [];
  await Promise.all(active.map(async (s, i) => {
    await new Promise((r) => setTimeout(r, i * 10)); // not all in lock step
    for (let k = 0; k < ACTIVE_EVALS; k++) {
      all.push(await evalMs(s.id));
      await new Promise((r) => setTimeout(r, 100));
    }
  }));
  const s = summarize(all);
  return { p50: s.median, p99: s.p99 };
}

/** How many of these sandboxes have their guest stopped by the idle pause now. */
async function pausedCount(sbs: Sb[]): Promise<number> {
  const ids = new Set(sbs.map((s) => s.id));
  return (await c.listSandboxes()).filter((s) => ids.has(s.id) && s.idle?.paused).length;
}

/** With the idle pause on, a step is measured once its idle children are stopped (or 3 minutes passed). */
async function untilStopped(sbs: Sb[]): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline && (await pausedCount(sbs)) < sbs.length) await new Promise((res) => setTimeout(res, 2000));
}

interface Step { paused: number; idle: number; activeP50Ms: number; activeP99Ms: number; ratio: number; idleCpuMsPerChildPerS: number; mem: MemSummary; memAvailableMib: number; load: string }
interface Round {
  singleP50Ms: number;
  n100: { n: number; allReadyMs: number; allAnsweredMs: number; memAfterEval: MemSummary; error: string | null };
  emptyActiveP50Ms: number;
  steps: Step[];
  stoppedBy: string;
  maxIdleWithin2x: number;
}

async function round(r: number): Promise<Round> {
  log(`round ${r + 1}/${ROUNDS} (load ${load()})`);
  // 1. one child alone
  const [one] = await spawn(1);
  for (let k = 0; k < 3; k++) await evalMs(one!.id);
  const single: number[] = [];
  for (let k = 0; k < SINGLE_EVALS; k++) single.push(await evalMs(one!.id));
  await killAll([one!]);
  const singleP50Ms = summarize(single).median;
  log(`  single child eval p50 ${singleP50Ms.toFixed(1)} ms`);

  // 2. N children in one request, then a first eval in each
  // A batch that fails (on an overloaded machine children miss the restore's deadlines) is a
  // result, not the end of the run: recorded as NaN with its error.
  let allReadyMs = NaN;
  let allAnsweredMs = NaN;
  let memAfterEval = summarizeMem([]);
  let n100Error: string | null = null;
  const t0 = nowMs();
  try {
    const many = await spawn(N100);
    allReadyMs = since(t0);
    try {
      await Promise.all(many.map((s) => evalMs(s.id)));
      allAnsweredMs = since(t0);
      await new Promise((res) => setTimeout(res, SETTLE_MS));
      memAfterEval = summarizeMem(await breakdowns(many.map((s) => s.pid)));
    } finally {
      await killAll(many);
    }
  } catch (e) {
    n100Error = `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`;
  }
  log(`  N=${N100}: all ready ${allReadyMs.toFixed(0)} ms, all answered ${allAnsweredMs.toFixed(0)} ms; PSS/child after one eval ${memAfterEval.pssMib.toFixed(1)} MiB${n100Error ? `; failed: ${n100Error}` : ''}`);

  // 3. active children on an empty machine
  const active = await spawn(ACTIVE);
  for (const s of active) await evalMs(s.id);
  await new Promise((res) => setTimeout(res, 2000));
  const empty = await activeP50(active);
  log(`  ${ACTIVE} active, empty machine: eval p50 ${empty.p50.toFixed(1)} ms p99 ${empty.p99.toFixed(1)} ms`);

  // 4. the ramp
  const idle: Sb[] = [];
  const steps: Step[] = [];
  let stoppedBy = `MAX=${MAX} reached`;
  try {
    while (idle.length < MAX) {
      try {
        idle.push(...(await spawn(Math.min(STEP, MAX - idle.length))));
      } catch (e) {
        const err = e as { code?: string; message?: string };
        stoppedBy = `spawn refused or failed at ${idle.length} idle: ${err.code ?? ''} ${err.message ?? String(e)}`;
        break;
      }
      await new Promise((res) => setTimeout(res, SETTLE_MS));
      if (PAUSE_IDLE !== 'off') await untilStopped(idle);
      const pids = idle.map((s) => s.pid);
      const c0 = await totalCpuMs(pids);
      const w0 = nowMs();
      await new Promise((res) => setTimeout(res, CPU_WINDOW_MS));
      const idleCpuMsPerChildPerS = (await totalCpuMs(pids) - c0) / idle.length / (since(w0) / 1000);
      const mem = summarizeMem(await breakdowns(pids));
      const paused = await pausedCount(idle);
      const a = await activeP50(active);
      const step: Step = { paused, idle: idle.length, activeP50Ms: a.p50, activeP99Ms: a.p99, ratio: a.p50 / empty.p50, idleCpuMsPerChildPerS, mem, memAvailableMib: await memAvailableMib(), load: load() };
      steps.push(step);
      log(`  ${idle.length} idle (${paused} stopped by the idle pause): active p50 ${a.p50.toFixed(1)} ms (${step.ratio.toFixed(2)}x), idle CPU ${idleCpuMsPerChildPerS.toFixed(2)} ms/s per child, PSS/child ${mem.pssMib.toFixed(1)} MiB (sum ${(mem.sumPssMib / 1024).toFixed(2)} GiB), MemAvailable ${(step.memAvailableMib / 1024).toFixed(1)} GiB, load ${step.load}`);
      if (step.ratio > 2) {
        stoppedBy = `active eval p50 ${step.ratio.toFixed(2)}x the empty machine's at ${idle.length} idle`;
        break;
      }
    }
  } finally {
    await killAll([...idle, ...active]);
  }
  const kept = steps.filter((s) => s.ratio <= 2);
  const maxIdleWithin2x = steps.findIndex((s) => s.ratio > 2) === 0 ? 0 : (kept.length ? kept[kept.length - 1]!.idle : 0);
  log(`  stopped: ${stoppedBy}; density ${maxIdleWithin2x}`);
  return { singleP50Ms, n100: { n: N100, allReadyMs, allAnsweredMs, memAfterEval, error: n100Error }, emptyActiveP50Ms: empty.p50, steps, stoppedBy, maxIdleWithin2x };
}

const speedBefore = speedProbeMs();
const rounds: Round[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(r));
} finally {
  await stopDaemon();
}
const speedAfter = speedProbeMs();

const mmm = (v: number[], digits = 1) => {
  const s = summarize(v.filter(Number.isFinite)); // a failed phase is NaN: left out, its error is in the JSON
  return `${s.min.toFixed(digits)} / ${s.median.toFixed(digits)} / ${s.max.toFixed(digits)}`;
};
/** A step's figure at a given idle count, across rounds (rounds that reached it). */
const at = (n: number, f: (s: Step) => number) => rounds.map((r) => r.steps.find((s) => s.idle === n)).filter((s): s is Step => !!s).map(f);
const lastKept = (r: Round) => r.steps.filter((s) => s.ratio <= 2).at(-1);
const lines = [
  `command: npm run bench:density${quick ? ' -- --quick' : ''} (ROUNDS=${ROUNDS} STEP=${STEP} MAX=${MAX} N100=${N100} ACTIVE=${ACTIVE} PAUSE_IDLE=${PAUSE_IDLE})`,
  `machine: ${hostLine()}; TCG (no usable KVM here); FORKD_TCG_TB_SIZE=${process.env.FORKD_TCG_TB_SIZE ?? '(default)'}; KSM ${JSON.stringify(await ksmPages())}`,
  `speed probe ${speedBefore} ms before, ${speedAfter} ms after; load average at the end ${load()}`,
  '',
  '| figure (min / median / max over rounds) | value |',
  '|---|---|',
  `| single child: eval p50 | ${mmm(rounds.map((r) => r.singleP50Ms))} ms |`,
  `| ${ACTIVE} active, empty machine: eval p50 | ${mmm(rounds.map((r) => r.emptyActiveP50Ms))} ms |`,
  `| idle children held within 2x (stopped by) | ${mmm(rounds.map((r) => r.maxIdleWithin2x), 0)} (${rounds.map((r) => r.stoppedBy).join('; ')}) |`,
  `| N=${N100}: all ready | ${mmm(rounds.map((r) => r.n100.allReadyMs), 0)} ms |`,
  `| N=${N100}: all answered (first eval in each, from the request) | ${mmm(rounds.map((r) => r.n100.allAnsweredMs), 0)} ms |`,
  `| N=${N100} after one eval each: PSS per child, median (KVM-equivalent: minus the TCG buffer) | ${mmm(rounds.map((r) => r.n100.memAfterEval.pssMib))} (${mmm(rounds.map((r) => r.n100.memAfterEval.kvmEquivalentPssMib))}) MiB |`,
];
for (const n of [20, 100]) {
  if (at(n, (s) => s.mem.pssMib).length) lines.push(`| ${n} idle: PSS per child (KVM-equivalent) | ${mmm(at(n, (s) => s.mem.pssMib))} (${mmm(at(n, (s) => s.mem.kvmEquivalentPssMib))}) MiB |`, `| ${n} idle: idle CPU per child | ${mmm(at(n, (s) => s.idleCpuMsPerChildPerS), 2)} ms/s |`);
}
const tops = rounds.map(lastKept).filter((s): s is Step => !!s);
if (tops.length) lines.push(`| at the density figure: PSS per child (KVM-equivalent) | ${mmm(tops.map((s) => s.mem.pssMib))} (${mmm(tops.map((s) => s.mem.kvmEquivalentPssMib))}) MiB |`, `| at the density figure: idle CPU per child | ${mmm(tops.map((s) => s.idleCpuMsPerChildPerS), 2)} ms/s |`);
lines.push('', 'Per step (round 1): idle | active p50 (ratio) | idle CPU ms/s/child | PSS/child | by class (median MiB): guestShared guestCow tcgBuffer heap anon libs other | MemAvailable | load');
for (const s of rounds[0]?.steps ?? []) {
  const b = s.mem.byClassMib;
  lines.push(`  ${s.idle} | ${s.activeP50Ms.toFixed(1)} ms (${s.ratio.toFixed(2)}x) | ${s.idleCpuMsPerChildPerS.toFixed(2)} | ${s.mem.pssMib.toFixed(1)} | ${[b.guestShared, b.guestCow, b.tcgBuffer, b.heap, b.anon, b.libs, b.other].map((x) => x.toFixed(1)).join(' ')} | ${(s.memAvailableMib / 1024).toFixed(1)} GiB | ${s.load}`);
}
const nb = rounds[0]?.n100;
if (nb) {
  {
    const b = nb.memAfterEval.byClassMib;
    lines.push(`N=${N100} after one eval (round 1), by class: guestShared ${b.guestShared.toFixed(1)} guestCow ${b.guestCow.toFixed(1)} tcgBuffer ${b.tcgBuffer.toFixed(1)} heap ${b.heap.toFixed(1)} anon ${b.anon.toFixed(1)} libs ${b.libs.toFixed(1)} other ${b.other.toFixed(1)} MiB`);
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
await fs.mkdir(outDir, { recursive: true });
await fs.writeFile(path.join(outDir, `density-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu: cpuModel(), speedProbeMs: [speedBefore, speedAfter], tb: process.env.FORKD_TCG_TB_SIZE ?? null, quick }, ROUNDS, STEP, MAX, N100, ACTIVE, rounds }, null, 2));
