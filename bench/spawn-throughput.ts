/**
 * Issue-11 §2 benchmark: N children through REST, with and without a warm pool, alternated in one run.
 *   - all ready: the spawn request until its 201 (every child's agent answered after restore)
 *   - all first eval: the same request start until a first eval (`1 + 1`) answered in every child
 *     (sent to each child as soon as the 201 arrives)
 *   - host CPU per child at ready (utime + stime of its QEMU; for a pooled child, split into what it
 *     used while pooled and what the spawn added)
 *   - the pool's refill time after each round
 * Two daemons on the same snapshot: one with `--warm-pool TAG=N`, one without. While the no-pool one
 * runs, the other's full pool sits paused (it fills only when no spawn runs).
 * Usage: npm run bench:spawn   (ROUNDS=3 N=100)
 */
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { cpuModel, hostLine } from './host.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, summarize, nowMs, since } from '@forkd/engine';
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { speedProbeMs } from './speed-probe.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const N = Number(process.env.N ?? 100);
const log = (s: string) => process.stderr.write(`${s}\n`);
const TICK_MS = 1000 / 100; // USER_HZ

const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
const env = await engine.platform.resolve();

/** CPU ms (user + system) a process has used, or null if gone. */
function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return null;
  }
}

/** Pooled QEMUs of this home: paused (-S) children waiting, with the CPU each has used so far. */
function pooledCpu(): Map<number, number> {
  const out = new Map<number, number>();
  const home = engine.layout.root;
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('qemu-system') || !argv.includes('-S') || !argv.some((a) => a.includes(`mem-path=${home}`))) continue;
    const c = cpuMs(Number(p));
    if (c !== null) out.set(Number(p), c);
  }
  return out;
}

async function poolReady(c: Controller, tag: string): Promise<number> {
  const text = await c.metrics();
  const m = new RegExp(`^forkd_warm_pool_ready\\{tag="${tag}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function waitPool(c: Controller, tag: string, n: number): Promise<number> {
  const t = nowMs();
  while ((await poolReady(c, tag)) < n) {
    if (since(t) > 20 * 60_000) throw new Error(`the pool did not reach ${n} in 20 min`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return since(t);
}

interface Sample {
  pool: boolean;
  readyMs: number;
  firstEvalMs: number;
  /** Per child: ms from request to its own ready (the daemon's spawn_to_ready). */
  childReadyMs: number[];
  /** Per child: request → guest running (`cont` returned): the host's share; the rest is the guest's resume + agent. */
  childRunningMs: number[];
  /** Per child: QEMU CPU ms at ready; for pooled children the part used while pooled. */
  cpuAtReadyMs: number[];
  cpuPooledMs: number[];
  fromPool: number;
  refillMs: number | null;
  load: number[];
}

async function measure(d: TestDaemon, pool: boolean): Promise<Sample> {
  const c = new Controller({ socketPath: d.socketPath });
  const before = pool ? pooledCpu() : new Map<number, number>();
  const load = os.loadavg();
  const t = nowMs();
  const list = await c.spawnSandboxes({ snapshot_tag: d.tag, n: N });
  const readyMs = since(t);
  const cpuAtReadyMs = list.map((s) => cpuMs(s.pid!) ?? NaN);
  await Promise.all(list.map(async (s) => {
    const r = await c.eval(s.id, { code: '1 + 1' });
    if (r.result !== '2') throw new Error(`eval in ${s.id}: ${JSON.stringify(r)}`);
  }));
  const firstEvalMs = since(t);
  const childReadyMs = list.map((s) => s.ready?.spawn_to_ready_ms ?? NaN);
  const childRunningMs = list.map((s) => s.ready?.spawn_to_running_ms ?? NaN);
  const cpuPooledMs = list.flatMap((s) => (before.has(s.pid!) ? [before.get(s.pid!)!] : []));
  await Promise.all(list.map((s) => c.killSandbox(s.id)));
  const refillMs = pool ? await waitPool(c, d.tag, N) : null;
  return { pool, readyMs, firstEvalMs, childReadyMs, childRunningMs, cpuAtReadyMs, cpuPooledMs, fromPool: cpuPooledMs.length, refillMs, load };
}

const speedBefore = speedProbeMs();
const plain = await startTestDaemon({ keeperGraceSecs: 5, extraArgs: ['--max-sandboxes', String(N * 2 + 8)] });
const pooled = await startTestDaemon({ keeperGraceSecs: 5, extraArgs: ['--warm-pool', `${plain.tag}=${N}`, '--max-sandboxes', String(N * 2 + 8)] });
const samples: Sample[] = [];
try {
  log(`filling the pool to ${N}`);
  const firstFill = await waitPool(new Controller({ socketPath: pooled.socketPath }), pooled.tag, N);
  log(`  pool full after ${(firstFill / 1000).toFixed(1)} s`);
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which goes first, so neither always meets a fresher host.
    for (const usePool of i % 2 === 0 ? [false, true] : [true, false]) {
      log(`round ${i + 1}/${ROUNDS}: ${N} children ${usePool ? 'from the pool' : 'without a pool'} (load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
      const s = await measure(usePool ? pooled : plain, usePool);
      log(`  all ready ${(s.readyMs / 1000).toFixed(2)} s, all first eval ${(s.firstEvalMs / 1000).toFixed(2)} s, ${s.fromPool} from the pool${s.refillMs !== null ? `, refilled in ${(s.refillMs / 1000).toFixed(1)} s` : ''}`);
      samples.push(s);
    }
  }
} finally {
  await pooled.stop();
  await plain.stop();
}
const speedAfter = speedProbeMs();

