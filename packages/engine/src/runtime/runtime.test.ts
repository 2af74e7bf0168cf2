import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { createVmDir, readOwner, runtimeDir } from './dir.js';
import { cleanupStale } from './cleanup.js';
import { stagingOwnerSuffix } from '../util/staging.js';
import { procCmdline, procStartTime } from './proc.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-rt-'));
const run = path.join(tmp, 'run');
process.env.FORKD_RUN_DIR = run;
after(() => fs.rm(tmp, { recursive: true, force: true }));

test('runtimeDir honours FORKD_RUN_DIR and refuses paths too long for sockets', () => {
  assert.equal(runtimeDir(), run);
  const saved = process.env.FORKD_RUN_DIR;
  process.env.FORKD_RUN_DIR = `/tmp/${'x'.repeat(90)}`;
  assert.throws(() => runtimeDir(), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
  process.env.FORKD_RUN_DIR = saved;
});

test('procStartTime parses field 22 (comm may hold spaces and parens)', async () => {
  const st = await procStartTime(process.pid);
  assert.ok(st !== null && st > 0);
  assert.equal(await procStartTime(2 ** 22 + 12345), null);
});

test('createVmDir writes owner.json with our pid and start time; setQemuPid updates it', async () => {
  const d = await createVmDir('unit');
  assert.match(path.basename(d.dir), /^vm-[0-9a-f]{16}$/);
  assert.equal(path.dirname(d.dir), run);
  const o = await readOwner(d.dir);
  assert.equal(o?.owner_pid, process.pid);
  assert.equal(o?.owner_starttime, await procStartTime(process.pid));
  assert.equal(o?.qemu_pid, null);
  assert.equal(o?.kind, 'unit');
  await d.setQemuPid(4242);
  assert.equal((await readOwner(d.dir))?.qemu_pid, 4242);
  // Our own dirs are never touched.
  const r = await cleanupStale();
  assert.ok(r.kept.includes(d.dir));
  assert.ok(existsSync(d.dir));
  await d.remove();
  assert.equal(existsSync(d.dir), false);
});

test('a dead owner\'s dir is removed, but a reused qemu_pid that names another command is not killed', async () => {
  const dir = path.join(run, 'vm-00000000000000aa');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'memory.bin'), 'x');
  // qemu_pid points at an unrelated live process (as after PID reuse).
  const bystander = spawn('sleep', ['30']);
  after(() => bystander.kill('SIGKILL'));
  await fs.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ kind: 'x', owner_pid: 2 ** 22 + 7, owner_starttime: 1, qemu_pid: bystander.pid, created_at: '' }));
  // Same pid, wrong start time: the owner counts as dead too.
  const dir2 = path.join(run, 'vm-00000000000000bb');
  await fs.mkdir(dir2);
  await fs.writeFile(path.join(dir2, 'owner.json'), JSON.stringify({ kind: 'x', owner_pid: process.pid === 1 ? 2 : 1, owner_starttime: 999999999, qemu_pid: null, created_at: '' }));

  const dry = await cleanupStale({ dryRun: true });
  assert.deepEqual(dry.removed.sort(), [dir, dir2]);
  assert.ok(existsSync(dir));

  const r = await cleanupStale();
  assert.deepEqual(r.killed, []);
  assert.deepEqual(r.removed.sort(), [dir, dir2]);
  assert.equal(existsSync(dir), false);
  assert.ok((await procCmdline(bystander.pid!)) !== null, 'the bystander survived');
});

test('abandoned snapshot staging dirs are removed; live ones stay', async () => {
  const snaps = path.join(tmp, 'snapshots');
  const dead = path.join(snaps, '.staging-a-1');
  const live = path.join(snaps, '.staging-b-2');
  const done = path.join(snaps, 'tag');
  for (const d of [dead, live, done]) await fs.mkdir(d, { recursive: true });
  await fs.writeFile(path.join(dead, 'owner.json'), JSON.stringify({ pid: 2 ** 22 + 9, started: Date.now() }));
  await fs.writeFile(path.join(live, 'owner.json'), JSON.stringify({ pid: process.pid, started: Date.now() }));
  const r = await cleanupStale({ snapshotsDir: snaps });
  assert.deepEqual(r.removed, [dead]);
  assert.ok(existsSync(live) && existsSync(done));
});

test('staging dirs that name their owner (images, rootfs trees, removals, snapshots being finalised) are collected when it is dead', async () => {
  const images = path.join(tmp, 'images');
  const rootfs = path.join(tmp, 'rootfs');
  const snaps = path.join(tmp, 'snapshots-named');
  const deadOwner = `o${2 ** 22 + 9}.${Date.now()}`;
  const deadImage = path.join(images, `.staging-0123456789abcdef-${deadOwner}-a1b2c3d4`);
  const deadTree = path.join(rootfs, `.staging-bookworm-${deadOwner}-a1b2c3d4`);
  const deadTrash = path.join(snaps, `.staging-rm-some-tag-${deadOwner}`);
  const finalising = path.join(snaps, `.staging-new-tag-${deadOwner}-0badf00d`); // owner.json already dropped
  const liveImage = path.join(images, `.staging-fedcba9876543210-${stagingOwnerSuffix()}-a1b2c3d4`);
  const unjudged = path.join(rootfs, '.staging-legacy-a1b2c3d4');
  for (const d of [deadImage, deadTree, deadTrash, finalising, liveImage, unjudged]) await fs.mkdir(d, { recursive: true });
  const r = await cleanupStale({ snapshotsDir: snaps, stagingDirs: [images, rootfs] });
  assert.deepEqual(r.removed.sort(), [deadImage, deadTree, deadTrash, finalising].sort());
  assert.ok(existsSync(liveImage) && existsSync(unjudged));
});
