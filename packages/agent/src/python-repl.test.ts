/**
 * Eval timeouts: evals with the shared (default) timeout re-arm one long-lived timer; it must
 * still interrupt every eval that overruns, also after it fired while nothing was running.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { PythonRepl } from './python-repl.js';
import { findExecutable } from './agent.js';

const SCRIPT = fileURLToPath(new URL('./pyrepl.py', import.meta.url));
const SHARED_MS = 400;
const repl = new PythonRepl(findExecutable('python3'), SCRIPT, SHARED_MS);
after(() => repl.stop());

describe('PythonRepl timeouts', () => {
  it('interrupts overrunning evals through the shared timer, every time, and leaves fast ones alone', async () => {
    assert.equal((await repl.eval('1 + 1', SHARED_MS)).json, 2);
    const first = await repl.eval('import time\ntime.sleep(5)', SHARED_MS);
    assert.equal(first.error?.type, 'TimeoutError');
    // The timer fires once more with nothing running: harmless.
    await new Promise((r) => setTimeout(r, SHARED_MS * 2));
    for (let i = 0; i < 3; i++) assert.equal((await repl.eval(`${i} * 2`, SHARED_MS)).json, i * 2);
    const again = await repl.eval('time.sleep(5)', SHARED_MS);
    assert.equal(again.error?.type, 'TimeoutError', 'the re-armed timer interrupts again');
    const t0 = performance.now();
    assert.equal((await repl.eval('time.sleep(0.2)\n7', SHARED_MS)).json, 7, 'an eval within its time is not cut short');
    assert.ok(performance.now() - t0 < SHARED_MS * 3);
  });

  it('other timeouts get their own timer, and a cancel interrupts', async () => {
    const r = await repl.eval('time.sleep(5)', 250);
    assert.equal(r.error?.type, 'TimeoutError');
    let cancel: (() => void) | null = null;
    const t0 = performance.now();
    const p = repl.eval('time.sleep(5)', 10_000, (cb) => {
      cancel = cb;
      return () => (cancel = null);
    });
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(cancel, 'the eval registered its interrupt');
    (cancel as unknown as () => void)();
    const c = await p;
    // A cancel interrupts like a timeout does (the host that cancelled reads no reply).
    assert.equal(c.error?.type, 'TimeoutError');
    assert.ok(performance.now() - t0 < 2000, 'interrupted, not run to its end');
    assert.equal(cancel, null, 'unregistered after the eval');
  });
});
