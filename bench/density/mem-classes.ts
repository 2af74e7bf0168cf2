/**
 * Probe: PSS per idle child by mapping class (bench/density/smaps.ts) with N children alive, right
 * after spawn and after one eval in each; their idle CPU and an eval p50 (so a cut that slows calls
 * shows). Variants run one after the other in one process (one VM-lock hold), each a set of
 * environment changes that reach the next QEMUs started (the engine reads them per spawn). The
 * experiments of issue 11 §3 were made with it; the figures are in bench/README.md ("Density").
 *   flock /tmp/forkd-vm.lock node --conditions=source --import tsx bench/density/mem-classes.ts default:20,100 ksm:100 tb24:20
 * (VARIANT:COUNTS, run in the order given.) Env: BENCH_TAG (default: the test fixture snapshot),
 *      BATCH (10 children per spawn call; a failed batch is retried twice), SETTLE_MS (5000), KSM_WAIT_MS (30000).
 * The ksm variant turns the host's ksmd on (/sys/kernel/mm/ksm/run=1) for its duration and puts
 * the previous settings back after; it reports ksmd's CPU time.
 */
import { promises as fs } from 'node:fs';
import { loadAverage } from '../host.js';
import { Engine, nowMs, since, summarize, type Sandbox } from '@forkd/engine';
import { ensureFixtureSnapshot, testEngine } from '@forkd/engine/testing';
import { breakdowns, summarizeMem, totalCpuMs, cpuMs, ksmPages, type MemSummary } from './probe.js';

const VARIANT_ENV: Record<string, Record<string, string>> = {
  default: {},
  tb24: { FORKD_TCG_TB_SIZE: '24' },
  tb16: { FORKD_TCG_TB_SIZE: '16' },
  // glibc: one arena, and a fixed mmap threshold (no dynamic raise), so the softmmu TLB tables QEMU
  // re-allocates on resize go back to the kernel when freed instead of staying in an arena.
  malloc: { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' },
  ksm: { FORKD_QEMU_KSM: 'on' },
};
const plan = process.argv.slice(2).map((a) => {
  const [variant, list] = a.split(':');
  if (!variant || !VARIANT_ENV[variant] || !list) throw new Error(`bad argument ${a}: VARIANT:N[,N...] with VARIANT one of ${Object.keys(VARIANT_ENV).join(', ')}`);
  return { variant, counts: list.split(',').map(Number).filter((n) => n > 0) };
});
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 5000);
const KSM_WAIT_MS = Number(process.env.KSM_WAIT_MS ?? 30_000);
const BATCH = Number(process.env.BATCH ?? 10);
const engine: Engine = testEngine();
const tag = process.env.BENCH_TAG ?? (await ensureFixtureSnapshot(engine));
const load = loadAverage;
const fmt = (m: MemSummary) => {
  const b = m.byClassMib;
  return `PSS/child median ${m.pssMib.toFixed(1)} (max ${m.pssMaxMib.toFixed(1)}, KVM-equivalent ${m.kvmEquivalentPssMib.toFixed(1)}) MiB; by class: guestShared ${b.guestShared.toFixed(1)} guestCow ${b.guestCow.toFixed(1)} tcgBuffer ${b.tcgBuffer.toFixed(1)} heap ${b.heap.toFixed(1)} anon ${b.anon.toFixed(1)} libs ${b.libs.toFixed(1)} other ${b.other.toFixed(1)}; sum ${(m.sumPssMib / 1024).toFixed(2)} GiB`;
};

