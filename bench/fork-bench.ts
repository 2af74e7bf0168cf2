/**
 * Issue-2 benchmark: fork -n 20 --eval from the python snapshot, measured as users feel it.
 *   - spawn-to-ready of all 20 (agent answered after restore), per child and for the batch
 *   - per-child PSS while all 20 are alive and idle (/proc/<pid>/smaps_rollup)
 *   - eval round trip p50/p99 (host call -> guest python -> reply)
 *   - a cold boot of the same image to its first eval (import numpy included), side by side
 * Each figure is min/median/max over ROUNDS runs. Usage:
 *   npm run bench                       (ROUNDS=3 N=20 EVALS=30)
 *   ROUNDS=5 N=10 npm run bench
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, summarize, nowMs, since, type Sandbox } from '@forkd/engine';
import { speedProbeMs } from './speed-probe.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const N = Number(process.env.N ?? 20);
const EVALS = Number(process.env.EVALS ?? 30);
const TAG = process.env.BENCH_TAG ?? 'quickstart-python';
const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
const log = (s: string) => process.stderr.write(`${s}\n`);

async function pss(pid: number): Promise<{ pss: number; rss: number; privateDirty: number }> {
  const text = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { pss: kb('Pss') / 1024, rss: kb('Rss') / 1024, privateDirty: kb('Private_Dirty') / 1024 };
}

async function ensureSnapshot(): Promise<void> {
  try {
    await engine.getSnapshot(TAG);
  } catch {
    log(`creating snapshot ${TAG} (recipe python)`);
    await engine.createSnapshot({ tag: TAG, recipe: 'python', onProgress: (e) => log(`  [${e.phase}] ${e.message}`) });
  }
}

interface Round {
  allReadyMs: number;
  readyMs: number[];
  runningMs: number[];
  firstEvalMs: number[];
  pssMiB: number[];
  rssMiB: number[];
  privateDirtyMiB: number[];
  evalRtMs: number[];
  coldBootToEvalMs: number;
  /** One child alone: spawn -> ready, and spawn -> first numpy eval answered. */
  singleReadyMs: number;
  singleFirstEvalMs: number;
}

async function evalPy(sb: Sandbox, code: string): Promise<number> {
  const t = nowMs();
  const result = await sb.eval('python', code, { timeoutMs: 55_000 });
  const ms = since(t);
  if (!result.ok) throw new Error(`eval failed: ${JSON.stringify(result)}`);
  return ms;
}

async function single(): Promise<{ ready: number; firstEval: number }> {
  const t0 = nowMs();
  const [sb] = await engine.spawn({ tag: TAG, n: 1 });
  try {
    const ready = since(t0);
    await evalPy(sb!, 'float(np.arange(100).sum())');
    return { ready, firstEval: since(t0) };
  } finally {
    await sb!.kill();
  }
}

async function round(i: number): Promise<Round> {
  log(`round ${i + 1}/${ROUNDS}: one child alone`);
  const one = await single();
  log(`round ${i + 1}/${ROUNDS}: spawning ${N}`);
  const t0 = nowMs();
  const sbs = await engine.spawn({ tag: TAG, n: N });
  const allReadyMs = since(t0);
  try {
    const firstEvalMs = await Promise.all(sbs.map((sb) => evalPy(sb, 'float(np.arange(100).sum())')));
    await new Promise((r) => setTimeout(r, 3000)); // idle: let every child settle
    const mem = await Promise.all(sbs.map((sb) => pss(sb.pid)));
    const evalRtMs: number[] = [];
    for (const sb of sbs.slice(0, Math.min(5, sbs.length))) {
      for (let k = 0; k < EVALS; k++) evalRtMs.push(await evalPy(sb, '1 + 1'));
    }
    const cold = await coldBoot();
    return {
      allReadyMs,
      readyMs: sbs.map((s) => s.timings.spawn_to_ready_ms),
      runningMs: sbs.map((s) => s.timings.spawn_to_running_ms),
      firstEvalMs,
      pssMiB: mem.map((m) => m.pss),
      rssMiB: mem.map((m) => m.rss),
      privateDirtyMiB: mem.map((m) => m.privateDirty),
      evalRtMs,
      coldBootToEvalMs: cold,
      singleReadyMs: one.ready,
      singleFirstEvalMs: one.firstEval,
    };
  } finally {
    await Promise.all(sbs.map((s) => s.kill()));
  }
}

