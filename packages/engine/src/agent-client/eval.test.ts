import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

describe('agent eval (real agent over --listen)', () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await startTestAgent();
    c = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
  });
  after(async () => {
    c?.close();
    await agent?.stop();
  });

  describe('js', () => {
    it('keeps top-level declarations between calls', async () => {
      assert.equal((await c.eval('js', 'let x = 41')).ok, true);
      const r = await c.eval('js', 'x + 1');
      assert.equal(r.repr, '42');
      assert.equal(r.json, 42);
      assert.equal(r.json_ok, true);
      await c.eval('js', 'function twice(v) { return 2 * v }\nconst o = { a: [1, "b"] }');
      assert.deepEqual((await c.eval('js', 'o')).json, { a: [1, 'b'] });
      assert.equal((await c.eval('js', 'twice(x)')).json, 82);
    });

    it('captures console output', async () => {
      const r = await c.eval('js', 'console.log("out", 1); console.error("bad"); "v"');
      assert.equal(r.stdout, 'out 1\n');
      assert.equal(r.stderr, 'bad\n');
      assert.equal(r.repr, "'v'");
      assert.equal(r.json, 'v');
    });

    it('reports errors with type, message and stack', async () => {
      const r = await c.eval('js', 'function boom() { throw new TypeError("nope") }\nboom()');
      assert.equal(r.ok, false);
      assert.equal(r.error?.type, 'TypeError');
      assert.equal(r.error?.message, 'nope');
      assert.match(r.error?.traceback ?? '', /at boom/);
      const s = await c.eval('js', 'let = = 3');
      assert.equal(s.error?.type, 'SyntaxError');
    });

    it('supports top-level await with a result and persistent declarations', async () => {
      const r = await c.eval('js', 'const waited = await new Promise((r) => setTimeout(() => r(7), 10));\nwaited * 6');
      assert.equal(r.ok, true, JSON.stringify(r.error));
      assert.equal(r.json, 42);
      assert.equal((await c.eval('js', 'waited')).json, 7);
      const one = await c.eval('js', 'console.log("a"); await null; 5');
      assert.equal(one.json, 5);
      assert.equal(one.stdout, 'a\n');
    });

    it('marks non-JSON values and keeps repr', async () => {
      const r = await c.eval('js', 'new Map([[1, 2]])');
      assert.equal(r.json_ok, false);
      assert.match(r.repr ?? '', /Map\(1\)/);
      const u = await c.eval('js', 'undefined');
      assert.equal(u.repr, null);
    });

    it('has require, process and Buffer, and times out busy loops', async () => {
      assert.equal((await c.eval('js', 'require("node:path").join("a", "b")')).json, 'a/b');
      assert.equal((await c.eval('js', 'typeof process.pid + Buffer.from("x").length')).json, 'number1');
      const t = await c.eval('js', 'while (true) {}', { evalTimeoutMs: 200 });
      assert.equal(t.ok, false);
      assert.equal(t.error?.type, 'TimeoutError');
      assert.equal((await c.eval('js', 'x')).json, 41, 'context survives a timeout');
    });
  });

  describe('python', () => {
    it('keeps globals and returns the last expression', async () => {
      const a = await c.eval('python', 'import math\ny = 41\nprint("hello")');
      assert.equal(a.ok, true, JSON.stringify(a.error));
      assert.equal(a.stdout, 'hello\n');
      assert.equal(a.repr, null);
      const b = await c.eval('python', 'y += 1\ny');
      assert.equal(b.repr, '42');
      assert.equal(b.json, 42);
      const d = await c.eval('python', '{"k": [1, 2.5, None]}');
      assert.deepEqual(d.json, { k: [1, 2.5, null] });
      const s = await c.eval('python', '{1, 2}');
      assert.equal(s.json_ok, false);
      assert.equal(s.repr, '{1, 2}');
    });

    it('reports tracebacks and captures stderr', async () => {
      const r = await c.eval('python', 'import sys\nprint("e", file=sys.stderr)\ndef f():\n    raise ValueError("bad value")\nf()');
      assert.equal(r.ok, false);
      assert.equal(r.error?.type, 'ValueError');
      assert.equal(r.error?.message, 'bad value');
      assert.match(r.error?.traceback ?? '', /line 4, in f/);
      assert.doesNotMatch(r.error?.traceback ?? '', /pyrepl/);
      assert.equal(r.stderr, 'e\n');
      const s = await c.eval('python', 'def (:');
      assert.equal(s.error?.type, 'SyntaxError');
    });

    it('interrupts a timed-out eval and keeps the state', async () => {
      const r = await c.eval('python', 'import time\ntime.sleep(30)', { evalTimeoutMs: 300 });
      assert.equal(r.ok, false);
      assert.equal(r.error?.type, 'TimeoutError');
      assert.match(r.error?.message ?? '', /KeyboardInterrupt/);
      assert.equal((await c.eval('python', 'y')).json, 42);
    });

    it('restarts an interpreter that ignores SIGINT (state lost)', async () => {
      const r = await c.eval('python', 'import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)', { evalTimeoutMs: 200 });
      assert.equal(r.error?.type, 'TimeoutError');
      assert.match(r.error?.message ?? '', /restarted/);
      const after = await c.eval('python', 'y');
      assert.equal(after.error?.type, 'NameError');
    });

    it('supports top-level await', async () => {
      const r = await c.eval('python', 'import asyncio\nawait asyncio.sleep(0.01)\n6 * 7');
      assert.equal(r.json, 42, JSON.stringify(r.error));
    });
  });

  it('warmup sets the state, restore reseeds user-space generators', async () => {
    const w = await c.warmup({ python: 'import json\nwarm = 1', js: 'var warmJs = 2', python_modules: ['json'] });
    assert.equal(w.warmup, 'warm', w.error ?? '');
    assert.equal((await c.ping()).warmup, 'warm');
    assert.equal((await c.eval('python', 'warm')).json, 1);
    const entropy = Buffer.alloc(32, 7).toString('base64');
    const first = await c.restore({ now_ms: Date.now(), entropy_b64: entropy });
    assert.equal(first.clock_set, false, '--no-system never sets the clock');
    assert.equal(first.rng_reseeded, false);
    // The Python reseed is queued ahead of the next Python call rather than awaited.
    assert.deepEqual(first.userspace_reseeded.map((x) => x.split(' ')[0]).sort(), ['js.Math.random', 'python']);
    assert.ok(Math.abs(first.skew_ms) < 5000);
    const a = [(await c.eval('js', 'Math.random()')).json, (await c.eval('python', 'import random\nrandom.random()')).json];
    await c.restore({ now_ms: Date.now(), entropy_b64: entropy });
    const b = [(await c.eval('js', 'Math.random()')).json, (await c.eval('python', 'random.random()')).json];
    assert.deepEqual(a, b, 'same entropy, same sequence');
    await c.restore({ now_ms: Date.now(), entropy_b64: Buffer.alloc(32, 8).toString('base64') });
    const d = [(await c.eval('js', 'Math.random()')).json, (await c.eval('python', 'random.random()')).json];
    assert.notDeepEqual(a, d);
    assert.equal((await c.ping()).restores, 3);
    const bad = await c.warmup({ python: 'raise RuntimeError("no warm")' });
    assert.equal(bad.warmup, 'failed');
    assert.match(bad.error ?? '', /no warm/);
    assert.match((await c.ping()).warmup_error ?? '', /no warm/);
  });
});

describe('agent without python3', () => {
  it('omits python from languages and answers python evals with FORKD_E_AGENT_ERROR (guest_code FORKD_E_TOOL_MISSING)', async () => {
    const agent = await startTestAgent({ extraArgs: ['--no-python'] });
    const c = await AgentClient.connect(agent.socketPath);
    try {
      assert.deepEqual((await c.ping()).languages, ['js']);
      await assert.rejects(c.eval('python', '1'), (e: { code?: string; message: string; details?: { guest_code?: string } }) => e.code === 'FORKD_E_AGENT_ERROR' && e.details?.guest_code === 'FORKD_E_TOOL_MISSING' && /python3/.test(e.message));
      const w = await c.warmup({ python: '1' });
      assert.equal(w.warmup, 'failed');
      assert.equal((await c.warmup({ js: '1' })).warmup, 'warm');
    } finally {
      c.close();
      await agent.stop();
    }
  });
});
