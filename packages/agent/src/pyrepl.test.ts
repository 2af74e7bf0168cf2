/**
 * pyrepl.py driven directly over its fds (3: commands, 4: replies), for the eval semantics its
 * fast paths must keep: a lone expression compiles straight from source, anything else goes
 * through the AST; plain ints and bools skip the JSON round trip.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readLines } from './line-reader.js';

const SCRIPT = fileURLToPath(new URL('./pyrepl.py', import.meta.url));

interface Reply {
  id: number;
  ok: boolean;
  result: { ok: boolean; repr: string | null; json: unknown; json_ok: boolean; stdout: string; error: { type: string; message: string; traceback: string } | null };
}

let py: ChildProcess;
const waiting = new Map<number, (r: Reply) => void>();
let nextId = 1;

before(async () => {
  py = spawn('python3', ['-u', SCRIPT], { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'] });
  const ready = new Promise<void>((resolve) => {
    readLines(py.stdio[4] as Readable, (line) => {
      const msg = JSON.parse(line) as Reply & { ready?: boolean };
      if (msg.ready) return resolve();
      waiting.get(msg.id)?.(msg);
    });
  });
  await ready;
});

after(() => py.kill('SIGKILL'));

function evalPy(code: string): Promise<Reply['result']> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, (r) => resolve(r.result));
    (py.stdio[3] as Writable).write(`${JSON.stringify({ op: 'eval', id, code })}\n`);
  });
}

describe('pyrepl eval', () => {
  it('returns the value of a lone expression, and of a last expression after statements', async () => {
    assert.deepEqual(await evalPy('1 + 1').then((r) => [r.repr, r.json, r.json_ok]), ['2', 2, true]);
    assert.deepEqual(await evalPy('x = 40\ny = 2\nx + y').then((r) => [r.repr, r.json]), ['42', 42]);
    assert.equal((await evalPy('x = 1')).repr, null, 'a statement has no value');
    assert.equal((await evalPy('x')).json, 1, 'globals persist');
  });

  it('keeps JSON fidelity: exact for small ints and bools, repr only for what JSON cannot hold', async () => {
    assert.deepEqual(await evalPy('True').then((r) => [r.repr, r.json, r.json_ok]), ['True', true, true]);
    assert.deepEqual(await evalPy('2**60').then((r) => [r.repr, r.json_ok]), ['1152921504606846976', true]);
    assert.deepEqual(await evalPy('(1, 2)').then((r) => [r.repr, r.json_ok]), ['(1, 2)', false], 'a tuple comes back as a list: not exact');
    assert.deepEqual(await evalPy("{'a': [1, 2.5]}").then((r) => [r.json, r.json_ok]), [{ a: [1, 2.5] }, true]);
    assert.deepEqual(await evalPy("float('nan')").then((r) => [r.repr, r.json_ok]), ['nan', false]);
  });

  it('captures output, runs top-level await, and reports syntax errors from the full parse', async () => {
    const p = await evalPy('print("hi")');
    assert.equal(p.stdout, 'hi\n');
    assert.equal(p.repr, null, 'print returns None');
    assert.equal((await evalPy('import asyncio\nawait asyncio.sleep(0)\n7')).json, 7);
    assert.equal((await evalPy('await asyncio.sleep(0, result=8)')).json, 8);
    const bad = await evalPy('x = = 1');
    assert.equal(bad.ok, false);
    assert.equal(bad.error?.type, 'SyntaxError');
    const boom = await evalPy('1 / 0');
    assert.equal(boom.error?.type, 'ZeroDivisionError');
    assert.doesNotMatch(boom.error?.traceback ?? '', /pyrepl\.py/, 'the REPL\'s own frames are hidden');
  });
});

function request(msg: Record<string, unknown>): Promise<Reply> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    (py.stdio[3] as Writable).write(`${JSON.stringify({ ...msg, id })}\n`);
  });
}

describe('pyrepl reseed', () => {
  const seed = Buffer.alloc(32, 1).toString('hex');
  const native = Buffer.from('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20', 'hex');

  it('reseeds OpenSSL through the _ssl loaded at start, and leaves libc alone while ctypes is not loaded (loading it would cost every child)', async () => {
    assert.equal((await evalPy("import sys\n'_ssl' in sys.modules")).json, true);
    const r = await request({ op: 'reseed', seed_hex: seed, native_hex: native.toString('hex') });
    assert.deepEqual((r.result as unknown as { reseeded: string[] }).reseeded, ['python.random', 'python.openssl']);
    assert.equal((await evalPy("import sys\n'ctypes' in sys.modules")).json, false);
  });

  it("reseeds OpenSSL and libc's generators once the interpreter uses them", async () => {
    await evalPy('import ssl, ctypes\nlibc = ctypes.CDLL(None)\nlibc.srandom(7)\nssl.RAND_bytes(8)');
    const r = await request({ op: 'reseed', seed_hex: seed, native_hex: native.toString('hex') });
    assert.deepEqual((r.result as unknown as { reseeded: string[] }).reseeded, ['python.random', 'python.openssl', 'python.libc']);
    // libc's random() now follows srandom(first 4 bytes of native), not srandom(7).
    const after = (await evalPy('libc.random()')).json;
    const expected = (await evalPy(`libc.srandom(${native.readUInt32LE(0)})\nlibc.random()`)).json;
    const old = (await evalPy('libc.srandom(7)\nlibc.random()')).json;
    assert.equal(after, expected);
    assert.notEqual(after, old);
  });
});
