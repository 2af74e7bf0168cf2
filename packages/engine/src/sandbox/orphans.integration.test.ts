import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ensureFixtureSnapshot, pidAlive, testEngine } from '../testing/fixture.js';

const engine = testEngine();
let tag = '';
before(async () => {
  tag = await ensureFixtureSnapshot(engine);
});


test('SIGKILL of the owning process leaves no QEMU behind, and cleanup removes its files', async () => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'testing', 'hold-children.ts');
  const holder = spawn(process.execPath, ['--import', 'tsx', script, tag, '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    holder.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    holder.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
  });
  const { pids, dirs } = JSON.parse(line) as { pids: number[]; dirs: string[] };
  assert.equal(pids.length, 2);
  for (const p of pids) assert.ok(pidAlive(p), `qemu ${p} should be running`);
  holder.kill('SIGKILL');
  const deadline = Date.now() + 10_000;
  while (pids.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pids.filter(pidAlive), [], 'QEMU processes survived their owner');
  // The owner died without cleaning up: its run directories remain until cleanup.
  assert.ok(dirs.some((d) => existsSync(d)));
  await engine.cleanup();
  for (const d of dirs) assert.equal(existsSync(d), false, `${d} left behind`);
});
