/**
 * ci-parallel-pytest: the example project's suite (recipes/ci-parallel-pytest/project: 34 tests over
 * numpy, pandas, scikit-learn and the stdlib) run five ways in the same round:
 *  - cold: a fresh VM of the same image boots, gets the project, runs `python3 -m pytest`;
 *  - warm, subprocess: a child of the warm snapshot runs `python3 -m pytest` (a new interpreter:
 *    it imports everything again; this is what the original forkd measured at 1.01×);
 *  - warm, serial: a child of the warm snapshot collects and runs the whole suite with pytest.main
 *    in its warm interpreter (no fork);
 *  - forkd test with N = 1, 4, 8 children (CHILDREN=...): parent child, upload, collection in the
 *    parent, fork, each child's shard with pytest.main, results merged (runParallelPytest, the
 *    code behind `forkd test`, through a daemon).
 * Every run's outcome is checked (34 passed, 2 skipped), so a broken run cannot pass for a fast one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRecipe, nowMs, since, summarize } from '@forkd/engine';
import { ensureRecipeSnapshot } from '@forkd/engine/testing';
import { startTestDaemon } from '@forkd/daemon/testing';
import { Controller, PYTEST_RUNNER_SOURCE, projectFiles, runParallelPytest } from '@forkd/sdk';
import { fmt, type PartContext, type WorkloadPart } from './part.js';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'ci-parallel-pytest', 'project');
const CHILDREN = (process.env.CHILDREN ?? '1,4,8').split(',').map(Number);
const EXPECTED = /34 passed, 2 skipped/;
const GUEST_DIR = '/root/project';

/** Python that writes the project into the guest and runs pytest in a new interpreter, returning its summary line. */
async function subprocessPytestCode(): Promise<string> {
  const files = await Promise.all((await projectFiles(PROJECT)).map(async (f) => [f.rel, (await fs.readFile(f.abs)).toString('base64')]));
  return [
    'import base64, os, subprocess, sys',
    `for rel, b64 in ${JSON.stringify(files)}:`,
    `    p = os.path.join(${JSON.stringify(GUEST_DIR)}, rel)`,
    '    os.makedirs(os.path.dirname(p), exist_ok=True)',
    "    open(p, 'wb').write(base64.b64decode(b64))",
    `r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', ${JSON.stringify(GUEST_DIR)}], capture_output=True, text=True)`,
    "(r.stdout.strip().splitlines() or [''])[-1]",
  ].join('\n');
}

function check(summaryLine: string, what: string): void {
  if (!EXPECTED.test(summaryLine)) throw new Error(`${what}: expected "34 passed, 2 skipped", got ${JSON.stringify(summaryLine)}`);
}

interface Round { coldMs: number; coldBootMs: number; warmSubprocessMs: number; warmSerialMs: number; fork: Record<number, { totalMs: number; runMs: number; collectMs: number; forkMs: number }> }