const of = (pool: boolean) => samples.filter((s) => s.pool === pool);
const fmt = (xs: number[], unit = 's', div = 1000, dgt = 2) => {
  const s = summarize(xs);
  return `${(s.min / div).toFixed(dgt)} / ${(s.median / div).toFixed(dgt)} / ${(s.max / div).toFixed(dgt)} ${unit}`;
};
const lines = [
  `machine: ${hostLine()}; accel ${env.accel}; QEMU ${env.qemuVersion}`,
  `command: ROUNDS=${ROUNDS} N=${N} npm run bench:spawn   (snapshot ${plain.tag}; two daemons, one with --warm-pool ${plain.tag}=${N}); min / median / max over ${ROUNDS} rounds, alternated`,
  `machine speed probe (fixed host work; lower is faster): ${speedBefore} ms before, ${speedAfter} ms after; load average at each spawn: ${samples.map((s) => s.load[0]!.toFixed(1)).join(', ')}`,
  '',
  '| figure | no pool | warm pool | pool / no pool (medians) | target |',
  '|---|---|---|---|---|',
  `| ${N} children: request → all ready | ${fmt(of(false).map((s) => s.readyMs))} | ${fmt(of(true).map((s) => s.readyMs))} | ${(summarize(of(true).map((s) => s.readyMs)).median / summarize(of(false).map((s) => s.readyMs)).median).toFixed(2)}x | ≤ 8 s |`,
  `| ${N} children: request → first eval answered in all | ${fmt(of(false).map((s) => s.firstEvalMs))} | ${fmt(of(true).map((s) => s.firstEvalMs))} | ${(summarize(of(true).map((s) => s.firstEvalMs)).median / summarize(of(false).map((s) => s.firstEvalMs)).median).toFixed(2)}x | ≤ 12 s |`,
  `| per child: request → its ready, median of children (per round) | ${fmt(of(false).map((s) => summarize(s.childReadyMs).median))} | ${fmt(of(true).map((s) => summarize(s.childReadyMs).median))} | | |`,
  `| per child: request → guest running (cont), median (per round) | ${fmt(of(false).map((s) => summarize(s.childRunningMs).median))} | ${fmt(of(true).map((s) => summarize(s.childRunningMs).median))} | | |`,
  `| QEMU CPU per child at ready, median (per round) | ${fmt(of(false).map((s) => summarize(s.cpuAtReadyMs).median), 'ms', 1, 0)} | ${fmt(of(true).map((s) => summarize(s.cpuAtReadyMs).median), 'ms', 1, 0)} | | |`,
  `| … of which used while pooled (before the request) | | ${fmt(of(true).map((s) => (s.cpuPooledMs.length ? summarize(s.cpuPooledMs).median : NaN)), 'ms', 1, 0)} | | |`,
  `| children taken from the pool | | ${of(true).map((s) => s.fromPool).join(', ')} of ${N} | | |`,
  `| pool refill to ${N} after the round | | ${fmt(of(true).map((s) => s.refillMs!))} | | |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
await fs.mkdir(outDir, { recursive: true });
await fs.writeFile(path.join(outDir, `spawn-throughput-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu: cpuModel(), accel: env.accel, qemu: env.qemuVersion, speedProbeMs: [speedBefore, speedAfter] }, ROUNDS, N, samples }, null, 2));
