/**
 * Issue 14 §6, last bullet: 200 spawn/kill cycles of children with networking AND quotas (memory,
 * pids) through the real daemon leave no namespace, veth, nft table, cgroup, run dir, overlay or
 * QEMU behind; also when the daemon is killed with -9 in the middle (once with live children, once
 * with a spawn in flight) and a new daemon starts on the same home and run dir. The host's state is
 * read before and after (ip netns, ip link, nft list tables, the daemon's cgroup root, the run dir,
 * the overlays dir, QEMU processes); only what this test's daemon could have made is looked at, so
 * other runs on the machine do not disturb it: with --uplink-netns every link and nft table of the
 * daemon is in the uplink namespace or a child's (taps and per-child tables go with the namespace). When the daemon stops, its empty root cgroup goes too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Controller, type SandboxInfo } from '@forkd/sdk';
import { netnsPrefix, openNetLab, sh, testEngine, type NetLab } from '@forkd/engine/testing';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

const CYCLES = 200;
const BATCH = 10;
/** Quotas every child runs with: a cgroup (memory, pids) per child, on top of its namespace. */
const QUOTAS = { memory_limit_mib: 768, pids_max: 256 } as const;
const CGROUP_BASE = '/sys/fs/cgroup';

let lab: NetLab;
let d: TestDaemon;
let c: Controller;
let prefix = '';
const engine = testEngine();

before(async () => {
  lab = await openNetLab();
  d = await startTestDaemon({
    keeperGraceSecs: 120,
    extraArgs: ['--uplink-netns', lab.uplinkNetns, '--net-pool', lab.pool],
    env: { FORKD_RUN_DIR: lab.runDir },
  });
  c = new Controller({ socketPath: d.socketPath });
  prefix = netnsPrefix(lab.runDir);
});
after(async () => {
  await d?.stop();
  await lab?.close();
});

/** The daemon's root cgroup in every hierarchy it may use (v2: one; v1: one per controller). */
async function cgroupRoots(): Promise<string[]> {
  const host = await engine.cgroups();
  if (host.version === 2) return [path.join(host.base, engine.cgroupRoot)];
  return ['memory', 'cpu', 'pids', 'blkio'].map((c) => path.join(CGROUP_BASE, c, engine.cgroupRoot));
}

const list = (dir: string) => fs.readdir(dir).catch(() => [] as string[]);

/** Everything of the host this test's daemon can make, as sorted text lines. */
async function hostState(): Promise<Record<string, string[]>> {
  const cgroups: string[] = [];
  for (const root of await cgroupRoots()) for (const n of await list(root)) if (/^vm-/.test(n)) cgroups.push(path.join(root, n));
  const qemus = sh('ps', ['-eo', 'pid,args']).split('\n').filter((l) => /qemu-system/.test(l) && l.includes(lab.runDir));
  return {
    netns: sh('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(prefix)),
    // Veths of children live in the uplink namespace; taps inside each child's namespace (gone with it).
    uplinkLinks: sh('ip', ['-n', lab.uplinkNetns, '-o', 'link']).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter(Boolean),
    uplinkNft: sh('ip', ['netns', 'exec', lab.uplinkNetns, 'nft', 'list', 'tables']).split('\n').filter(Boolean),
    cgroups,
    runDir: (await list(lab.runDir)).filter((n) => /vm-/.test(n)),
    overlays: await list(engine.layout.overlays),
    qemus,
  };
}

function sorted(s: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, [...v].sort()]));
}

/** Waits (cleanup by the keeper or the next daemon is asynchronous) until the host is back to `want`. */
async function assertBackTo(want: Record<string, string[]>, when: string): Promise<void> {
  let now = sorted(await hostState());
  for (let i = 0; i < 100 && JSON.stringify(now) !== JSON.stringify(sorted(want)); i++) {
    await new Promise((r) => setTimeout(r, 200));
    now = sorted(await hostState());
  }
  assert.deepEqual(now, sorted(want), `${when}: leftovers\n${d.log().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-20).join('\n')}`);
}

