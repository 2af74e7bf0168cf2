/**
 * The code-interpreter recipe on real VMs: children of its warm snapshot (numpy, pandas,
 * matplotlib and IPython loaded in the parent) answer runCode with E2B's rich results through the
 * daemon's REST route, the TypeScript SDK and the CLI (`forkd eval --out-dir`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRecipe } from '@forkd/engine';
import { ensureRecipeSnapshot, testEngine } from '@forkd/engine/testing';
import { Controller, Sandbox } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'bin', 'forkd.js');

let d: TestDaemon;
let tag = '';
let sb: Sandbox;

before(async () => {
  ({ tag } = await ensureRecipeSnapshot(testEngine(), 'itest-code-interpreter', await loadRecipe('code-interpreter')));
  d = await startTestDaemon({ fixture: false });
  sb = await Sandbox.create(tag, { socketPath: d.socketPath, timeoutMs: 600_000 });
});
after(async () => {
  await sb?.kill().catch(() => undefined);
  await d?.stop();
});

function png(b64: string | undefined): Buffer {
  assert.ok(b64, 'a png result');
  return Buffer.from(b64, 'base64');
}

test('a matplotlib plot in a fresh child is a PNG result (the first runCode, timed)', async () => {
  const t0 = performance.now();
  const e = await sb.runCode('fig, ax = plt.subplots()\nax.plot(np.arange(20), np.sin(np.arange(20) / 3))\nax.set_title("sine")\nplt.show()');
  const ms = performance.now() - t0;
  process.stderr.write(`# first runCode with a plot in a fresh child: ${ms.toFixed(0)} ms\n`);
  assert.equal(e.error, undefined, JSON.stringify(e.error));
  assert.equal(e.results.length, 1);
  const [r] = e.results;
  assert.equal(r!.isMainResult, false);
  assert.match(r!.text ?? '', /^<Figure size \d+x\d+ with 1 Axes>$/);
  const bytes = png(r!.png);
  assert.ok(bytes.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature');
  assert.ok(bytes.length > 5_000 && bytes.length < 1_000_000, `a real plot's size: ${bytes.length} bytes`);
  // IHDR: width and height of a default 640x480 figure, cropped by bbox_inches='tight'.
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  assert.ok(width > 300 && width <= 640 && height > 200 && height <= 480, `${width}x${height}`);
  assert.deepEqual(r!.formats(), ['text', 'png']);
  assert.ok(typeof e.executionCount === 'number');
});

test('a figure left open at the end of the cell is shown once, also when it is the last value', async () => {
  const open = await sb.runCode('plt.figure()\nplt.plot([3, 1, 2]);');
  assert.equal(open.results.filter((r) => r.png).length, 1, 'the open figure, flushed like the inline backend');
  const last = await sb.runCode('fig = plt.figure()\nplt.plot([1, 2])\nfig');
  assert.equal(last.results.length, 1, 'not twice');
  assert.equal(last.results[0]!.isMainResult, true);
  assert.ok(png(last.results[0]!.png).subarray(0, 8).equals(PNG_SIGNATURE));
});

test('a DataFrame is an HTML and a text result; display() of two objects gives two results', async () => {
  const df = await sb.runCode("pd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 19.0]})");
  assert.equal(df.results.length, 1);
  const [r] = df.results;
  assert.equal(r!.isMainResult, true);
  assert.match(r!.html ?? '', /<table[^>]*class="dataframe"/);
  assert.match(r!.html ?? '', /Oslo/);
  assert.match(r!.text ?? '', /city\s+temp\n0\s+Oslo\s+3\.5/);
  const two = await sb.runCode("display(pd.Series([1, 2], name='s'))\ndisplay('second')");
  assert.equal(two.results.length, 2);
  assert.ok(two.results.every((x) => !x.isMainResult));
  assert.equal(two.results[1]!.text, "'second'");
});

test("an object's _repr_html_ and _repr_markdown_ are honoured", async () => {
  const e = await sb.runCode("class Card:\n    def _repr_html_(self): return '<div class=\"card\">hi</div>'\n    def _repr_markdown_(self): return '**hi**'\nCard()");
  assert.equal(e.results[0]!.html, '<div class="card">hi</div>');
  assert.equal(e.results[0]!.markdown, '**hi**');
  assert.deepEqual(e.results[0]!.formats(), ['text', 'html', 'markdown']);
});

test('an exception is error {name, value, traceback}; stdout and stderr are in logs', async () => {
  const e = await sb.runCode("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n{}['missing']");
  assert.equal(e.error?.name, 'KeyError');
  assert.equal(e.error?.value, "'missing'");
  assert.match(e.error?.traceback ?? '', /KeyError/);
  assert.match(e.error?.traceback ?? '', /Cell In \[\d+\], line 4/);
  assert.deepEqual(e.logs, { stdout: ['to stdout\n'], stderr: ['to stderr\n'] });
  assert.deepEqual(e.results, []);
});

test('state is shared by runCode and eval, and eval answers as before', async () => {
  await sb.runCode('shared_from_cell = 41');
  const r = await sb.eval('shared_from_cell + 1');
  assert.equal(r.result, '42');
  assert.equal((await sb.runCode('shared_from_cell + 2')).text, '43');
});

test('REST: the run_code route answers E2B-shaped JSON; bad bodies are 400s', async () => {
  const c = new Controller({ socketPath: d.socketPath });
  const r = await c.runCode(sb.sandboxId, { code: '1 + 1' });
  assert.equal(r.interpreter, 'ipython');
  assert.deepEqual(r.results, [{ text: '2', json: 2, is_main_result: true }]);
  await assert.rejects(c.runCode(sb.sandboxId, { code: 'x', lang: 'python' } as never), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(c.runCode(sb.sandboxId, { code: 'x', language: 'cobol' } as never), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
});

test('CLI: forkd eval --out-dir writes each PNG result to a file it names, and never over one', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-plots-'));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const run = () => spawnSync(process.execPath, [CLI, 'eval', sb.sandboxId, 'plt.plot([1, 4, 9]); plt.show()\nprint("drawn")', '--out-dir', dir, '--json'],
    { encoding: 'utf8', env: { ...process.env, FORKD_URL: `unix:${d.socketPath}` }, timeout: 120_000 });
  const r = run();
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { files: Array<{ path: string; bytes: number; format: string }>; results: Array<Record<string, unknown>>; logs: { stdout: string[] } };
  assert.equal(out.files.length, 1);
  assert.equal(out.files[0]!.format, 'png');
  assert.equal(out.results[0]!.png, undefined, 'no base64 in the JSON when the file has it');
  assert.deepEqual(out.logs.stdout, ['drawn\n']);
  const file = await fs.readFile(out.files[0]!.path);
  assert.ok(file.subarray(0, 8).equals(PNG_SIGNATURE));
  assert.equal(file.length, out.files[0]!.bytes);
  assert.equal(path.dirname(out.files[0]!.path), dir);
  const text = spawnSync(process.execPath, [CLI, 'eval', sb.sandboxId, 'plt.plot([2, 2]); plt.show()', '--out-dir', dir], { encoding: 'utf8', env: { ...process.env, FORKD_URL: `unix:${d.socketPath}` }, timeout: 120_000 });
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`png: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+\\.png \\(\\d+ bytes\\)`));
  assert.equal((await fs.readdir(dir)).length, 2);
});
