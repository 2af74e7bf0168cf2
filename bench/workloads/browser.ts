/**
 * playwright-browser: N children of the warm snapshot (Chromium running, Playwright connected,
 * a context and a page open in the parent) each load a page served inside the guest and return
 * its title, against a cold VM of the same image that boots, starts Chromium (the recipe's
 * services) and connects Playwright to the same answer. Memory: PSS per browser child while all N
 * are alive, split by where it goes (guest pages copied on write, TCG's code buffer, QEMU heap),
 * against an idle python child plus Chromium's own pages inside the guest.
 */
import { loadRecipe, nowMs, since, summarize, type Sandbox } from '@forkd/engine';
import { ensureRecipeSnapshot } from '@forkd/engine/testing';
import { breakdowns, summarizeMem, type MemSummary } from '../density/probe.js';
import { fmt, type PartContext, type WorkloadPart } from './part.js';

const N = Number(process.env.BROWSER_N ?? 10);
const URL = 'http://127.0.0.1:8000/index.html';
const TITLE = 'forkd browser';
const CHILD_CODE = `await page.goto('${URL}'); return await page.title()`;
/** A cold user's path through the same agent: connect Playwright to the freshly started Chromium, open a context and a page, load, read the title. */
const COLD_CODE = `const pw = require('/opt/forkd/playwright-core.cjs');
const browser = await pw.chromium.connectOverCDP('http://127.0.0.1:9222', { timeout: 300000 });
const page = await (await browser.newContext()).newPage();
await page.goto('${URL}');
return await page.title();`;

async function title(sb: Sandbox, t0: number): Promise<number> {
  const r = await sb.eval('browser', CHILD_CODE, { timeoutMs: 300_000 });
  if (!r.ok || r.json !== TITLE) throw new Error(`child ${sb.id}: ${r.error ? `${r.error.type}: ${r.error.message}` : JSON.stringify(r.json)}`);
  return since(t0);
}

/** Chromium's own memory inside the guest: the sum over its processes of PSS and of private pages (KiB). */
async function chromiumInGuestKib(sb: Sandbox): Promise<{ pss: number; private: number; processes: number }> {
  const r = await sb.commands.exec({ argv: ['sh', '-c', "for p in $(pgrep -f /usr/lib/chromium/chromium-headless-shell); do cat /proc/$p/smaps_rollup 2>/dev/null; done | awk '/^Rss:/{n++} /^Pss:/{pss+=$2} /^Private_(Clean|Dirty):/{pr+=$2} END{print n+0, pss+0, pr+0}'"], timeout_ms: 60_000 });
  const [processes, pss, priv] = r.stdout.trim().split(/\s+/).map(Number);
  return { processes: processes ?? 0, pss: pss ?? NaN, private: priv ?? NaN };
}

interface Round { allMs: number; perChildMs: number[]; mem: MemSummary; coldMs: number; coldBootMs: number }

