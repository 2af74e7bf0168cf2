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

test('postgres-fixture: one service run as postgres with a command ready check, and a memory floor above the base', async () => {
  const pg = await loadRecipe('postgres-fixture');
  assert.deepEqual(pg.packages, ['postgresql']);
  assert.equal(pg.services.length, 1);
  const svc = pg.services[0]!;
  assert.equal(svc.user, 'postgres');
  assert.ok('cmd' in svc.ready && /SELECT 1/.test(svc.ready.cmd));
  assert.ok(pg.min_mem_mib > (await loadRecipe('base')).min_mem_mib);
  // The other recipes start no service: their snapshots are made exactly as before.
  for (const n of ['base', 'python', 'node']) assert.deepEqual((await loadRecipe(n)).services, []);
});

test('recipe services are validated with the recipe: a bad one is FORKD_E_RECIPE_INVALID naming the field', () => {
  const svc = { name: 'web', start: ['node', 'server.js'], ready: { port: 8080 }, timeout_secs: 30 };
  const recipe = (services: unknown) => JSON.stringify({ name: 'x', services });
  assert.equal(parseRecipe(recipe([svc])).services[0]!.name, 'web');
  for (const bad of [[{ ...svc, ready: {} }], [{ ...svc, timeout_secs: -1 }], [svc, svc], [{ ...svc, name: 'A B' }], [{ ...svc, start: '' }], [{ ...svc, ready: { sleep: 5 } }]]) {
    assert.throws(() => parseRecipe(recipe(bad)), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_INVALID' && /services/.test(e.message), JSON.stringify(bad));
  }
});

test('less memory than a recipe\'s floor is refused with FORKD_E_MEMORY_TOO_SMALL before anything is built or booted', async () => {
  const { Engine } = await import('../engine.js');
  const { checkMachineSize } = await import('../snapshot/create.js');
  const pg = await loadRecipe('postgres-fixture');
  const small = (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_MEMORY_TOO_SMALL' && e.details?.min_mem_mib === pg.min_mem_mib && /postgres-fixture needs at least/.test(e.message);
  assert.throws(() => checkMachineSize(pg, pg.min_mem_mib - 1, 1), small);
  checkMachineSize(pg, pg.min_mem_mib, 1);
  // A home that does not exist: had it tried to build or boot, the error would be another one.
  const engine = new Engine({ home: '/nonexistent-forkd-home' });
  await assert.rejects(engine.createSnapshot({ tag: 'pg-small', recipe: pg, memMib: 256 }), small);
  await assert.rejects(engine.bootCold(pg, { memMib: 256 }), small);
});

test('the playwright-browser recipe: Chromium as a non-root service with a DevTools ready check, ≥ 2 GiB, the browser language', async () => {
  const r = await loadRecipe('playwright-browser');
  assert.equal(r.language, 'browser');
  assert.ok(r.min_mem_mib >= 2048, `min_mem_mib ${r.min_mem_mib}`);
  const chromium = r.services.find((s) => s.name === 'chromium');
  assert.ok(chromium, 'a chromium service');
  assert.equal(chromium.user, 'nobody', 'not root, so no --no-sandbox');
  assert.doesNotMatch(String(chromium.start), /--no-sandbox/);
  assert.deepEqual(chromium.ready, { url: 'http://127.0.0.1:9222/json/version' });
  assert.deepEqual(r.warmup.browser, { cdp_port: 9222 });
});

test('language browser without warmup.browser is refused (nothing would connect Playwright)', () => {
  assert.throws(() => parseRecipe('{"name":"x","language":"browser"}'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_INVALID' && /warmup\.browser/.test(e.message));
  assert.throws(() => parseRecipe('{"name":"x","warmup":{"browser":{"cdp_port":0}}}'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RECIPE_INVALID');
});
