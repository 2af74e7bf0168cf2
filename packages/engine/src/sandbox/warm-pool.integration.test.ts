// The warm pool with real VMs: pooled children are real paused QEMUs, a spawn turns one of them
// into the child (same pid), limits bypass the pool, and deleting the snapshot kills its pool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Sandbox } from './sandbox.js';
import { ensureFixtureSnapshot, PARENT_MARKER, pidAlive, testEngine, waitFor } from '../testing/fixture.js';
import { runtimeDir } from '../runtime/index.js';

const engine = testEngine();
let tag = '';
const live: Sandbox[] = [];

before(async () => {
  tag = await ensureFixtureSnapshot(engine);
});
after(async () => {
  await engine.pool.close();
  await Promise.all(live.map((s) => s.kill()));
});

/** Niceness of a process's main thread (field 19 of /proc/<pid>/stat). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function poolOf(t: string) {
  return engine.pool.state().find((s) => s.tag === t);
}

test('a default spawn takes a pooled child: the paused QEMU started ahead becomes the sandbox, faster than a normal start', async () => {
  engine.configurePool(tag, 2);
  await engine.pool.settled();
  const pooled = poolOf(tag)!;
  assert.equal(pooled.ready, 2, `pool: ${JSON.stringify(pooled)}`);
  for (const pid of pooled.pids) {
    assert.ok(pidAlive(pid));
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('-S') && argv.includes('-incoming'), 'a pooled child is held paused waiting for its taker');
    if (process.getuid?.() === 0) assert.equal(niceOf(pid), 10, 'pooled children start at low priority');
  }
  const [a, b] = await engine.spawn({ tag, n: 2 });
  live.push(a!, b!);
  assert.deepEqual([a!.pid, b!.pid].sort(), [...pooled.pids].sort(), 'the spawn started new QEMUs instead of taking the pooled ones');
  assert.equal(a!.timings.from_pool, true);
  if (process.getuid?.() === 0) assert.equal(niceOf(a!.pid), 0, 'a taken child runs at normal priority');
  // The children are whole: parent state, their own random state and clock after the restore.
  for (const sb of [a!, b!]) {
    const r = await sb.eval('python', '(forkd_parent_marker, float(np.arange(10).sum()))', { timeoutMs: 25_000 });
    assert.equal(r.repr, `(${PARENT_MARKER}, 45.0)`, JSON.stringify(r.error));
    assert.ok(Math.abs(sb.timings.clock_skew_ms) >= 0);
  }
  const [ra, rb] = await Promise.all([a!, b!].map((sb) => sb.eval('python', "open('/dev/urandom','rb').read(16).hex()", { timeoutMs: 25_000 })));
  assert.notEqual(ra!.repr, rb!.repr, 'two pooled children share random state');
  const st = poolOf(tag)!;
  assert.equal(st.hits, 2);
  // Refilled in the background once the spawn ended.
  await engine.pool.settled();
  assert.equal(poolOf(tag)!.ready, 2);
  // Normal start for comparison, with the pool emptied first so it is a miss.
  engine.configurePool(tag, 0);
  await engine.pool.drain(tag);
  const [c] = await engine.spawn({ tag, n: 1 });
  live.push(c!);
  assert.equal(c!.timings.from_pool, undefined);
  process.stderr.write(`# pooled spawn_to_ready ${a!.timings.spawn_to_ready_ms.toFixed(0)}/${b!.timings.spawn_to_ready_ms.toFixed(0)} ms, normal ${c!.timings.spawn_to_ready_ms.toFixed(0)} ms (launch ${c!.timings.phases.launch_ms.toFixed(0)}, migrate ${c!.timings.phases.migrate_ms.toFixed(0)})\n`);
  // The pooled child skipped the launch and the migration the normal one paid.
  assert.ok(c!.timings.phases.launch_ms + c!.timings.phases.migrate_ms > 0);
  assert.equal(a!.timings.phases.launch_ms + a!.timings.phases.migrate_ms, 0);
});

test('a spawn with limits starts normally and leaves the pool alone', async () => {
  engine.configurePool(tag, 1);
  await engine.pool.settled();
  const pooledPid = poolOf(tag)!.pids[0]!;
  const [q] = await engine.spawn({ tag, n: 1, quotas: { pidsMax: 512 } });
  live.push(q!);
  assert.notEqual(q!.pid, pooledPid);
  assert.equal(q!.timings.from_pool, undefined);
  assert.deepEqual(poolOf(tag)!.pids, [pooledPid]);
  engine.configurePool(tag, 0);
  await engine.pool.drain(tag);
  assert.ok(await waitFor(() => !pidAlive(pooledPid), 5000), 'drain left the pooled QEMU running');
});

test('deleting a snapshot kills its pooled children and removes their run dirs', async () => {
  const layer = `itest-pool-${process.pid}`;
  await engine.removeSnapshot(layer).catch(() => undefined);
  await engine.diffSnapshot({ from: tag, to: layer, cmd: 'echo pooled > /root/pool-layer' });
  try {
    engine.configurePool(layer, 1);
    await engine.pool.settled();
    const st = poolOf(layer)!;
    assert.equal(st.ready, 1, JSON.stringify(st));
    const pid = st.pids[0]!;
    const vmDir = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').find((a) => a.startsWith('guest=forkd-'))!.slice('guest=forkd-'.length);
    assert.ok(existsSync(path.join(runtimeDir(), `vm-${vmDir}`)));
    await engine.removeSnapshot(layer);
    assert.ok(await waitFor(() => !pidAlive(pid), 5000), 'the pooled child outlived its snapshot');
    assert.equal(existsSync(path.join(runtimeDir(), `vm-${vmDir}`)), false, 'its run dir was left behind');
    assert.equal(poolOf(layer)!.ready, 0);
    // The pool does not refill a deleted snapshot (its fill fails and backs off).
    await engine.pool.settled();
    assert.equal(poolOf(layer)!.ready, 0);
  } finally {
    engine.configurePool(layer, 0);
    await engine.removeSnapshot(layer).catch(() => undefined);
  }
});
