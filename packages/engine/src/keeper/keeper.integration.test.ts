import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ensureFixtureSnapshot, pidAlive, testEngine, waitFor } from '../testing/fixture.js';
import { keeperSocketPath } from './protocol.js';

const engine = testEngine();
let tag = '';

before(async () => {
  tag = await ensureFixtureSnapshot(engine);
});



interface Held {
  pids: number[];
  dirs: string[];
  ids: string[];
  timings: Array<{ spawn_to_running_ms: number; spawn_to_ready_ms: number; clock_skew_ms: number; phases: { launch_ms: number; migrate_ms: number; cont_ms: number; restore_ms: number } }>;
}

/** Starts a process that spawns n children through a keeper, and returns what it printed. */
async function holder(n: number, key: string, graceMs: number): Promise<{ proc: ReturnType<typeof spawn>; held: Held }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'testing', 'hold-children.ts');
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', script, tag, String(n), key, String(graceMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
  });
  return { proc, held: JSON.parse(line) as Held };
}

test('VMs survive their owner\'s SIGKILL through the keeper and are adopted by the next owner', async () => {
  const key = `itest-${crypto.randomBytes(4).toString('hex')}`;
  const { proc, held } = await holder(2, key, 20_000);
  proc.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 700));
  for (const pid of held.pids) assert.ok(pidAlive(pid), `QEMU ${pid} died with its owner although the keeper holds it`);

  const next = testEngine();
  const inherited = await next.attachKeeper({ key, graceMs: 20_000 });
  assert.deepEqual(inherited.map((v) => v.pid).sort(), [...held.pids].sort());
  try {
    for (let i = 0; i < held.pids.length; i++) {
      const sb = await next.adopt({ dir: held.dirs[i]!, pid: held.pids[i]!, tag, language: 'python', timings: held.timings[i]!, createdAt: new Date() });
      assert.equal(sb.id, held.ids[i]);
      const result = await sb.eval('python', 'held_marker', { timeoutMs: 15_000 });
      assert.equal(result.json, i + 1000, 'interpreter state was lost');
      const ex = await sb.commands.exec({ shell: 'echo adopted', timeout_ms: 15_000 });
      assert.equal(ex.stdout.trim(), 'adopted');
    }
    // One owner at a time: a second attach is refused.
    await assert.rejects(testEngine().attachKeeper({ key, graceMs: 1000 }), (e: { code?: string }) => e.code === 'FORKD_E_CONFLICT');
  } finally {
    await next.releaseKeeper({ stopVms: true });
  }
  assert.ok(await waitFor(() => held.pids.every((p) => !pidAlive(p)), 5000), 'shutdown left QEMU running');
  for (const d of held.dirs) assert.equal(existsSync(d), false, `${d} left behind`);
  assert.ok(await waitFor(() => !existsSync(keeperSocketPath(key)), 3000), 'keeper socket left behind');
});

test('with no owner back within the grace period, the keeper kills its VMs, removes their dirs and exits', async () => {
  const key = `itest-${crypto.randomBytes(4).toString('hex')}`;
  const { proc, held } = await holder(1, key, 1500);
  proc.kill('SIGKILL');
  assert.ok(await waitFor(() => held.pids.every((p) => !pidAlive(p)), 10_000), 'QEMU outlived the grace period');
  assert.ok(await waitFor(() => held.dirs.every((d) => !existsSync(d)), 3000), 'run dirs left behind');
  assert.ok(await waitFor(() => !existsSync(keeperSocketPath(key)), 3000), 'keeper did not exit');
});

test('a keeper killed by SIGKILL takes its VMs with it, and its owner hears about it', async () => {
  const key = `itest-${crypto.randomBytes(4).toString('hex')}`;
  const e = testEngine();
  let lost = false;
  await e.attachKeeper({ key, graceMs: 10_000, onLost: () => (lost = true) });
  const [sb] = await e.spawn({ tag, n: 1 });
  assert.ok(sb);
  const keeperPid = (e as unknown as { keeper: { keeperPid: number } }).keeper.keeperPid;
  assert.ok(keeperPid > 0 && keeperPid !== process.pid);
  process.kill(keeperPid, 'SIGKILL');
  assert.ok(await waitFor(() => !pidAlive(sb.pid), 5000), 'QEMU survived its keeper');
  assert.ok(await waitFor(() => lost, 2000), 'owner was not told the keeper is gone');
  await sb.kill();
  assert.equal(existsSync(sb.dir), false);
  // The dead keeper's socket is left behind until a cleanup (any forkd process on this host may run
  // one meanwhile: the run directory is shared, so only the outcome of ours is asserted).
  await e.cleanup();
  assert.equal(existsSync(keeperSocketPath(key)), false, 'cleanup left a dead keeper socket');
});
