/**
 * code-interpreter: the first runCode answering with a matplotlib PNG in a fresh child of the warm
 * snapshot (numpy, pandas, matplotlib and IPython loaded in the parent), against a cold VM of the
 * same image that boots, imports matplotlib (through the same run_code path, so IPython too) and
 * plots. Both answers are checked: a PNG signature and a plausible size.
 */
import { loadRecipe, nowMs, since, summarize, type RunCodeOutcome } from '@forkd/engine';
import { ensureRecipeSnapshot } from '@forkd/engine/testing';
import { fmt, type PartContext, type WorkloadPart } from './part.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** What the child runs: the parent already imported these, so only the plot is new work. */
const CHILD_CELL = 'fig, ax = plt.subplots()\nax.plot(np.arange(50), np.sin(np.arange(50) / 5))\nplt.show()';
/** What the cold VM runs: the same plot, with the imports a cold interpreter has to do. */
const COLD_CELL = `import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n${CHILD_CELL}`;

function pngBytes(r: RunCodeOutcome, what: string): number {
  if (r.error) throw new Error(`${what}: ${r.error.name}: ${r.error.value}`);
  const png = r.images.find((i) => i.png)?.png;
  if (!png || !png.subarray(0, 8).equals(PNG_SIGNATURE) || png.length < 5_000) throw new Error(`${what}: no plausible PNG in ${JSON.stringify(r.results).slice(0, 300)}`);
  return png.length;
}

interface Round { forkMs: number; spawnMs: number; coldMs: number; coldBootMs: number; pngBytes: number }

export const part: WorkloadPart = {
  name: 'code-interpreter: first runCode answering with a matplotlib PNG, fresh child vs cold VM',
  async run({ engine, rounds, log }: PartContext) {
    const recipe = await loadRecipe('code-interpreter');
    const { tag, created } = await ensureRecipeSnapshot(engine, 'itest-code-interpreter', recipe, (m) => log(`  ${m}`));
    const snap = await engine.getSnapshot(tag);
    log(`  snapshot ${tag}${created ? ' created' : ''}: parent warm-up (imports + IPython + one plot) ${snap.manifest.timings.warmup_ms} ms`);
    const out: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = nowMs();
      const [kid] = await engine.spawn({ tag, n: 1, network: false });
      let forkMs: number;
      let spawnMs: number;
      let bytes: number;
      try {
        spawnMs = since(t0);
        bytes = pngBytes(await kid!.runCode(CHILD_CELL, { timeoutMs: 120_000 }), 'child');
        forkMs = since(t0);
      } finally {
        await kid!.kill().catch(() => undefined);
      }
      log(`  round ${r + 1}: fresh child answered with a ${bytes} byte PNG in ${forkMs.toFixed(0)} ms (spawn ${spawnMs.toFixed(0)} ms)`);
      const tc = nowMs();
      const cold = await engine.bootCold(recipe);
      try {
        const coldBootMs = since(tc);
        pngBytes(await cold.runCode(COLD_CELL, { timeoutMs: 300_000 }), 'cold VM');
        const coldMs = since(tc);
        log(`  round ${r + 1}: cold VM booted in ${coldBootMs.toFixed(0)} ms, answered with a PNG at ${coldMs.toFixed(0)} ms`);
        out.push({ forkMs, spawnMs, coldMs, coldBootMs, pngBytes: bytes });
      } finally {
        await cold.kill().catch(() => undefined);
      }
    }
    const fork = summarize(out.map((o) => o.forkMs));
    const cold = summarize(out.map((o) => o.coldMs));
    const ratios = summarize(out.map((o) => o.coldMs / o.forkMs));
    return {
      rows: [
        `| fresh child: spawn → first runCode answered with a PNG | ${fmt(fork)} | |`,
        `| of which spawn → agent ready | ${fmt(summarize(out.map((o) => o.spawnMs)))} | |`,
        `| cold VM: boot → imports + plot → PNG | ${fmt(cold)} | |`,
        `| of which boot → agent ready | ${fmt(summarize(out.map((o) => o.coldBootMs)))} | |`,
        `| cold / fork (per round) | ${fmt(ratios, '×', 1)} | ≥ 20× |`,
      ],
      notes: [
        `One child at a time (n=1, no network), ${rounds} rounds; each round's cold VM runs right after its child, same image (${recipe.name}, ${recipe.default_mem_mib} MiB).`,
        'Both answers are checked (PNG signature, > 5 kB). The cold VM runs the plot through the same run_code path, so it also pays for loading IPython.',
      ],
      raw: out,
    };
  },
};