async function spawnBatch(): Promise<SandboxInfo[]> {
  const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: BATCH, network: true, ...QUOTAS });
  assert.equal(new Set(sbs.map((s) => s.netns)).size, BATCH);
  for (const s of sbs) {
    assert.equal(s.memory_limit_mib, QUOTAS.memory_limit_mib);
    assert.equal(s.limits.pids_max, QUOTAS.pids_max);
  }
  return sbs;
}

async function killAll(): Promise<void> {
  const live = await c.listSandboxes();
  await Promise.all(live.map((s) => c.killSandbox(s.id)));
}

test(`${CYCLES} spawn/kill cycles with networking and quotas (batches of ${BATCH}), two kill -9 of the daemon among them, leave nothing behind`, async () => {
  // One child first: the uplink's one shared table is made with the first networked child and stays
  // while the daemon runs (its cost does not grow with children); the baseline includes it.
  await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, ...QUOTAS });
  await killAll();
  const baseline = await hostState();
  assert.equal(baseline.uplinkNft!.length, 1, `the uplink has its shared table: ${baseline.uplinkNft}`);
  const started = Date.now();
  let cycles = 0;
  let round = 0;
  while (cycles < CYCLES) {
    round++;
    if (round === 5) {
      // A crash with live children: the next daemon adopts them (cgroups, namespaces and all), then they are killed.
      const sbs = await spawnBatch();
      const mid = sorted(await hostState());
      assert.equal(mid.netns!.length, BATCH);
      assert.ok(mid.cgroups!.length >= BATCH, `expected a cgroup per child, got ${mid.cgroups!.length}`);
      await d.kill9();
      await d.restart();
      assert.deepEqual((await c.listSandboxes()).map((s) => s.id).sort(), sbs.map((s) => s.id).sort(), 'the next daemon did not adopt the children');
      await killAll();
      await assertBackTo(baseline, 'after kill -9 with live children and their kill');
    } else if (round === 12) {
      // A crash with a spawn in flight: half-made children (namespace made, QEMU starting) are the keeper's or the next daemon's to remove.
      const inFlight = c.spawnSandboxes({ snapshot_tag: d.tag, n: BATCH, network: true, ...QUOTAS }).then(() => 'done', (e: Error) => e.message);
      await waitFor(async () => (await hostState()).netns!.length > 0, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      await d.kill9();
      process.stderr.write(`# spawn in flight at kill -9: ${await inFlight}\n`);
      await d.restart();
      await killAll();
      await assertBackTo(baseline, 'after kill -9 with a spawn in flight');
    } else {
      await spawnBatch();
      await killAll();
    }
    cycles += BATCH;
  }
  process.stderr.write(`# ${cycles} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s (load ${sh('cat', ['/proc/loadavg']).trim()})\n`);
  await assertBackTo(baseline, `after ${cycles} cycles`);
});

test('a stopped daemon leaves no cgroup root, keeper socket or VM of its own', async () => {
  // At least one child ran with quotas, so the root exists while the daemon runs.
  await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, ...QUOTAS });
  await killAll();
  const roots = await cgroupRoots();
  const present = async () => (await Promise.all(roots.map((r) => fs.access(r).then(() => r, () => null)))).filter((r): r is string => r !== null);
  assert.ok((await present()).length > 0, 'no root cgroup while the daemon runs: the test proves nothing');
  await d.stop();
  assert.deepEqual(await present(), [], 'the daemon left its root cgroup');
  // The keeper stopped with the daemon (--on-stop end): nothing of it stays in the run dir.
  await waitFor(async () => (await list(lab.runDir)).length === 0, 10_000).catch(() => undefined);
  assert.deepEqual(await list(lab.runDir), []);
  assert.deepEqual(sh('ps', ['-eo', 'pid,args']).split('\n').filter((l) => /qemu-system/.test(l) && l.includes(lab.runDir)), []);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
