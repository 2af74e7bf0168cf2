import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, type Job, type SnapshotInfo } from '@forkd/sdk';
import { forkdHome } from '@forkd/engine';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let d: TestDaemon;
let c: Controller;
const tag = `rc-${crypto.randomBytes(3).toString('hex')}`;

before(async () => {
  // The python recipe, and one whose warm-up fails (same packages: the cached image is reused).
  const recipes = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-recipes-'));
  const python = JSON.parse(await fs.readFile(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'recipes', 'python.json'), 'utf8')) as Record<string, unknown>;
  await fs.writeFile(path.join(recipes, 'python.json'), JSON.stringify(python));
  await fs.writeFile(path.join(recipes, 'broken.json'), JSON.stringify({ ...python, name: 'broken', warmup: { python: "raise RuntimeError('warm-up breaks')" } }));
  d = await startTestDaemon({ env: { FORKD_RECIPES_DIR: recipes } });
  c = new Controller({ socketPath: d.socketPath });
});
after(async () => {
  await c?.deleteSnapshot(tag, { cascade: true, force: true }).catch(() => undefined);
  await d?.stop();
});

test('snapshot creation is a job with progress: 202 at once, phases while it runs, then a bootable snapshot', async () => {
  const t0 = Date.now();
  const job = (await c.createSnapshot({ tag, recipe: 'python', mem_mib: 384 })) as Job;
  assert.ok(Date.now() - t0 < 5000, 'the request blocked for the boot');
  assert.match(job.id, /^job-[0-9a-f]{16}$/);
  assert.equal(job.kind, 'snapshot.create');
  // A second creation of the same tag while the first runs is a conflict, not a race.
  await assert.rejects(c.createSnapshot({ tag, recipe: 'python' }), (e: { code?: string }) => e.code === 'FORKD_E_SNAPSHOT_EXISTS');
  const phases = new Set<string>();
  const result = (await c.waitJob(job.id, { pollMs: 200, onProgress: (j) => phases.add(j.progress.phase) })) as SnapshotInfo;
  for (const p of ['boot', 'warmup', 'done']) assert.ok(phases.has(p), `progress never showed ${p}: ${[...phases].join(',')}`);
  assert.equal(result.tag, tag);
  assert.deepEqual([result.recipe, result.mem_mib, result.bootable, result.language], ['python', 384, true, 'python']);
  const done = await c.getJob(job.id);
  assert.equal(done.status, 'succeeded');
  assert.ok(done.finished_at_unix !== null);
  const [sb] = await c.spawnSandboxes({ snapshot_tag: tag, n: 1 });
  const r = await c.eval(sb!.id, { code: "'numpy' in sys.modules and int(np.arange(5).sum())" });
  assert.equal(r.result, '10');
  assert.equal((await c.getSnapshot(tag)).live_sandboxes, 1);
  await c.killSandbox(sb!.id);
});

test('a failing creation is a failed job with its code and the guest\'s reason, and leaves nothing behind', async () => {
  const bad = `${tag}-broken`;
  const job = (await c.createSnapshot({ tag: bad, recipe: 'broken' })) as Job;
  await assert.rejects(c.waitJob(job.id, { pollMs: 200 }), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_SNAPSHOT_FAILED' && /warm-up breaks/.test(e.message ?? ''));
  const j = await c.getJob(job.id);
  assert.deepEqual([j.status, j.error?.code], ['failed', 'FORKD_E_SNAPSHOT_FAILED']);
  await assert.rejects(c.getSnapshot(bad), (e: { code?: string }) => e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  const snapshotsDir = path.join(forkdHome(), 'snapshots');
  assert.deepEqual(readdirSync(snapshotsDir).filter((n) => n.includes(bad)), [], 'a half-written snapshot was left behind');
});
