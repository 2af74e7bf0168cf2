/**
 * run_code through the agent's own PythonRepl and method, on the host's python3: the plain
 * fallback always (python3 -S: no site-packages, so no IPython), IPython's path too when the host's
 * python3 has it. The guest's Debian IPython is tested on real VMs of the code-interpreter recipe
 * (packages/daemon/src/code-interpreter.integration.test.ts).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS, PNG_SIGNATURE, RunCodeResult, unpackRichImages } from '@forkd/protocol';
import { PythonRepl } from '../python-repl.js';
import { makeRunCode, toWire } from './run-code.js';
import type { Runtime } from '../runtime.js';
import type { CallContext } from '../handler.js';

const SCRIPT = fileURLToPath(new URL('../pyrepl.py', import.meta.url));
const ctx = { onCancel: () => () => undefined } as unknown as CallContext;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-runcode-'));
const noSite = path.join(dir, 'python3-nosite');
fs.writeFileSync(noSite, '#!/bin/sh\nexec python3 -S "$@"\n', { mode: 0o755 });
const hostHasIPython = spawnSync('python3', ['-c', 'import IPython'], { stdio: 'ignore' }).status === 0;

const interpreters = [
  { name: 'plain', python: new PythonRepl(noSite, SCRIPT), skip: false },
  { name: 'ipython', python: new PythonRepl('python3', SCRIPT), skip: !hostHasIPython },
] as const;
after(() => {
  for (const i of interpreters) i.python.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function runnerFor(python: PythonRepl) {
  const runCode = makeRunCode({ python } as unknown as Runtime);
  return async (code: string, timeout_ms?: number) => {
    const reply = await runCode({ code, ...(timeout_ms ? { timeout_ms } : {}) }, ctx);
    const result = RunCodeResult.parse(reply.result);
    return { ...result, images: unpackRichImages(result.results, Buffer.from(reply.payload ?? new Uint8Array())) };
  };
}

// A valid 1x1 PNG.
const PNG_1x1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==';

for (const { name, python, skip } of interpreters) describe(`run_code (${name} interpreter)`, { skip: skip && 'the host python3 has no IPython' }, () => {
  const run = runnerFor(python);
  it('gives the last expression as the main result, and logs stdout and stderr line by line', async () => {
    const r = await run('import sys\nprint("a")\nprint("b")\nprint("e", file=sys.stderr)\n6 * 7');
    assert.equal(r.interpreter, name);
    assert.equal(r.error, null);
    assert.deepEqual(r.results, [{ text: '42', json: 42, is_main_result: true }]);
    if (name === 'ipython') assert.equal(typeof r.execution_count, 'number');
    assert.deepEqual(r.stdout, ['a\n', 'b\n']);
    assert.deepEqual(r.stderr, ['e\n']);
  });

  it("honours _repr_html_ and _repr_png_ (the PNG's bytes travel in the payload), and display() of two objects gives two results", async () => {
    const r = await run(`import base64
class H:
    def _repr_html_(self): return '<b>hi</b>'
class P:
    def _repr_png_(self): return base64.b64decode('${PNG_1x1}')
display(H(), P())
H()`);
    assert.equal(r.error, null);
    assert.equal(r.results.length, 3);
    assert.equal(r.results[0]!.html, '<b>hi</b>');
    assert.equal(r.results[0]!.is_main_result, false);
    assert.ok(r.images[1]!.png!.subarray(0, 8).equals(PNG_SIGNATURE));
    assert.equal(r.results[1]!.png_bytes, r.images[1]!.png!.length);
    assert.deepEqual([r.results[2]!.html, r.results[2]!.is_main_result], ['<b>hi</b>', true]);
  });

  it('gives an exception as error {name, value, traceback}, output before it kept', async () => {
    const r = await run('print("before")\nraise ValueError("bad value")');
    assert.equal(r.error?.name, 'ValueError');
    assert.equal(r.error?.value, 'bad value');
    assert.match(r.error?.traceback ?? '', /ValueError: bad value/);
    assert.deepEqual(r.stdout, ['before\n']);
    assert.deepEqual(r.results, []);
  });

  it('drops an image past the cap and says so, instead of sending a cut file', async () => {
    const big = LIMITS.richResults.maxImageBytes + 10;
    const r = await run(`class Big:\n    def _repr_png_(self): return b'\\x89PNG\\r\\n\\x1a\\n' + b'0' * ${big}\n    def __repr__(self): return 'Big'\nBig()`);
    assert.deepEqual(r.results, [{ text: 'Big', is_main_result: true }]);
    assert.match(r.dropped.join('\n'), /image\/png of \d+ bytes exceeds the cap/);
  });

  it('a PNG given as base64 text with newlines (what IPython\'s figure formatter returns) is decoded', async () => {
    const r = await run(`import base64\nclass B:\n    def _repr_png_(self): return base64.encodebytes(base64.b64decode('${PNG_1x1}') * 3).decode()\n    def __repr__(self): return 'B'\nB()`);
    assert.deepEqual(r.dropped, []);
    assert.ok(r.images[0]!.png!.subarray(0, 8).equals(PNG_SIGNATURE));
    assert.equal(r.images[0]!.png!.length, Buffer.from(PNG_1x1, 'base64').length * 3);
  });

  it('a _repr_png_ that is not a PNG loses that format (noted), not the call; results past the cap are one note', async () => {
    const r = await run("class Fake:\n    def _repr_png_(self): return b'not a png'\n    def __repr__(self): return 'Fake'\nFake()");
    assert.deepEqual(r.results, [{ text: 'Fake', is_main_result: true }]);
    assert.match(r.dropped.join('\n'), /does not start with the PNG signature/);
    const many = await run(`for i in range(${LIMITS.richResults.maxResults + 500}):\n    display(i)`);
    assert.equal(many.results.length, LIMITS.richResults.maxResults);
    assert.deepEqual(many.dropped, [`500 more results past the cap of ${LIMITS.richResults.maxResults} per cell`]);
  });

  it('shares globals with eval, and a timeout interrupts the cell', async () => {
    await python.eval('shared_value = 5');
    assert.deepEqual((await run('shared_value + 1')).results, [{ text: '6', json: 6, is_main_result: true }]);
    const r = await run('import time\ntime.sleep(30)', 300);
    assert.equal(r.error?.name, 'TimeoutError');
    assert.deepEqual((await run('shared_value')).results, [{ text: '5', json: 5, is_main_result: true }], 'state survives the interrupt');
  });
});

describe('run_code reply checks (toWire)', () => {
  const o = { interrupted: false, killed: false, timeoutMs: 1000, durationMs: 1 };
  it('refuses a reply that breaks the wire shape rather than sending it', () => {
    assert.throws(() => toWire({ ok: true, result: { results: [{ is_main_result: 'yes' }], stdout: [], stderr: [], error: null, execution_count: null, interpreter: 'plain', dropped: [], duration_ms: 1 } }, o), /invalid reply/);
  });
  it('reports an interpreter that died as an error, not a crash', () => {
    const r = toWire({ ok: false, error: { type: 'InterpreterDied', message: 'gone', traceback: '' } }, o);
    assert.deepEqual(r.result.error, { name: 'InterpreterDied', value: 'gone', traceback: '' });
  });
});

describe('run_code with the language browser', () => {
  const png = Buffer.concat([PNG_SIGNATURE, Buffer.alloc(8), Buffer.from([0, 0, 5, 0, 0, 0, 2, 0xd0]), Buffer.alloc(40)]);
  const rtWith = (result: Record<string, unknown>, bytes: Buffer | null) => ({
    browser: { eval: async () => ({ result: { ok: true, repr: null, json: null, json_ok: false, error: null, stdout: '', stderr: '', duration_ms: 1, ...result }, png: bytes }) },
  }) as unknown as Runtime;

  it('a PNG value is the main result with its bytes in the payload', async () => {
    const { result, payload } = await makeRunCode(rtWith({ repr: '<PNG image 1280x720, 64 bytes>' }, png))({ code: 'return await page.screenshot()', language: 'browser' }, ctx);
    assert.equal(result.interpreter, 'browser');
    assert.deepEqual(result.results, [{ text: '<PNG image 1280x720, 64 bytes>', png_bytes: png.length, is_main_result: true }]);
    const [images] = unpackRichImages(result.results, Buffer.from(payload!));
    assert.ok(images!.png!.equals(png));
    assert.ok(RunCodeResult.safeParse(result).success);
  });

  it('a JSON value is text and json; an error is E2B-shaped; no value, no result', async () => {
    const ok = await makeRunCode(rtWith({ repr: "'t'", json: 't', json_ok: true, stdout: 'log\n' }, null))({ code: 'return "t"', language: 'browser' }, ctx);
    assert.deepEqual(ok.result.results, [{ text: "'t'", json: 't', is_main_result: true }]);
    assert.deepEqual(ok.result.stdout, ['log\n']);
    const err = await makeRunCode(rtWith({ ok: false, error: { type: 'TimeoutError', message: 'page.goto: Timeout 5000ms exceeded.', traceback: 'tb' } }, null))({ code: 'x', language: 'browser' }, ctx);
    assert.deepEqual(err.result.error, { name: 'TimeoutError', value: 'page.goto: Timeout 5000ms exceeded.', traceback: 'tb' });
    assert.deepEqual(err.result.results, []);
  });

  it('a PNG over the image cap is dropped with a note, not sent', async () => {
    const huge = Buffer.concat([PNG_SIGNATURE, Buffer.alloc(LIMITS.richResults.maxImageBytes)]);
    const { result, payload } = await makeRunCode(rtWith({ repr: '<PNG>' }, huge))({ code: 'x', language: 'browser' }, ctx);
    assert.equal(result.results[0]!.png_bytes, undefined);
    assert.equal(payload!.length, 0);
    assert.match(result.dropped[0]!, /exceeds the caps/);
  });
});
