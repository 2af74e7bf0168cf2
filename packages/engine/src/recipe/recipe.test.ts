import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listRecipeNames, loadRecipe, parseRecipe } from './recipe.js';
import { ForkdError } from '@forkd/protocol';

test('the shipped recipes parse: base, python, node', async () => {
  const names = await listRecipeNames();
  for (const n of ['base', 'python', 'node']) assert.ok(names.includes(n), n);
  const py = await loadRecipe('python');
  assert.equal(py.language, 'python');
  assert.ok(py.packages.includes('python3-numpy'));
  assert.deepEqual(py.warmup.python_modules, ['numpy']);
  assert.equal((await loadRecipe('node')).language, 'js');
});

test('the code-interpreter recipe: IPython and the plotting stack, warmed through run_code', async () => {
  const ci = await loadRecipe('code-interpreter');
  assert.equal(ci.language, 'python');
  for (const p of ['python3-numpy', 'python3-pandas', 'python3-matplotlib', 'python3-ipython']) assert.ok(ci.packages.includes(p), p);
  assert.deepEqual(ci.warmup.python_modules, ['numpy', 'pandas', 'matplotlib']);
  assert.match(ci.warmup.python ?? '', /matplotlib\.use\('Agg'\)/);
  assert.match(ci.warmup.python_cell ?? '', /plt\.show\(\)/, 'one plot drawn in the parent');
});

test('bad recipes are rejected with a recipe error code', async () => {
  const bad = (text: string) => assert.throws(() => parseRecipe(text), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_INVALID', text);
  bad('not json');
  bad('{}');
  bad('{"name":"x","packages":["bad pkg; rm -rf /"]}');
  bad('{"name":"x","disk_mib":1}');
  bad('{"name":"x","unknown_field":1}');
  bad('{"name":"x","min_mem_mib":1024,"default_mem_mib":256}');
  bad('{"name":"../evil"}');
  await assert.rejects(loadRecipe('no-such-recipe'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_NOT_FOUND');
  await assert.rejects(loadRecipe('Bad Name!'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
});

test('a recipe name from a remote caller is only ever a name: package.json is not the file in the working directory', async () => {
  const { loadRecipeByName } = await import('./recipe.js');
  const { Engine } = await import('../engine.js');
  const notFound = (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_NOT_FOUND';
  // Each exists as a file relative to the repository root (the tests' cwd) and would parse or fail differently if opened.
  for (const name of ['package.json', 'tsconfig.base.json', 'recipes.json']) {
    await assert.rejects(loadRecipeByName(name), notFound, name);
    await assert.rejects(new Engine({ home: '/nonexistent-forkd-home' }).recipe(name), notFound, name);
  }
  await assert.rejects(loadRecipeByName('../recipes/python'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
  assert.equal((await loadRecipeByName('python')).language, 'python');
});