export const part: WorkloadPart = {
  name: 'ci-parallel-pytest: the example suite on N forked children vs a cold VM and vs one warm sandbox',
  async run({ engine, rounds, log }: PartContext) {
    const recipe = await loadRecipe('ci-parallel-pytest');
    const { tag, created } = await ensureRecipeSnapshot(engine, 'itest-ci-parallel-pytest', recipe, (m) => log(`  ${m}`));
    log(`  snapshot ${tag}${created ? ' created' : ''}: parent warm-up ${(await engine.getSnapshot(tag)).manifest.timings.warmup_ms} ms`);
    const coldCode = await subprocessPytestCode();
    const d = await startTestDaemon({ fixture: false });
    const c = new Controller({ socketPath: d.socketPath });
    const out: Round[] = [];
    try {
      for (let r = 0; r < rounds; r++) {
        const round: Round = { coldMs: 0, coldBootMs: 0, warmSubprocessMs: 0, warmSerialMs: 0, fork: {} };
        const tc = nowMs();
        const cold = await engine.bootCold(recipe);
        try {
          round.coldBootMs = since(tc);
          const e = await cold.eval('python', coldCode, { timeoutMs: 900_000 });
          if (!e.ok) throw new Error(`cold VM: ${JSON.stringify(e.error)}`);
          check(String(e.json), 'cold VM');
          round.coldMs = since(tc);
        } finally {
          await cold.kill().catch(() => undefined);
        }
        log(`  round ${r + 1}: cold VM ${round.coldMs.toFixed(0)} ms (boot ${round.coldBootMs.toFixed(0)} ms)`);

        const tw = nowMs();
        const [w] = await c.spawnSandboxes({ snapshot_tag: tag, n: 1 });
        try {
          const e = await c.eval(w!.id, { code: coldCode, language: 'python', timeout_secs: 900 });
          check(String(e.result_json), 'warm sandbox, subprocess');
          round.warmSubprocessMs = since(tw);
        } finally {
          await c.killSandbox(w!.id).catch(() => undefined);
        }
        log(`  round ${r + 1}: warm sandbox, python3 -m pytest: ${round.warmSubprocessMs.toFixed(0)} ms`);

        const ts = nowMs();
        const [s] = await c.spawnSandboxes({ snapshot_tag: tag, n: 1 });
        try {
          for (const f of await projectFiles(PROJECT)) await c.writeFile(s!.id, `${GUEST_DIR}/${f.rel}`, await fs.readFile(f.abs));
          await c.eval(s!.id, { code: `${PYTEST_RUNNER_SOURCE}\n0`, language: 'python' });
          const e = await c.eval(s!.id, { code: `_r = _forkd_pytest.collect(${JSON.stringify(GUEST_DIR)})\n_o = _forkd_pytest.run([i['nodeid'] for i in _r['items']])\n[t['outcome'] for t in _o['tests']]`, language: 'python', timeout_secs: 900 });
          const outcomes = e.result_json as string[];
          check(`${outcomes.filter((o) => o === 'passed').length} passed, ${outcomes.filter((o) => o === 'skipped').length} skipped`, 'warm serial');
          round.warmSerialMs = since(ts);
        } finally {
          await c.killSandbox(s!.id).catch(() => undefined);
        }
        log(`  round ${r + 1}: warm sandbox, serial pytest.main: ${round.warmSerialMs.toFixed(0)} ms`);

        for (const n of CHILDREN) {
          const t0 = nowMs();
          const res = await runParallelPytest(c, { template: tag, projectDir: PROJECT, children: n, shardBy: 'test', guestDir: GUEST_DIR });
          const totalMs = since(t0);
          check(`${res.totals.passed} passed, ${res.totals.skipped} skipped`, `forkd test -n ${n}`);
          round.fork[n] = { totalMs, runMs: res.timings.run_ms, collectMs: res.timings.collect_ms, forkMs: res.timings.fork_ms };
          log(`  round ${r + 1}: forkd test -n ${n}: ${totalMs.toFixed(0)} ms (collect ${res.timings.collect_ms.toFixed(0)}, fork ${res.timings.fork_ms.toFixed(0)}, run ${res.timings.run_ms.toFixed(0)})`);
        }
        out.push(round);
      }
    } finally {
      await d.stop();
    }
    const s = (f: (o: Round) => number) => summarize(out.map(f));
    const sec = (x: ReturnType<typeof summarize>) => fmt({ min: x.min / 1000, median: x.median / 1000, max: x.max / 1000 }, 's', 1);
    const rows = [
      `| cold VM: boot → project written → \`python3 -m pytest\` done | ${sec(s((o) => o.coldMs))} | |`,
      `| of which boot → agent ready | ${sec(s((o) => o.coldBootMs))} | |`,
      `| warm sandbox, \`python3 -m pytest\` in a new interpreter (the original's 1.01×) | ${sec(s((o) => o.warmSubprocessMs))} | |`,
      `| warm sandbox, serial: collect + run in the warm interpreter, no fork | ${sec(s((o) => o.warmSerialMs))} | |`,
    ];
    for (const n of CHILDREN) {
      rows.push(`| forkd test -n ${n}: spawn → upload → collect → fork → all shards done | ${sec(s((o) => o.fork[n]!.totalMs))} | |`);
      rows.push(`| of which fork (capture + ${n} children ready) / shards running | ${sec(s((o) => o.fork[n]!.forkMs))} / ${sec(s((o) => o.fork[n]!.runMs))} | |`);
      rows.push(`| cold / forkd test -n ${n} (per round) | ${fmt(s((o) => o.coldMs / o.fork[n]!.totalMs), '×', 2)} | ≥ 20× |`);
    }
    rows.push(`| cold / warm serial (per round) | ${fmt(s((o) => o.coldMs / o.warmSerialMs), '×', 2)} | |`);
    return {
      rows,
      notes: [
        `${rounds} round(s); every variant's result is checked (34 passed, 2 skipped). Image ${recipe.name} (${recipe.default_mem_mib} MiB, 1 vCPU); children through a daemon (REST), shard by test.`,
        'The cold VM and the subprocess variant get the project written by one eval (base64 in the code); forkd test uploads it through the files API.',
      ],
      raw: out,
    };
  },
};
