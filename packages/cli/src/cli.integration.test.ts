import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFixtureSnapshot, testEngine } from '../../engine/src/testing/fixture.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'forkd.js');
const engine = testEngine();
let tag = '';
before(async () => {
  tag = await ensureFixtureSnapshot(engine);
});

function forkd(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not JSON */
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: json as Record<string, any> | null };
}

function errorCode(r: ReturnType<typeof forkd>): string | undefined {
  return r.json?.error?.code;
}

test('fork --exec runs in every child and reports timings', () => {
  const r = forkd(['fork', '--tag', tag, '-n', '3', '--exec', 'echo hello-$((6*7))', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const rep = r.json!;
  assert.equal(rep.children.length, 3);
  for (const c of rep.children) {
    assert.equal(c.output, 'hello-42');
    assert.ok(c.spawn_to_ready_ms > 0 && c.call_ms > 0);
  }
  assert.ok(rep.spawn_to_ready.max <= rep.all_ready_ms + 1);
});

test('fork --eval uses the snapshot language (python) and a human table', () => {
  const r = forkd(['fork', '--tag', tag, '-n', '2', '--eval', 'forkd_parent_marker + 1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /CHILD\s+RUNNING\s+READY\s+CALL\s+RESULT/);
  assert.equal((r.stdout.match(/424243/g) ?? []).length, 2);
  assert.match(r.stdout, /spawn→ready/);
});

test('bad inputs give stable error codes', async () => {
  assert.equal(errorCode(forkd(['fork', '--tag', 'no-such-tag', '--json'])), 'FORKD_E_SNAPSHOT_NOT_FOUND');
  const invalid = forkd(['fork', '--tag', '../../etc', '--json']);
  assert.equal(errorCode(invalid), 'FORKD_E_INVALID_TAG');
  assert.equal(invalid.status, 2);
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', '0', '--json'])), 'FORKD_E_OUT_OF_RANGE');
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', '1001', '--json'])), 'FORKD_E_OUT_OF_RANGE');
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', 'abc', '--json'])), 'FORKD_E_INVALID_ARGUMENT');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', 'x-small', '--recipe', 'python', '--mem-mib', '64', '--json'])), 'FORKD_E_MEMORY_TOO_SMALL');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', 'x-nokernel', '--recipe', 'base', '--json'], { FORKD_KERNEL: '/nonexistent/vmlinuz' })), 'FORKD_E_KERNEL_NOT_FOUND');
  assert.equal(errorCode(forkd(['--kernel', '/nonexistent/vmlinuz', 'snapshot', 'create', '--tag', 'x-nokernel', '--recipe', 'base', '--json'])), 'FORKD_E_KERNEL_NOT_FOUND');
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '--json'], { FORKD_QEMU_BINARY: '/nonexistent/qemu-system-x86_64' })), 'FORKD_E_QEMU_NOT_INSTALLED');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', 'x-recipe', '--recipe', 'no-such-recipe', '--json'])), 'FORKD_E_RECIPE_NOT_FOUND');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', tag, '--recipe', 'python', '--json'])), 'FORKD_E_SNAPSHOT_EXISTS');
  assert.equal(errorCode(forkd(['rmi', 'no-such-tag', '--json'])), 'FORKD_E_SNAPSHOT_NOT_FOUND');
  // Nothing half-done: no staging directories or snapshots were left by the failures above.
  const names = await fs.readdir(engine.layout.snapshots);
  assert.deepEqual(names.filter((n) => n.startsWith('.staging-') || n.startsWith('x-')), []);
});

test('a snapshot made by another QEMU version or acceleration is refused', async () => {
  const src = (await engine.getSnapshot(tag)).dir;
  for (const [name, patch] of [
    ['itest-otherqemu', (m: any) => ({ ...m, qemu: { ...m.qemu, version: '6.0.0' } })],
    ['itest-otheraccel', (m: any) => ({ ...m, accel: m.accel === 'tcg' ? 'kvm' : 'tcg' })],
  ] as const) {
    const dir = path.join(engine.layout.snapshots, name);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir);
    try {
      for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fs.link(path.join(src, f), path.join(dir, f));
      const m = JSON.parse(await fs.readFile(path.join(src, 'snapshot.json'), 'utf8'));
      await fs.writeFile(path.join(dir, 'snapshot.json'), JSON.stringify(patch({ ...m, tag: name })));
      const r = forkd(['fork', '--tag', name, '--json']);
      assert.equal(errorCode(r), 'FORKD_E_SNAPSHOT_INCOMPATIBLE', r.stdout + r.stderr);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
});

test('images lists the fixture snapshot; doctor reports an acceleration verdict', () => {
  const r = forkd(['images', '--json']);
  assert.equal(r.status, 0);
  const entry = (r.json as unknown as Array<Record<string, unknown>>).find((s) => s.tag === tag);
  assert.ok(entry);
  assert.equal(entry.recipe, 'itest-python');
  const d = forkd(['doctor', '--json']);
  assert.ok(['kvm', 'tcg'].includes(d.json!.accel.verdict));
});
