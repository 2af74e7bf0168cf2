/**
 * coding-agent and ci-parallel-pytest are documented as one image (one debootstrap in CI, one cache
 * entry): their package lists and disk size must stay the same, or each builds its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRecipe } from '../recipe/recipe.js';
import { imageKey } from './build.js';

test('coding-agent and ci-parallel-pytest share one image (same content key)', async () => {
  const [a, b] = await Promise.all([loadRecipe('coding-agent'), loadRecipe('ci-parallel-pytest')]);
  assert.equal((await imageKey(a)).key, (await imageKey(b)).key);
  for (const p of ['git', 'build-essential', 'python3-pip', 'python3-venv', 'python3-pytest', 'npm', 'python3-sklearn', 'python3-pandas']) assert.ok(a.packages.includes(p), p);
});
