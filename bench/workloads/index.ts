/**
 * Issue-15 workload benchmarks: each part (bench/workloads/<name>.ts, exporting `part`) measures a
 * recipe's fork path against its own cold start in the same run. Usage:
 *   npm run bench:workloads                          (every part, ROUNDS=3)
 *   PARTS=postgres ROUNDS=5 npm run bench:workloads  (some parts)
 * Prints machine, acceleration, load average and a speed probe with the figures, and writes the
 * raw numbers to bench/results/workloads-<time>.json.
 */
import { promises as fs } from 'node:fs';
import { loadAverage, hostLine } from '../host.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '@forkd/engine';
import { speedProbeMs } from '../speed-probe.js';
import type { WorkloadPart } from './part.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NOT_PARTS = new Set(['index.ts', 'part.ts']);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const log = (s: string) => process.stderr.write(`${s}\n`);

const available = (await fs.readdir(here)).filter((f) => f.endsWith('.ts') && !NOT_PARTS.has(f) && !f.endsWith('.test.ts')).map((f) => f.slice(0, -3)).sort();
const wanted = process.env.PARTS ? process.env.PARTS.split(',').map((s) => s.trim()).filter(Boolean) : available;
for (const w of wanted) if (!available.includes(w)) throw new Error(`unknown part ${w} (parts: ${available.join(', ')})`);

const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
const env = await engine.platform.resolve();
const load = loadAverage;
const header = [
  `machine: ${hostLine()}; accel ${env.accel}; QEMU ${env.qemuVersion}`,
  `command: ${process.env.PARTS ? `PARTS=${process.env.PARTS} ` : ''}ROUNDS=${ROUNDS} npm run bench:workloads; figures are min / median / max over ${ROUNDS} rounds`,
  `load average before: ${load()}; machine speed probe (fixed host work, lower is faster): ${speedProbeMs()} ms before`,
];
const out: string[] = [];
const raw: Record<string, unknown> = {};
try {
  for (const name of wanted) {
    const { part } = (await import(`./${name}.js`)) as { part: WorkloadPart };
    log(`== ${part.name}`);
    const r = await part.run({ engine, rounds: ROUNDS, log });
    raw[name] = r.raw;
    out.push('', `### ${part.name}`, '', '| figure | min / median / max | target |', '|---|---|---|', ...r.rows, '', ...r.notes);
  }
} finally {
  await engine.cleanup().catch(() => undefined);
}
header.push(`load average after: ${load()}; speed probe after: ${speedProbeMs()} ms`);
process.stdout.write(`${[...header, ...out].join('\n')}\n`);
const resultsDir = path.join(here, '..', 'results');
await fs.mkdir(resultsDir, { recursive: true });
await fs.writeFile(path.join(resultsDir, `workloads-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ header, raw }, null, 2));
