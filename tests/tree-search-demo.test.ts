/**
 * The tree-search demo's agent (recipes/tree-search-demo/tour_agent.py) run by the host's python3
 * (no VM): the recipe carries exactly that source, its policy obeys its temperature, and the same
 * prefix continued at different temperatures diverges, which is what the demo's forks rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RECIPES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'recipes');
const AGENT_DIR = path.join(RECIPES, 'tree-search-demo');

function py(code: string): unknown {
  const r = spawnSync('python3', ['-c', `import json, sys\nsys.path.insert(0, ${JSON.stringify(AGENT_DIR)})\nfrom tour_agent import TourAgent\n${code}`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the recipe carries the agent source verbatim (run scripts/gen-tree-demo-recipe.mjs after editing it)', () => {
  const recipe = JSON.parse(readFileSync(path.join(RECIPES, 'tree-search-demo.json'), 'utf8')) as { packages: string[]; disk_mib: number; warmup: { python: string } };
  const source = readFileSync(path.join(AGENT_DIR, 'tour_agent.py'), 'utf8');
  assert.ok(recipe.warmup.python.includes(`.write(${JSON.stringify(source)})`), 'recipes/tree-search-demo.json is stale');
  // Same packages and disk as the python recipe: the same image, so the demo costs no image build.
  const base = JSON.parse(readFileSync(path.join(RECIPES, 'python.json'), 'utf8')) as { packages: string[]; disk_mib: number };
  assert.deepEqual([recipe.packages, recipe.disk_mib], [base.packages, base.disk_mib]);
});

test('temperature 0 is greedy and repeatable; the same seed repeats a continuation; temperatures diverge from one prefix', () => {
  const out = py(`
def cont(T, seed):
    a = TourAgent(); a.run(4, 0.0)
    prefix = list(a.transcript)
    a.run(None, T, seed=seed)
    return prefix, a.report()
g1, g2 = cont(0.0, 1), cont(0.0, 2)
s1, s2 = cont(0.6, 5), cont(0.6, 5)
routes = sorted({cont(T, 100 + i)[1]["route"] for i, T in enumerate([0.0, 0.1, 0.3, 0.6, 1.2])})
full = TourAgent(); full.run(None, 0.0)
print(json.dumps({"greedy_same": g1 == g2, "seed_same": s1 == s2, "prefix": g1[0], "routes": routes,
  "complete": full.done(), "exact": abs(-full.length(closed=True) - full.score()) < 1e-2, "stops": len(full.route),
  "greedy_score": g1[1]["score"], "best_sampled": max(cont(0.3, s)[1]["score"] for s in range(30))}))
`) as { greedy_same: boolean; seed_same: boolean; prefix: string[]; routes: string[]; complete: boolean; exact: boolean; stops: number; greedy_score: number; best_sampled: number };
  assert.ok(out.greedy_same, 'T=0 ignores the seed');
  assert.ok(out.seed_same, 'a seed repeats its continuation');
  assert.equal(out.prefix.length, 5, 'the start line and four decisions');
  assert.ok(out.routes.length >= 3, `branches from one prefix diverge: ${out.routes.join(' ')}`);
  for (const r of out.routes) assert.ok(r.startsWith('AFBCE') && r.length === 14, r);
  assert.ok(out.complete && out.exact && out.stops === 14, 'a complete tour visits every stop; its score is its closed length');
  // The point of the demo: exploring beats the greedy policy on this map.
  assert.ok(out.best_sampled > out.greedy_score + 1, `some T=0.3 continuation beats greedy (${out.best_sampled} vs ${out.greedy_score})`);
});
