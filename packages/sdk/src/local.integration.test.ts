import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureLocalDaemon, socketAnswers } from './local.js';

test('a daemon started on demand that cannot run says why at once (another daemon owns the home), not after the timeout', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'forkd-launch-'));
  const first = path.join(home, 'a.sock');
  try {
    assert.deepEqual(await ensureLocalDaemon({ home, socket: first }), { socket: first, started: true });
    assert.deepEqual(await ensureLocalDaemon({ home, socket: first }), { socket: first, started: false });
    const t0 = Date.now();
    await assert.rejects(ensureLocalDaemon({ home, socket: path.join(home, 'b.sock'), timeoutMs: 60_000 }), (e: { code?: string; message: string }) =>
      e.code === 'FORKD_E_CONFLICT' && /another forkd daemon .*owns the state/.test(e.message));
    assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
  } finally {
    spawnSync('pkill', ['-TERM', '-f', first]);
    const deadline = Date.now() + 15_000;
    while ((await socketAnswers(first)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await socketAnswers(first), false, 'the first daemon did not stop');
    rmSync(home, { recursive: true, force: true });
  }
});
