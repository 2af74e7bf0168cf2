// `forkd serve --warm-pool TAG=N` with real VMs: the pool shows in /metrics, a REST spawn takes its
// children, pooled VMs count against --max-sandboxes and give way to real work, and after kill -9
// of the daemon the next one leaves none of the old pooled QEMUs behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Controller } from '@forkd/sdk';
import { pidAlive, testEngine, waitFor } from '@forkd/engine/testing';
import { runtimeDir } from '@forkd/engine';
import { startTestDaemon } from './testing/daemon.js';

async function poolReady(c: Controller, tag: string): Promise<number> {
  const m = new RegExp(`^forkd_warm_pool_ready\\{tag="${tag}"\\} (\\d+)`, 'm').exec(await c.metrics());
  return m ? Number(m[1]) : 0;
}

async function waitPool(c: Controller, tag: string, n: number, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await poolReady(c, tag)) !== n) {
    if (Date.now() > deadline) throw new Error(`pool of ${tag} did not reach ${n}: ${await poolReady(c, tag)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Paused (pooled) QEMUs started by a daemon of this test: their run dir is the vm dir named in -name. */
function pooledPids(): number[] {
  const home = testEngine().layout.root;
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv[0]!.includes('qemu-system') && argv.includes('-S') && argv.includes('-incoming') && argv.some((a) => a.includes(`mem-path=${home}`));
    } catch {
      return false;
    }
  });
}

function runDirOf(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return path.join(runtimeDir(), `vm-${argv.find((a) => a.startsWith('guest=forkd-'))!.slice('guest=forkd-'.length)}`);
}

test('--warm-pool: REST spawns take pooled children, the pool counts against max-sandboxes, and kill -9 leaves no pooled QEMU', async () => {
  const d = await startTestDaemon({ keeperGraceSecs: 60, extraArgs: ['--warm-pool', 'itest-python=2', '--max-sandboxes', '3'] });
  try {
    const c = new Controller({ socketPath: d.socketPath });
    await waitPool(c, d.tag, 2);
    const before = pooledPids();
    assert.equal(before.length, 2, `pooled QEMUs: ${before}`);
    const [sb] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
    assert.ok(before.includes(sb!.pid!), 'the REST spawn did not take a pooled child');
    assert.equal((await c.eval(sb!.id, { code: 'forkd_parent_marker' })).result, '424242');
    assert.match(await c.metrics(), new RegExp(`forkd_warm_pool_takes\\{tag="${d.tag}",result="hit"\\} 1`));
    // 1 sandbox + 2 pooled = the cap of 3: the pool refills to 2 only as far as the cap allows,
    // and a spawn of 2 more still fits because pooled children give way.
    await waitPool(c, d.tag, 2);
    const two = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 2 });
    assert.equal(two.length, 2);
    await Promise.all(two.map((s) => c.killSandbox(s.id)));
    await waitPool(c, d.tag, 2);
    // The sandbox taken from the pool keeps -S in its argv (argv never changes): it is not pooled.
    const pooled = pooledPids().filter((p) => p !== sb!.pid);
    assert.equal(pooled.length, 2);
    const dirs = pooled.map(runDirOf);
    await d.kill9();
    for (const p of pooled) assert.ok(pidAlive(p), 'the keeper holds pooled QEMUs across a daemon crash, like any VM');
    await d.restart();
    // The new daemon reaps the old pooled VMs (nobody recorded them) and fills its own pool.
    assert.ok(await waitFor(() => pooled.every((p) => !pidAlive(p)), 20_000), 'an old pooled QEMU survived the restart');
    for (const dir of dirs) assert.equal(existsSync(dir), false, `run dir ${dir} left behind`);
    assert.ok((await c.listSandboxes()).some((s) => s.id === sb!.id), 'the adopted sandbox is gone');
    await waitPool(c, d.tag, 2); // cap 3: the adopted sandbox + two pooled
  } finally {
    await d.stop();
  }
  // --on-stop end: the stopped daemon took its pool with it.
  assert.ok(await waitFor(() => pooledPids().length === 0, 10_000), `pooled QEMUs left after stop: ${pooledPids()}`);
});
