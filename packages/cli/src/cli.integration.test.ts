import { test, before, after } from 'node:test';
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
// The commands start the home's daemon on demand; it goes with the tests.
after(() => {
  spawnSync('pkill', ['-TERM', '-f', `--socket ${path.join(engine.layout.root, 'forkd.sock')}`]);
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
  // The daemon's request validation answers a malformed tag (the engine's FORKD_E_INVALID_TAG with --local).
  assert.equal(errorCode(invalid), 'FORKD_E_INVALID_ARGUMENT');
  assert.equal(invalid.json!.error.status, 400);
  assert.equal(errorCode(forkd(['fork', '--local', '--tag', '../../etc', '--json'])), 'FORKD_E_INVALID_TAG');
  assert.equal(invalid.status, 2);
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', '0', '--json'])), 'FORKD_E_OUT_OF_RANGE');
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', '1001', '--json'])), 'FORKD_E_OUT_OF_RANGE');
  assert.equal(errorCode(forkd(['fork', '--tag', tag, '-n', 'abc', '--json'])), 'FORKD_E_INVALID_ARGUMENT');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', 'x-small', '--recipe', 'python', '--mem-mib', '64', '--json'])), 'FORKD_E_OUT_OF_RANGE');
  assert.equal(errorCode(forkd(['snapshot', 'create', '--tag', 'x-small', '--recipe', 'python', '--mem-mib', '128', '--json'])), 'FORKD_E_MEMORY_TOO_SMALL');
  // The daemon has its own kernel and QEMU: a different one for one command is --local's.
  assert.equal(errorCode(forkd(['snapshot', 'create', '--local', '--tag', 'x-nokernel', '--recipe', 'base', '--json'], { FORKD_KERNEL: '/nonexistent/vmlinuz' })), 'FORKD_E_KERNEL_NOT_FOUND');
  assert.equal(errorCode(forkd(['--kernel', '/nonexistent/vmlinuz', 'snapshot', 'create', '--local', '--tag', 'x-nokernel', '--recipe', 'base', '--json'])), 'FORKD_E_KERNEL_NOT_FOUND');
  assert.equal(errorCode(forkd(['fork', '--local', '--tag', tag, '--json'], { FORKD_QEMU_BINARY: '/nonexistent/qemu-system-x86_64' })), 'FORKD_E_QEMU_NOT_INSTALLED');
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

test('images and snapshot ls are one listing, through the daemon or --local; doctor reports an acceleration verdict', () => {
  const r = forkd(['images', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const entry = (r.json as unknown as Array<Record<string, unknown>>).find((s) => s.tag === tag);
  assert.ok(entry);
  assert.equal(entry.recipe, 'itest-python');
  assert.equal(typeof entry.qemu, 'string');
  assert.deepEqual(forkd(['snapshot', 'ls', '--json']).json, r.json);
  const local = (forkd(['snapshot', 'ls', '--local', '--json']).json as unknown as Array<Record<string, unknown>>).find((s) => s.tag === tag)!;
  assert.deepEqual({ ...local, created_at: String(local.created_at).slice(0, 19) }, { ...entry, created_at: String(entry.created_at).slice(0, 19) });
  const d = forkd(['doctor', '--json']);
  assert.ok(['kvm', 'tcg'].includes(d.json!.accel.verdict));
});

test('a daemon error names its HTTP status next to its code; an error that never reached the daemon does not', () => {
  const human = forkd(['rmi', 'no-such-tag']);
  assert.equal(human.status, 2);
  assert.match(human.stderr, /^forkd: error FORKD_E_SNAPSHOT_NOT_FOUND \(HTTP 404\): /);
  assert.deepEqual({ code: errorCode(forkd(['rmi', 'no-such-tag', '--json'])), status: forkd(['rmi', 'no-such-tag', '--json']).json!.error.status }, { code: 'FORKD_E_SNAPSHOT_NOT_FOUND', status: 404 });
  const local = forkd(['fork', '--tag', tag, '-n', 'abc']);
  assert.match(local.stderr, /^forkd: error FORKD_E_INVALID_ARGUMENT: /);
  assert.equal(forkd(['fork', '--tag', tag, '-n', 'abc', '--json']).json!.error.status, undefined);
});

test("forkd's spellings: snapshot-info --json, spawn --prewarm (refused by the daemon, with its reason), snapshot-diff --exec-timeout-secs", () => {
  const info = forkd(['snapshot-info', tag, '--json']);
  assert.equal(info.status, 0, info.stderr);
  assert.equal(info.json!.tag, tag);
  assert.deepEqual(forkd(['snapshot', 'info', tag, '--json']).json!.ancestors, info.json!.ancestors);
  const prewarm = forkd(['spawn', '--tag', tag, '--prewarm', '--json']);
  assert.equal(prewarm.json!.error.status, 400, prewarm.stdout);
  assert.match(prewarm.json!.error.message, /prewarm is not supported/);
  assert.equal(forkd(['snapshot-diff', '--from', tag, '--tag', 'x-diff', '--exec', 'true', '--exec-timeout-secs', '0', '--json']).json!.error.code, 'FORKD_E_OUT_OF_RANGE');
});

test('fork through the daemon keeps its report: children gone after, phases only with --local', () => {
  const r = forkd(['fork', '--tag', tag, '-n', '2', '--exec', 'echo ok', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.json!.children.map((c: { output: string; phases: unknown }) => [c.output, c.phases]), [['ok', null], ['ok', null]]);
  const left = forkd(['ls', '--tag', tag, '--json']);
  assert.deepEqual(left.json, []);
});
