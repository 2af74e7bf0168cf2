/**
 * Probe: PSS per idle child by mapping class (bench/density/smaps.ts) with N children alive, right
 * after spawn and after one eval in each; also their idle CPU. The experiments of issue 11 §3 were
 * made with it (tb-size, KSM); the figures are in bench/README.md ("Density").
 *   flock /tmp/forkd-vm.lock node --conditions=source --import tsx bench/density/mem-classes.ts 20 100
 * Env: FORKD_TCG_TB_SIZE (honoured by spawn), BENCH_TAG (default: the test fixture snapshot),
 *      SETTLE_MS (5000), KSM_WAIT_MS (0: with KSM on, how long to let ksmd scan before reading).
 */
import os from 'node:os';
import { Engine, nowMs, since, type Sandbox } from '@forkd/engine';
import { ensureFixtureSnapshot, testEngine } from '@forkd/engine/testing';
import { breakdowns, summarizeMem, totalCpuMs, ksmPages, type MemSummary } from './probe.js';

const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 5000);
const KSM_WAIT_MS = Number(process.env.KSM_WAIT_MS ?? 0);
const engine: Engine = testEngine();
const tag = process.env.BENCH_TAG ?? (await ensureFixtureSnapshot(engine));
const fmt = (m: MemSummary) => {
  const b = m.byClassMib;
  return `PSS/child median ${m.pssMib.toFixed(1)} (max ${m.pssMaxMib.toFixed(1)}, KVM-equivalent ${m.kvmEquivalentPssMib.toFixed(1)}) MiB; by class: guestShared ${b.guestShared.toFixed(1)} guestCow ${b.guestCow.toFixed(1)} tcgBuffer ${b.tcgBuffer.toFixed(1)} heap ${b.heap.toFixed(1)} anon ${b.anon.toFixed(1)} libs ${b.libs.toFixed(1)} other ${b.other.toFixed(1)}; sum ${(m.sumPssMib / 1024).toFixed(2)} GiB`;
};

let live: Sandbox[] = [];
process.once('SIGINT', () => void Promise.all(live.map((s) => s.kill())).finally(() => process.exit(130)));
console.log(`tag ${tag}; FORKD_TCG_TB_SIZE=${process.env.FORKD_TCG_TB_SIZE ?? '(default)'}; KSM ${JSON.stringify(await ksmPages())}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const n of counts) {
  const t0 = nowMs();
  live = await engine.spawn({ tag, n });
  const readyMs = since(t0);
  try {
    const pids = live.map((s) => s.pid);
    await new Promise((r) => setTimeout(r, SETTLE_MS + KSM_WAIT_MS));
    console.log(`${n} alive, all ready in ${readyMs.toFixed(0)} ms; right after spawn: ${fmt(summarizeMem(await breakdowns(pids)))}`);
    await Promise.all(live.map((s) => s.eval('python', '1 + 1', { timeoutMs: 120_000 })));
    await new Promise((r) => setTimeout(r, SETTLE_MS + KSM_WAIT_MS));
    const c0 = await totalCpuMs(pids);
    const w0 = nowMs();
    await new Promise((r) => setTimeout(r, 10_000));
    const cpu = (await totalCpuMs(pids) - c0) / n / (since(w0) / 1000);
    console.log(`${n} alive, after one eval each: ${fmt(summarizeMem(await breakdowns(pids)))}; idle CPU ${cpu.toFixed(2)} ms/s per child; KSM ${JSON.stringify(await ksmPages())}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await Promise.all(live.map((s) => s.kill()));
    live = [];
  }
}