const KSM = '/sys/kernel/mm/ksm';
const ksmSaved: Record<string, string> = {};
async function ksmOn(): Promise<void> {
  for (const f of ['run', 'pages_to_scan', 'sleep_millisecs']) ksmSaved[f] ??= (await fs.readFile(`${KSM}/${f}`, 'utf8')).trim();
  await fs.writeFile(`${KSM}/pages_to_scan`, '2000');
  await fs.writeFile(`${KSM}/sleep_millisecs`, '20');
  await fs.writeFile(`${KSM}/run`, '1');
}
async function ksmRestore(): Promise<void> {
  for (const f of ['pages_to_scan', 'sleep_millisecs', 'run']) if (ksmSaved[f] !== undefined) await fs.writeFile(`${KSM}/${f}`, ksmSaved[f]!).catch(() => undefined);
}
async function ksmdPid(): Promise<number | null> {
  for (const d of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    if ((await fs.readFile(`/proc/${d}/comm`, 'utf8').catch(() => '')).trim() === 'ksmd') return Number(d);
  }
  return null;
}

let live: Sandbox[] = [];
const cleanup = () => Promise.all(live.map((s) => s.kill())).then(ksmRestore);
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
process.once('SIGTERM', () => void cleanup().finally(() => process.exit(143)));
console.log(`tag ${tag}; plan ${process.argv.slice(2).join(' ')}; load ${load()}`);
const baseEnv = { ...process.env };
try {
  for (const { variant, counts } of plan) {
    for (const k of Object.values(VARIANT_ENV).flatMap(Object.keys)) {
      if (baseEnv[k] === undefined) delete process.env[k];
      else process.env[k] = baseEnv[k];
    }
    Object.assign(process.env, VARIANT_ENV[variant]);
    const ksm = variant === 'ksm';
    if (ksm) await ksmOn();
    const ksmd = ksm ? await ksmdPid() : null;
    for (const n of counts) {
      const t0 = nowMs();
      // In batches: on a loaded 2-core machine 100 QEMUs started at once miss the spawn's deadlines.
      for (let left = n; left > 0; left -= BATCH) {
        for (let attempt = 1; ; attempt++) {
          try {
            live.push(...(await engine.spawn({ tag, n: Math.min(BATCH, left) })));
            break;
          } catch (e) {
            console.log(`[${variant}] a batch failed at ${live.length} alive (attempt ${attempt}): ${(e as Error).message}; load ${load()}`);
            if (attempt === 3) throw e;
          }
        }
      }
      const readyMs = since(t0);
      const pids = live.map((s) => s.pid);
      const k0 = ksmd ? await cpuMs(ksmd) : 0;
      await new Promise((r) => setTimeout(r, SETTLE_MS + (ksm ? KSM_WAIT_MS : 0)));
      console.log(`[${variant}] ${n} alive, all ready in ${readyMs.toFixed(0)} ms; right after spawn: ${fmt(summarizeMem(await breakdowns(pids)))}; load ${load()}`);
      await Promise.all(live.map((s) => s.eval('python', '1 + 1', { timeoutMs: 120_000 })));
      await new Promise((r) => setTimeout(r, SETTLE_MS + (ksm ? KSM_WAIT_MS : 0)));
      const memEval = summarizeMem(await breakdowns(pids));
      const lat: number[] = [];
      for (let k = 0; k < 20; k++) {
        const t = nowMs();
        await live[k % live.length]!.eval('python', 'sum(range(100))', { timeoutMs: 120_000 });
        lat.push(since(t));
      }
      const c0 = await totalCpuMs(pids);
      const w0 = nowMs();
      await new Promise((r) => setTimeout(r, 10_000));
      const cpu = (await totalCpuMs(pids) - c0) / n / (since(w0) / 1000);
      const ksmdMs = ksmd ? ((await cpuMs(ksmd)) ?? 0) - (k0 ?? 0) : 0;
      console.log(`[${variant}] ${n} alive, after one eval each: ${fmt(memEval)}; idle CPU ${cpu.toFixed(2)} ms/s per child; eval p50 ${summarize(lat).median.toFixed(1)} ms (20 sequential, round robin)${ksm ? `; ksmd CPU ${ksmdMs} ms over ${(since(t0) / 1000).toFixed(0)} s, KSM pages ${JSON.stringify(await ksmPages())}` : ''}; load ${load()}`);
      await Promise.all(live.map((s) => s.kill()));
      live = [];
    }
    if (ksm) await ksmRestore();
  }
} finally {
  await cleanup();
}
