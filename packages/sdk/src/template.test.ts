/**
 * The Template builder, without a daemon: each call maps to its step of the recipe JSON (which
 * RecipeSchema, the daemon's own schema, accepts), copies are named by their bytes' digests, and
 * hostile or oversized copies are refused with their code before anything is read or sent: a link
 * out of the copied tree, a file over the limit, a template file's `src` that leaves its directory.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LIMITS, RecipeSchema } from '@forkd/protocol';
import { Template, resolveCopySources, waitForPort, waitForProcess, waitForTimeout, waitForURL, type ForkdSdkError } from './index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-sdk-tpl-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const sha = (b: string | Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const code = (e: unknown) => (e as ForkdSdkError).code;
fs.mkdirSync(path.join(dir, 'app', 'lib'), { recursive: true });
fs.writeFileSync(path.join(dir, 'app', 'index.html'), '<title>x</title>\n', { mode: 0o644 });
fs.writeFileSync(path.join(dir, 'app', 'lib', 'tool.sh'), '#!/bin/sh\n', { mode: 0o755 });
fs.chmodSync(path.join(dir, 'app', 'index.html'), 0o644);
fs.chmodSync(path.join(dir, 'app', 'lib', 'tool.sh'), 0o755);

test('each builder call becomes its step; the recipe is what the daemon validates', async () => {
  const t = new Template()
    .fromTemplate('python')
    .aptInstall(['python3-numpy', 'curl'])
    .pipInstall('/opt/wheels/pkg-1.0-py3-none-any.whl', { network: false })
    .npmInstall('lodash@4', { g: false, network: false })
    .copy(path.join(dir, 'app'), '/srv/app')
    .copy(new TextEncoder().encode('raw'), '/etc/raw.txt', { mode: 0o600 })
    .runCmd('make', { user: 'user', timeoutSecs: 60 })
    .setEnvs({ APP_MODE: 'prod' })
    .setWorkdir('/srv/app')
    .setStartCmd('python3 -m http.server 8080', waitForPort(8080), { timeoutSecs: 60 })
    .setReadyCmd(waitForURL('http://127.0.0.1:8080/'))
    .setResources({ diskMib: 2048, memMib: 768, minMemMib: 256 });
  const { recipe, files } = await t.toRecipe('my-tpl');
  const r = RecipeSchema.parse(recipe);
  assert.deepEqual(r.steps.map((s) => s.type), ['apt', 'pip', 'npm', 'copy', 'copy', 'run', 'env', 'workdir']);
  assert.equal(r.from, 'python');
  assert.equal(r.language, 'python', 'pip implies a python interpreter');
  assert.deepEqual(recipe.steps![3], { type: 'copy', files: [
    { sha256: sha('<title>x</title>\n'), dest: '/srv/app/index.html', mode: 0o644 },
    { sha256: sha('#!/bin/sh\n'), dest: '/srv/app/lib/tool.sh', mode: 0o755 },
  ] });
  assert.deepEqual(recipe.steps![4], { type: 'copy', files: [{ sha256: sha('raw'), dest: '/etc/raw.txt', mode: 0o600 }] });
  assert.deepEqual(r.services[0]!.ready, { url: 'http://127.0.0.1:8080/' });
  assert.deepEqual([r.disk_mib, r.default_mem_mib, r.min_mem_mib], [2048, 768, 256]);
  assert.deepEqual([...files.keys()].sort(), [sha('<title>x</title>\n'), sha('#!/bin/sh\n'), sha('raw')].sort());
  assert.deepEqual((await new Template().setStartCmd('sleep 1d', waitForProcess('sleep')).toRecipe('t')).recipe.services![0]!.ready, { cmd: "pgrep -x 'sleep' >/dev/null" });
});

test('bad builder calls are refused with their code', async () => {
  assert.throws(() => new Template().setReadyCmd(waitForPort(1)), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT');
  assert.throws(() => waitForTimeout(), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(new Template().copy(path.join(dir, 'nope'), '/x').toRecipe('t'), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT');
  fs.mkdirSync(path.join(dir, 'empty'), { recursive: true });
  await assert.rejects(new Template().copy(path.join(dir, 'empty'), '/x').toRecipe('t'), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT');
});

test('a link out of a copied tree is refused; a link inside it is its target', async () => {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'ok.txt'), 'ok');
  fs.writeFileSync(path.join(dir, 'secret'), 'host secret');
  fs.symlinkSync(path.join(dir, 'secret'), path.join(tree, 'leak'));
  await assert.rejects(new Template().copy(tree, '/srv').toRecipe('t'), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT' && /link out of/.test((e as Error).message));
  fs.rmSync(path.join(tree, 'leak'));
  fs.symlinkSync('ok.txt', path.join(tree, 'alias'));
  const { recipe } = await new Template().copy(tree, '/srv').toRecipe('t');
  const files = (recipe.steps![0] as { files: Array<{ sha256: string; dest: string }> }).files;
  assert.deepEqual(files.map((f) => f.dest), ['/srv/alias', '/srv/ok.txt']);
  assert.equal(files[0]!.sha256, files[1]!.sha256);
});

test('a file over the limit is refused before it is read (FORKD_E_PAYLOAD_TOO_LARGE)', async () => {
  const big = path.join(dir, 'big.bin');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, LIMITS.templates.maxCopyFileBytes + 1); // sparse: no disk, never read
  await assert.rejects(new Template().copy(big, '/big').toRecipe('t'), (e) => code(e) === 'FORKD_E_PAYLOAD_TOO_LARGE');
  fs.rmSync(big);
});

test("a template file's copy src stays under its directory", async () => {
  const base = path.join(dir, 'tpl');
  fs.mkdirSync(path.join(base, 'files'), { recursive: true });
  fs.writeFileSync(path.join(base, 'files', 'a.txt'), 'a');
  const raw = (src: string) => ({ name: 't', steps: [{ type: 'copy', files: [{ src, dest: '/a' }] }] });
  const ok = await resolveCopySources(raw('files/a.txt'), base);
  assert.deepEqual((ok.recipe as { steps: Array<{ files: unknown[] }> }).steps[0]!.files, [{ sha256: sha('a'), dest: '/a', mode: fs.statSync(path.join(base, 'files', 'a.txt')).mode & 0o777 }]);
  for (const src of ['../secret', '/etc/hostname', 'files/../../secret']) {
    await assert.rejects(resolveCopySources(raw(src), base), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT' && /leaves the template's directory/.test((e as Error).message), src);
  }
  fs.symlinkSync(path.join(dir, 'secret'), path.join(base, 'files', 'link'));
  await assert.rejects(resolveCopySources(raw('files/link'), base), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT');
});
