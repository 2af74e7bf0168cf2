/**
 * postgres-fixture: N children ready to query (a host `SELECT 1` through each child's exposed
 * port, answered by psql) against a cold VM of the same image that boots, runs initdb and starts
 * postgres until its own `SELECT 1` answers (the recipe's ready check, run in the guest).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { loadRecipe, nowMs, since, summarize, type Sandbox } from '@forkd/engine';
import { ensureRecipeSnapshot } from '@forkd/engine/testing';
import { fmt, type PartContext, type WorkloadPart } from './part.js';

const N = Number(process.env.PG_N ?? 10);

function psqlSelect1(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('psql', ['-h', host, '-p', String(port), '-U', 'forkd', '-d', 'forkd_test', '-Atc', 'SELECT 1'], { timeout: 30_000, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }, (err, stdout) => resolve(!err && stdout.trim() === '1'));
  });
}

/** Spawn-to-answer of one child: expose the port, then `SELECT 1` until it answers (it should at once). */
async function readyToQuery(sb: Sandbox, t0: number): Promise<number> {
  const { host, port } = await sb.exposePort(5432);
  for (let i = 0; i < 50; i++) {
    if (await psqlSelect1(host, port)) return since(t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`child ${sb.id}: SELECT 1 never answered`);
}

async function pssMiB(pid: number): Promise<number> {
  const text = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
}

interface Round { allMs: number; perChildMs: number[]; pssMiB: number[]; coldMs: number }

export const part: WorkloadPart = {
  name: `postgres-fixture: ${N} children ready to query vs a cold boot + initdb + start`,
  async run({ engine, rounds, log }: PartContext) {
    const recipe = await loadRecipe('postgres-fixture');
    const { tag, created } = await ensureRecipeSnapshot(engine, 'postgres-fixture', recipe, (m) => log(`  ${m}`));
    const snap = await engine.getSnapshot(tag);
    log(`  snapshot ${tag}${created ? ' created' : ''}: parent warm-up (initdb + start + ready) ${snap.manifest.timings.warmup_ms} ms`);
    const out: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = nowMs();
      const kids = await engine.spawn({ tag, n: N, network: false });
      let allMs: number, perChildMs: number[], pss: number[];
      try {
        perChildMs = await Promise.all(kids.map((k) => readyToQuery(k, t0)));
        allMs = since(t0);
        pss = await Promise.all(kids.map((k) => pssMiB(k.pid)));
      } finally {
        await Promise.all(kids.map((k) => k.kill().catch(() => undefined)));
      }
      log(`  round ${r + 1}: ${N} answered in ${allMs.toFixed(0)} ms`);
      // The cold VM runs alone (the children are gone), as a user's cold start would.
      const tc = nowMs();
      const cold = await engine.bootCold(recipe);
      const coldMs = since(tc);
      await cold.kill();
      log(`  round ${r + 1}: cold boot + initdb + start + SELECT 1 ${coldMs.toFixed(0)} ms`);
      out.push({ allMs, perChildMs, pssMiB: pss, coldMs });
    }
    const per = (f: (r: Round) => number) => summarize(out.map(f));
    const all = per((r) => r.allMs);
    const first = per((r) => Math.min(...r.perChildMs));
    const median = per((r) => summarize(r.perChildMs).median);
    const cold = per((r) => r.coldMs);
    const pss = per((r) => summarize(r.pssMiB).median);
    const speedFirst = summarize(out.map((r) => r.coldMs / Math.min(...r.perChildMs)));
    const speedAll = summarize(out.map((r) => r.coldMs / r.allMs));
    return {
      rows: [
        `| all ${N} children answered a host \`SELECT 1\` (spawn → last answer) | ${fmt(all)} | |`,
        `| first child answered (spawn → first answer) | ${fmt(first)} | |`,
        `| per-child spawn → answer, median of the ${N} | ${fmt(median)} | |`,
        `| cold VM: boot + initdb + start postgres + \`SELECT 1\` | ${fmt(cold)} | |`,
        `| speed-up to first answer: cold vs first child | ${fmt(speedFirst, 'x', 1)} | ≥ 20x |`,
        `| speed-up: cold vs all ${N} children answered | ${fmt(speedAll, 'x', 1)} | |`,
        `| PSS per child QEMU while ${N} are alive (median) | ${fmt(pss, 'MiB', 1)} | |`,
      ],
      notes: [
        `Children: no network, port 5432 exposed on the host's loopback; each answer is a host \`psql -Atc 'SELECT 1'\` process (its own start, ~10-20 ms, included).`,
        'Cold: `engine.bootCold` of the same image with the same mem_mib: boot, then the recipe\'s service (initdb, role and database, postgres) until its ready check (`psql ... SELECT 1` in the guest) passes.',
      ],
      raw: { N, tag, parentWarmupMs: snap.manifest.timings.warmup_ms, rounds: out },
    };
  },
};
