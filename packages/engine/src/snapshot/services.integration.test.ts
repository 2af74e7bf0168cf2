/**
 * Recipe services on real VMs: a service started in the parent is running in every child, and a
 * service that fails (never ready, exits at once) or a recipe that cannot be built fails with its
 * code and its own output, leaving no snapshot, no staging directory, no image and no VM.
 * Uses the python recipe's image (same packages: no extra build) with services added.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { openNetLab, type NetLab } from '../testing/net-lab.js';
import { agentOf } from '../testing/fixture.js';
import { ensureRecipeSnapshot } from '../testing/recipe-snapshot.js';
import { loadRecipe, parseRecipe, type Recipe } from '../recipe/recipe.js';
import type { Engine } from '../engine.js';
import { homeLayout } from '../home/paths.js';
import type { Sandbox } from '../sandbox/sandbox.js';

let lab: NetLab;
let engine: Engine;
let python: Recipe;
const live: Sandbox[] = [];

before(async () => {
  lab = await openNetLab();
  process.env.FORKD_RUN_DIR = lab.runDir;
  const { Engine } = await import('../engine.js');
  engine = new Engine({ accel: 'auto', network: { pool: lab.pool, uplinkNetns: lab.uplinkNetns } });
  python = await loadRecipe('python');
});
after(async () => {
  await Promise.all(live.map((s) => s.kill().catch(() => undefined)));
  await engine?.cleanup().catch(() => undefined);
  await lab?.close();
});

const withServices = (name: string, services: unknown[]): Recipe => parseRecipe(JSON.stringify({ ...python, name, warmup: {}, services }));

const vmDirs = () => new Set(fs.readdirSync(lab.runDir).filter((n) => n.startsWith('vm-')));

/** Nothing half-made: no snapshot by that tag, no staging dir, no VM dir (its QEMU is killed first) beyond those there before. */
async function assertNothingLeft(tag: string, vmsBefore: Set<string>): Promise<void> {
  await assert.rejects(engine.getSnapshot(tag), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  const staged = fs.readdirSync(homeLayout().snapshots).filter((n) => n.includes(tag));
  assert.deepEqual(staged, [], 'no staging directory of the failed snapshot');
  assert.deepEqual([...vmDirs()].filter((n) => !vmsBefore.has(n)), [], 'no VM run dir left');
}

test('a service started in the parent is running in every child: its port answers through each child\'s exposed port', async () => {
  const recipe = withServices('itest-services-web', [
    // The answer names the guest's boot id: the same in every child (they are copies of the parent), proving the parent's process answers.
    { name: 'web', start: 'mkdir -p /srv/w && cat /proc/sys/kernel/random/boot_id > /srv/w/id.txt && exec python3 -m http.server 8000 --bind 0.0.0.0 --directory /srv/w', ready: { url: 'http://127.0.0.1:8000/id.txt' }, timeout_secs: 120 },
  ]);
  const { tag } = await ensureRecipeSnapshot(engine, 'itest-web', recipe);
  const kids = await engine.spawn({ tag, n: 2, network: false });
  live.push(...kids);
  const bodies: string[] = [];
  for (const kid of kids) {
    const list = await agentOf(kid).servicesList();
    assert.deepEqual(list.services.map((s) => [s.name, s.running]), [['web', true]]);
    // The server's pid in the child is the one the parent started (nothing restarted it).
    const ps = await kid.commands.exec({ shell: `cat /proc/${list.services[0]!.pid}/cmdline | tr '\\0' ' '`, timeout_ms: 20_000 });
    assert.match(ps.stdout, /http\.server 8000/);
    const { host, port } = await kid.exposePort(8000);
    const res = await fetch(`http://${host}:${port}/id.txt`);
    assert.equal(res.status, 200);
    bodies.push((await res.text()).trim());
  }
  assert.match(bodies[0]!, /^[0-9a-f-]{36}$/);
  assert.equal(bodies[0], bodies[1]);
  await Promise.all(kids.map((k) => k.kill()));
});

test('a service that never becomes ready: FORKD_E_SERVICE_NOT_READY with its output, and nothing left behind', async () => {
  const recipe = withServices('itest-services-never', [
    { name: 'sleepy', start: 'echo "sleepy: waiting for a config that never comes"; exec sleep 100000', ready: { port: 9 }, timeout_secs: 5 },
  ]);
  const tag = 'itest-svc-never';
  const vmsBefore = vmDirs();
  const t0 = Date.now();
  const err = await engine.createSnapshot({ tag, recipe }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ForkdError, String(err));
  assert.equal(err.code, 'FORKD_E_SERVICE_NOT_READY', err.message);
  assert.match(err.message, /sleepy was not ready within 5 s/);
  assert.match(err.message, /waiting for a config that never comes/);
  assert.equal(err.details?.service, 'sleepy');
  console.log(`# not-ready error after ${Date.now() - t0} ms (boot included)`);
  await assertNothingLeft(tag, vmsBefore);
});

test('a start command that exits at once: FORKD_E_SERVICE_EXITED with its exit code and output, and nothing left behind', async () => {
  const recipe = withServices('itest-services-exit', [
    { name: 'oops', start: 'echo "oops: missing /etc/oops.conf" >&2; exit 42', ready: { port: 9 }, timeout_secs: 300 },
  ]);
  const tag = 'itest-svc-exit';
  const vmsBefore = vmDirs();
  const err = await engine.createSnapshot({ tag, recipe }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ForkdError, String(err));
  assert.equal(err.code, 'FORKD_E_SERVICE_EXITED', err.message);
  assert.equal(err.details?.exit_code, 42);
  assert.match(err.message, /oops exited with code 42/);
  assert.match(err.message, /missing \/etc\/oops\.conf/);
  await assertNothingLeft(tag, vmsBefore);
});

test('a recipe with an unknown package: FORKD_E_IMAGE_BUILD_FAILED naming it, and no image or root filesystem left', async () => {
  const recipe = parseRecipe(JSON.stringify({ name: 'itest-unknown-pkg', packages: ['forkd-no-such-package-xyz'] }));
  const layout = homeLayout();
  const before = (d: string) => new Set(fs.existsSync(d) ? fs.readdirSync(d) : []);
  const [images0, rootfs0] = [before(layout.images), before(layout.rootfsCache)];
  const err = await engine.buildImage(recipe).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ForkdError, String(err));
  assert.equal(err.code, 'FORKD_E_IMAGE_BUILD_FAILED', err.message);
  assert.match(err.message, /forkd-no-such-package-xyz/);
  assert.deepEqual([...before(layout.images)].filter((n) => !images0.has(n)), [], 'no new image directory');
  assert.deepEqual([...before(layout.rootfsCache)].filter((n) => !rootfs0.has(n)), [], 'no new root filesystem');
});
