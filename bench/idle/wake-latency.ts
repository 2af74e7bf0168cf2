/**
 * The idle pause's cost to the caller: one child under the idle pause (PAUSE_S, default 3 s), the
 * eval latency of `1 + 1` on the running child against the first eval after each pause (cont, the
 * agent's clock call, then the eval), ROUNDS times, plus the guest clock against the host's after
 * each wake. Uses the fixture snapshot (itest-python) of FORKD_HOME.
 *   node --conditions=source --import tsx bench/idle/wake-latency.ts
 */
import { Engine, summarize } from '@forkd/engine';
import { ensureFixtureSnapshot } from '@forkd/engine/testing';
import { hostLine } from '../host.js';

const PAUSE_S = Number(process.env.PAUSE_S ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const engine = new Engine({ idlePause: { afterMs: PAUSE_S * 1000 } });
const tag = await ensureFixtureSnapshot(engine);
const [sb] = await engine.spawn({ tag, n: 1 });
const evalMs = async (): Promise<{ ms: number; skewMs: number }> => {
  const t = performance.now();
  const r = await sb!.eval('python', 'import time; time.time() * 1000', { timeoutMs: 30_000 });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return { ms: performance.now() - t, skewMs: Number(r.repr) - Date.now() };
};
try {
  for (let i = 0; i < 5; i++) await evalMs();
  const running: number[] = [];
  for (let i = 0; i < ROUNDS * 3; i++) running.push((await evalMs()).ms);
  const woken: number[] = [];
  const skews: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const deadline = Date.now() + 120_000;
    while (!sb!.idlePause?.paused && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    if (!sb!.idlePause?.paused) throw new Error('the child was not stopped within 120 s');
    await new Promise((r) => setTimeout(r, 2000));
    const w = await evalMs();
    woken.push(w.ms);
    skews.push(w.skewMs);
  }
  const f = (v: number[]) => { const s = summarize(v); return `${s.min.toFixed(1)} / ${s.median.toFixed(1)} / ${s.max.toFixed(1)}`; };
  console.log(hostLine());
  console.log(`eval 1+1 on a running child, min/median/max: ${f(running)} ms`);
  console.log(`first eval after an idle pause (cont + clock + eval): ${f(woken)} ms; the wake alone (last): ${sb!.idlePause?.last_wake_ms} ms`);
  console.log(`guest clock - host clock after the wake: ${f(skews)} ms; pauses ${sb!.idlePause?.pauses}, wakes ${sb!.idlePause?.wakes}`);
} finally {
  await sb!.kill();
}