/** A cold boot of the same image to its first numpy eval: what fork-from-warm removes. */
async function coldBoot(): Promise<number> {
  log('  cold boot of the same image to first eval');
  const recipe = await engine.recipe('python');
  const t0 = nowMs();
  const vm = await engine.bootCold(recipe);
  try {
    const result = await vm.eval('python', 'import numpy as np\nfloat(np.arange(100).sum())', { timeoutMs: 120_000 });
    if (!result.ok) throw new Error(`cold eval failed ${JSON.stringify(result)}`);
    return since(t0);
  } finally {
    await vm.kill();
  }
}

const fmt = (s: { min: number; median: number; max: number }, unit = 'ms', d = 0) => `${s.min.toFixed(d)} / ${s.median.toFixed(d)} / ${s.max.toFixed(d)} ${unit}`;

await ensureSnapshot();
const env = await engine.platform.resolve();
const speedBefore = speedProbeMs();
const rounds: Round[] = [];
for (let i = 0; i < ROUNDS; i++) rounds.push(await round(i));

const speedAfter = speedProbeMs();
const per = (f: (r: Round) => number) => summarize(rounds.map(f));
const allReady = per((r) => r.allReadyMs);
const cold = per((r) => r.coldBootToEvalMs);
const pssMed = per((r) => summarize(r.pssMiB).median);
const pssMax = per((r) => summarize(r.pssMiB).max);
const pd = per((r) => summarize(r.privateDirtyMiB).median);
const p50 = per((r) => summarize(r.evalRtMs).median);
const p99 = per((r) => summarize(r.evalRtMs).p99);
const readyMed = per((r) => summarize(r.readyMs).median);
const firstEval = per((r) => summarize(r.firstEvalMs).median);
const singleReady = per((r) => r.singleReadyMs);
const singleEval = per((r) => r.singleFirstEvalMs);
const singleSpeedup = summarize(rounds.map((r) => r.coldBootToEvalMs / r.singleFirstEvalMs));
const batchSpeedup = summarize(rounds.map((r) => r.coldBootToEvalMs / r.allReadyMs));
const cpu = os.cpus()[0]?.model ?? 'unknown';
const lines = [
  `machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; accel ${env.accel}; QEMU ${env.qemuVersion}; kernel ${env.kernel.version}`,
  `command: ROUNDS=${ROUNDS} N=${N} EVALS=${EVALS} npm run bench   (snapshot ${TAG}); figures are min / median / max over ${ROUNDS} rounds`,
  `machine speed probe (fixed host work; lower is faster): ${speedBefore} ms before, ${speedAfter} ms after`,
  '',
  '| figure | min / median / max | target |',
  '|---|---|---|',
  `| all ${N} ready (spawn → last agent answer) | ${fmt(allReady)} | ≤ 3000 ms |`,
  `| per-child spawn → ready (median of the batch) | ${fmt(readyMed)} | |`,
  `| first eval in a child (numpy, median of the batch) | ${fmt(firstEval)} | |`,
  `| cold boot of the same image → first eval | ${fmt(cold)} | |`,
  `| one child alone: spawn → ready | ${fmt(singleReady)} | |`,
  `| one child alone: spawn → first numpy eval answered | ${fmt(singleEval)} | |`,
  `| speed-up to first eval: cold boot vs one forked child | ${fmt(singleSpeedup, 'x', 1)} | ≥ 20x |`,
  `| cold boot of one VM vs all ${N} forked children ready | ${fmt(batchSpeedup, 'x', 1)} | |`,
  `| PSS per idle child, median of ${N} alive | ${fmt(pssMed, 'MiB', 1)} | ≤ 40 MiB |`,
  `| PSS per idle child, max of ${N} alive | ${fmt(pssMax, 'MiB', 1)} | |`,
  `| Private_Dirty per idle child, median | ${fmt(pd, 'MiB', 1)} | |`,
  `| eval round trip p50 (\`1 + 1\`, ${EVALS}× on 5 children) | ${fmt(p50, 'ms', 1)} | ≤ 10 ms |`,
  `| eval round trip p99 | ${fmt(p99, 'ms', 1)} | |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
await fs.mkdir(outDir, { recursive: true });
await fs.writeFile(path.join(outDir, `fork-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu, cores: os.cpus().length, accel: env.accel, qemu: env.qemuVersion, speedProbeMs: [speedBefore, speedAfter] }, ROUNDS, N, EVALS, rounds }, null, 2));