export const part: WorkloadPart = {
  name: `playwright-browser: ${N} children each load a page served in the guest and return its title vs a cold boot + Chromium + Playwright`,
  async run({ engine, rounds, log }: PartContext) {
    const recipe = await loadRecipe('playwright-browser');
    const { tag, created } = await ensureRecipeSnapshot(engine, 'itest-playwright-browser', recipe, (m) => log(`  ${m}`));
    const snap = await engine.getSnapshot(tag);
    log(`  snapshot ${tag}${created ? ' created' : ''}: parent warm-up (Chromium start + Playwright connect + call paths) ${snap.manifest.timings.warmup_ms} ms`);
    const out: Round[] = [];
    let chromium = { pss: NaN, private: NaN, processes: 0 };
    for (let r = 0; r < rounds; r++) {
      const t0 = nowMs();
      // The default 60 s restore budget is for one child; N browser children resuming at once on a
      // loaded 2-core TCG host can take longer, and the figure to report is how long, not a failure.
      const kids = await engine.spawn({ tag, n: N, network: false, readyTimeoutMs: 600_000 });
      let allMs: number, perChildMs: number[], mem: MemSummary;
      try {
        perChildMs = await Promise.all(kids.map((k) => title(k, t0)));
        allMs = since(t0);
        mem = summarizeMem(await breakdowns(kids.map((k) => k.pid)));
        if (r === 0) chromium = await chromiumInGuestKib(kids[0]!);
      } finally {
        await Promise.all(kids.map((k) => k.kill().catch(() => undefined)));
      }
      log(`  round ${r + 1}: ${N} titles in ${allMs.toFixed(0)} ms (first ${Math.min(...perChildMs).toFixed(0)} ms); PSS per child ${mem.pssMib.toFixed(1)} MiB`);
      const tc = nowMs();
      const cold = await engine.bootCold(recipe);
      let coldMs: number, coldBootMs: number;
      try {
        coldBootMs = since(tc);
        const c = await cold.eval('js', COLD_CODE, { timeoutMs: 600_000 });
        if (!c.ok || c.json !== TITLE) throw new Error(`cold VM: ${c.error ? `${c.error.type}: ${c.error.message}` : JSON.stringify(c.json)}`);
        coldMs = since(tc);
      } finally {
        await cold.kill().catch(() => undefined);
      }
      log(`  round ${r + 1}: cold VM: boot + Chromium ready ${coldBootMs.toFixed(0)} ms, title at ${coldMs.toFixed(0)} ms`);
      out.push({ allMs, perChildMs, mem, coldMs, coldBootMs });
    }
    // The baseline of the memory target: one idle python child (the python recipe's snapshot).
    const py = await ensureRecipeSnapshot(engine, 'itest-python', await loadRecipe('python'), (m) => log(`  ${m}`));
    const [pyKid] = await engine.spawn({ tag: py.tag, n: 1, network: false });
    let pyMem: MemSummary;
    try {
      await pyKid!.eval('python', '1 + 1');
      pyMem = summarizeMem(await breakdowns([pyKid!.pid]));
    } finally {
      await pyKid!.kill().catch(() => undefined);
    }
    const per = (f: (r: Round) => number) => summarize(out.map(f));
    const first = per((r) => Math.min(...r.perChildMs));
    const all = per((r) => r.allMs);
    const cold = per((r) => r.coldMs);
    const pss = per((r) => r.mem.pssMib);
    const cls = (c: keyof MemSummary['byClassMib']) => per((r) => r.mem.byClassMib[c]);
    const chromiumPrivMib = chromium.private / 1024;
    const budget = pyMem.pssMib + chromiumPrivMib;
    return {
      rows: [
        `| all ${N} children answered with the title (spawn → last answer) | ${fmt(all)} | |`,
        `| first child answered (spawn → first title) | ${fmt(first)} | |`,
        `| per-child spawn → title, median of the ${N} | ${fmt(per((r) => summarize(r.perChildMs).median))} | |`,
        `| cold VM: boot + Chromium ready (services) | ${fmt(per((r) => r.coldBootMs))} | |`,
        `| cold VM: boot + Chromium + Playwright connect + page → title | ${fmt(cold)} | |`,
        `| speed-up to first answer: cold vs first child | ${fmt(summarize(out.map((r) => r.coldMs / Math.min(...r.perChildMs))), 'x', 1)} | ≥ 20x |`,
        `| speed-up: cold vs all ${N} children answered | ${fmt(summarize(out.map((r) => r.coldMs / r.allMs)), 'x', 1)} | |`,
        `| PSS per browser child while ${N} are alive (median) | ${fmt(pss, 'MiB', 1)} | ≤ 2 × ${budget.toFixed(1)} MiB |`,
        `| … of which guest pages copied on write (guestCow) | ${fmt(cls('guestCow'), 'MiB', 1)} | |`,
        `| … of which shared guest pages (guestShared, PSS share) | ${fmt(cls('guestShared'), 'MiB', 1)} | |`,
        `| … of which TCG code buffer | ${fmt(cls('tcgBuffer'), 'MiB', 1)} | |`,
        `| … of which QEMU heap + anon + libs | ${fmt(per((r) => r.mem.byClassMib.heap + r.mem.byClassMib.anon + r.mem.byClassMib.libs + r.mem.byClassMib.other), 'MiB', 1)} | |`,
        `| idle python child PSS (baseline, one child) | ${pyMem.pssMib.toFixed(1)} MiB | |`,
        `| Chromium inside the guest: ${chromium.processes} processes, private pages / PSS | ${chromiumPrivMib.toFixed(1)} / ${(chromium.pss / 1024).toFixed(1)} MiB | |`,
      ],
      notes: [
        `Children: no network, ${recipe.default_mem_mib} MiB each; each answer is \`${CHILD_CODE}\` through the agent's browser eval (the page is served by the recipe's python3 http.server inside the guest). PSS read while all ${N} are alive, after they answered.`,
        'Cold: `engine.bootCold` of the same image and memory: boot, then the recipe\'s services (http.server, Chromium until its DevTools endpoint answers), then a JS eval that connects Playwright, opens a context and a page, loads the page and reads its title.',
        `Memory target: ≤ 2 × (idle python child ${pyMem.pssMib.toFixed(1)} MiB + Chromium's private pages in the guest ${chromiumPrivMib.toFixed(1)} MiB) = ${(2 * budget).toFixed(1)} MiB.`,
      ],
      raw: { N, tag, parentWarmupMs: snap.manifest.timings.warmup_ms, rounds: out, python: pyMem, chromiumInGuestKib: chromium },
    };
  },
};
