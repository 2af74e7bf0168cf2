/**
 * Quick profile of the restore path (no cold boot, one batch per round): per-child QEMU CPU time
 * at ready (what 20 children compete for on 2 cores), host-side phases, idle PSS after a first
 * numpy eval, ping/eval round trips, and a second (warm-cache) restore for comparison. Under TCG
 * also the number of translated blocks (QEMU 'info jit') at ready: the restore's code footprint.
 *   flock /tmp/forkd-vm.lock node --conditions=source --import tsx bench/restore-probe.ts
 * Env: N (children, default 20), ROUNDS (1), EVALS (30), BENCH_TAG (quickstart-python),
 *      FORKD_TCG_TB_SIZE is honoured by spawn.
 */
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import { Engine, summarize, nowMs, since, type Sandbox } from '@forkd/engine';
import { agentOf, vmOf } from '@forkd/engine/testing';

const N = Number(process.env.N ?? 20);
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const EVALS = Number(process.env.EVALS ?? 30);
const TAG = process.env.BENCH_TAG ?? 'quickstart-python';
const engine = new Engine();
const TICK_MS = 10; // USER_HZ = 100 on Linux

async function cpuMs(pid: number): Promise<number> {
  const f = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime + stime
}

/** Machine-wide CPU time (ms, all cores) from /proc/stat: busy and total. */
async function systemCpu(): Promise<{ busy: number; total: number }> {
  const f = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) * TICK_MS;
  return { busy: total - (f[3]! + f[4]!) * TICK_MS, total };
}

async function mem(pid: number): Promise<{ pss: number; pd: number }> {
  const t = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)![1]) / 1024;
  return { pss: kb('Pss'), pd: kb('Private_Dirty') };
}

/** Largest private-dirty mappings of one process (the TCG buffer is the big anonymous one). */
async function topMappings(pid: number): Promise<string[]> {
  const smaps = await fs.readFile(`/proc/${pid}/smaps`, 'utf8');
  return smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
    .map((b) => ({ name: b.split('\n')[0]!.split(/\s+/).slice(5).join(' ') || '[anon]', size: Number(/^Size:\s+(\d+)/m.exec(b)?.[1] ?? 0) / 1024, pd: Number(/Private_Dirty:\s+(\d+)/.exec(b)?.[1] ?? 0) / 1024 }))
    .sort((a, b) => b.pd - a.pd).slice(0, 5)
    .map((r) => `${r.pd.toFixed(1)} MiB dirty of ${r.size.toFixed(0)} MiB ${r.name}`);
}

async function rt(sb: Sandbox, method: 'ping' | 'eval', n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nowMs();
    if (method === 'ping') await sb.ping({ timeoutMs: 30_000 });
    else await sb.eval('python', '1 + 1', { timeoutMs: 25_000 });
    out.push(since(t));
  }
  return out;
}

try {
  await engine.getSnapshot(TAG);
} catch {
  console.log(`creating snapshot ${TAG} (recipe python)`);
  await engine.createSnapshot({ tag: TAG, recipe: 'python' });
}

const f1 = (s: { min: number; median: number; max: number }) => `${s.min.toFixed(1)} / ${s.median.toFixed(1)} / ${s.max.toFixed(1)}`;

for (let r = 0; r < ROUNDS; r++) {
  const host0 = process.cpuUsage();
  const sys0 = await systemCpu();
  const t0 = nowMs();
  const sbs = await engine.spawn({ tag: TAG, n: N });
  const all = since(t0);
  const host = process.cpuUsage(host0);
  const sys1 = await systemCpu();
  const cpu = await Promise.all(sbs.map((s) => cpuMs(s.pid)));
  // Translated blocks so far: under TCG, what a child's restore made QEMU translate (its CPU and memory).
  const tbs = await Promise.all(sbs.map(async (s) => Number(/TB count\s+(\d+)/.exec(String(await vmOf(s).qmp.execute('human-monitor-command', { 'command-line': 'info jit' })))?.[1] ?? NaN)));
  try {
    const ph = (k: 'launch_ms' | 'migrate_ms' | 'restore_ms') => f1(summarize(sbs.map((s) => s.timings.phases[k])));
    console.log(`round ${r + 1}: ${N} ready in ${all.toFixed(0)} ms; ready ${f1(summarize(sbs.map((s) => s.timings.spawn_to_ready_ms)))}; launch ${ph('launch_ms')}; migrate ${ph('migrate_ms')}; restore ${ph('restore_ms')}`);
    if (tbs.every((n) => !Number.isNaN(n))) console.log(`  TCG translated blocks at ready: ${f1(summarize(tbs))}`);
    console.log(`  QEMU CPU at ready (ms): ${f1(summarize(cpu))}; sum ${cpu.reduce((a, b) => a + b, 0)}; host node ${((host.user + host.system) / 1000).toFixed(0)} ms; machine busy ${(sys1.busy - sys0.busy)} of ${(sys1.total - sys0.total)} ms`);
    const cpu0 = await Promise.all(sbs.map((s) => cpuMs(s.pid)));
    await Promise.all(sbs.map((s) => s.eval('python', 'float(np.arange(100).sum())', { timeoutMs: 55_000 })));
    const cpu1 = await Promise.all(sbs.map((s) => cpuMs(s.pid)));
    console.log(`  first numpy eval CPU (ms): ${f1(summarize(cpu1.map((c, i) => c - cpu0[i]!)))}`);
    await new Promise((res) => setTimeout(res, 3000));
    const m = await Promise.all(sbs.map((s) => mem(s.pid)));
    console.log(`  idle PSS ${f1(summarize(m.map((x) => x.pss)))} MiB; Private_Dirty ${f1(summarize(m.map((x) => x.pd)))} MiB`);
    for (const line of await topMappings(sbs[0]!.pid)) console.log(`    ${line}`);
    const five = sbs.slice(0, 5);
    const pings: number[] = [];
    const evals: number[] = [];
    for (const sb of five) pings.push(...(await rt(sb, 'ping', EVALS)));
    for (const sb of five) evals.push(...(await rt(sb, 'eval', EVALS)));
    const p = summarize(pings);
    const e = summarize(evals);
    console.log(`  ping p50 ${p.median.toFixed(2)} p99 ${p.p99.toFixed(1)} ms; eval 1+1 p50 ${e.median.toFixed(2)} p99 ${e.p99.toFixed(1)} ms`);
    const m2 = await Promise.all(sbs.map((s) => mem(s.pid)));
    console.log(`  PSS after calls ${f1(summarize(m2.map((x) => x.pss)))} MiB`);
    const tw = nowMs();
    const res = await agentOf(sbs[0]!).restore({ now_ms: Date.now(), entropy_b64: crypto.randomBytes(128).toString('base64') });
    console.log(`  warm restore: ${since(tw).toFixed(1)} ms host; guest phases ${JSON.stringify(res.phases_ms)}`);
  } finally {
    await Promise.all(sbs.map((s) => s.kill()));
  }
}
