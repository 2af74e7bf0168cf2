import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Controller, type SnapshotInfo } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let d: TestDaemon;
let c: Controller;
const run = crypto.randomBytes(3).toString('hex');
/** Snapshots this file makes, removed (with their layers) at the end: the store is shared. */
const made: string[] = [];
const tag = (n: string) => {
  const t = `rb-${run}-${n}`;
  made.push(t);
  return t;
};

before(async () => {
  d = await startTestDaemon();
  c = new Controller({ socketPath: d.socketPath });
});
after(async () => {
  for (const t of made) await c.deleteSnapshot(t, { cascade: true, force: true }).catch(() => undefined);
  await d?.stop();
});

const codeOf = (e: unknown) => (e as { code?: string }).code;
async function py(id: string, code: string): Promise<string | null> {
  const r = await c.eval(id, { code });
  assert.equal(r.error, null, r.traceback ?? '');
  return r.result;
}

test('branch over REST: 201 with the pause, children start at the branch; wait=false is 202 with the snapshot "writing", then listed ready', async () => {
  const [src] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  await py(src!.id, "v = 'at-branch'");
  await c.exec(src!.id, { cmd: 'echo disk-at-branch > /root/b.txt' });
  const b = (await c.branchSandbox(src!.id, { tag: tag('b1') })) as SnapshotInfo;
  assert.equal(b.parent_tag, d.tag);
  assert.equal(b.branched_from, `sandbox:${src!.id}`);
  assert.ok(b.pause_ms !== null && b.pause_ms > 0 && b.pause_ms < 2000, `pause ${b.pause_ms}`);
  assert.equal((await c.getSandbox(src!.id)).branch_count, 1);
  await py(src!.id, "v = 'later'");
  const [k] = await c.spawnSandboxes({ snapshot_tag: b.tag, n: 1 });
  assert.equal(await py(k!.id, 'v'), "'at-branch'");
  assert.equal((await c.exec(k!.id, { cmd: 'cat /root/b.txt' })).stdout, 'disk-at-branch\n');

  await assert.rejects(c.branchSandbox(src!.id, { tag: b.tag }), (e) => codeOf(e) === 'FORKD_E_SNAPSHOT_EXISTS');
  await assert.rejects(c.branchSandbox(src!.id, { tag: d.tag }), (e) => codeOf(e) === 'FORKD_E_SNAPSHOT_EXISTS');
  await assert.rejects(c.branchSandbox('sb-0123456789abcdef', {}), (e) => codeOf(e) === 'FORKD_E_SANDBOX_NOT_FOUND');
  await assert.rejects(c.branchSandbox(src!.id, { tag: '../x' }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  // wait=false: 202 at once with the snapshot as forkd lists it while it is written, and its job.
  const pending = await c.branchSandbox(src!.id, { tag: tag('b2'), mode: 'full', wait: false });
  assert.ok('job_id' in pending, `a no-wait branch answered ${JSON.stringify(pending)}`);
  assert.deepEqual([pending.tag, pending.status, pending.bootable, pending.parent_tag, pending.branched_from], [tag('b2'), 'writing', false, d.tag, `sandbox:${src!.id}`]);
  assert.equal((await c.getJob(pending.job_id)).kind, 'snapshot.branch');
  const listed = await c.listSnapshots();
  const writing = listed.find((s) => s.tag === tag('b2'));
  if (writing?.status === 'writing') {
    // Still being written: listed, not bootable, spawning from it is a conflict.
    assert.equal(writing.bootable, false);
    await assert.rejects(c.spawnSandboxes({ snapshot_tag: tag('b2'), n: 1 }), (e) => codeOf(e) === 'FORKD_E_CONFLICT');
  }
  const done = (await c.waitJob(pending.job_id, { pollMs: 100 })) as SnapshotInfo;
  assert.equal(done.tag, tag('b2'));
  assert.deepEqual((await c.listSnapshots()).filter((s) => s.tag === tag('b2')).map((s) => [s.status, s.bootable]), [['ready', true]]);
  assert.equal((await c.getSnapshot(tag('b2'))).status, 'ready');
  const [k2] = await c.spawnSandboxes({ snapshot_tag: tag('b2'), n: 1 });
  assert.equal(await py(k2!.id, 'v'), "'later'");
});

test('fork: one capture, count children at that instant; the source and its id are unchanged', async () => {
  const [src] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, metadata: { who: 'parent' } });
  await py(src!.id, 'counter = 41');
  const f = await c.forkSandbox(src!.id, { count: 3, metadata: { role: 'fork' } });
  made.push(f.snapshot_tag);
  assert.equal(f.sandboxes.length, 3);
  await py(src!.id, 'counter = 0');
  for (const s of f.sandboxes) {
    assert.equal(s.snapshot_tag, f.snapshot_tag);
    assert.deepEqual(s.metadata, { who: 'parent', role: 'fork' });
    assert.equal(await py(s.id, 'counter + 1'), '42');
  }
  // Each fork child diverges on its own.
  await py(f.sandboxes[0]!.id, 'counter = 100');
  assert.equal(await py(f.sandboxes[1]!.id, 'counter'), '41');
  assert.equal(await py(src!.id, 'counter'), '0');
  await assert.rejects(c.forkSandbox('sb-0123456789abcdef', { count: 1 }), (e) => codeOf(e) === 'FORKD_E_SANDBOX_NOT_FOUND');
});

test('diff, compact, info, tree and delete with dependents over REST', async () => {
  const l1 = (await c.diffSnapshot(d.tag, { to: tag('l1'), cmd: 'echo one > /root/one && echo ok' })) as SnapshotInfo;
  const l2 = (await c.diffSnapshot(l1.tag, { to: tag('l2'), cmd: 'echo two > /root/two' })) as SnapshotInfo;
  await assert.rejects(c.diffSnapshot(l2.tag, { to: tag('bad'), cmd: 'exit 5' }), (e) => codeOf(e) === 'FORKD_E_COMMAND_FAILED');
  await assert.rejects(c.diffSnapshot(l2.tag, { to: l1.tag, cmd: 'true' }), (e) => codeOf(e) === 'FORKD_E_SNAPSHOT_EXISTS');
  const info = await c.snapshotInfo(l2.tag);
  assert.deepEqual([info.chain_depth, info.ancestors], [2, [d.tag, l1.tag]]);
  assert.ok(info.layer_physical_bytes < info.memory_logical_bytes / 4, `layer ${info.layer_physical_bytes}`);
  assert.deepEqual((await c.snapshotInfo(l1.tag)).dependents, [l2.tag]);
  const flat = (await c.compactSnapshot(l2.tag, { to: tag('flat') })) as SnapshotInfo;
  assert.equal(flat.parent_tag, null);
  const [k] = await c.spawnSandboxes({ snapshot_tag: flat.tag, n: 1 });
  assert.equal((await c.exec(k!.id, { cmd: 'cat /root/one /root/two' })).stdout, 'one\ntwo\n');
  const tree = await c.snapshotTree();
  const root = tree.roots.find((r) => r.tag === d.tag)!;
  const n1 = root.children.find((ch) => ch.tag === l1.tag)!;
  assert.deepEqual(n1.children.map((ch) => ch.tag), [l2.tag]);
  assert.ok(tree.roots.find((r) => r.tag === flat.tag)!.sandboxes.includes(k!.id));
  await assert.rejects(c.deleteSnapshot(l1.tag), (e) => codeOf(e) === 'FORKD_E_HAS_DEPENDENTS' && String((e as Error).message).includes(l2.tag));
  await c.deleteSnapshot(l1.tag, { cascade: true });
  await assert.rejects(c.getSnapshot(l2.tag), (e) => codeOf(e) === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  await assert.rejects(c.deleteSnapshot(flat.tag), (e) => codeOf(e) === 'FORKD_E_IN_USE');
});

test('workspace: suspended, daemon restarted, resumed with the same id, files and interpreter state', async () => {
  const name = `w${run}`;
  const w = await c.createWorkspace({ name, snapshot_tag: d.tag, metadata: { team: 'x' }, envs: { WS_ENV: 'kept' } });
  assert.equal(w.status, 'running');
  await py(w.sandbox_id, "notes = ['a', 'b']");
  await c.exec(w.sandbox_id, { cmd: 'mkdir -p /root/proj && echo draft > /root/proj/doc.txt' });
  const s = await c.suspendWorkspace(name);
  assert.equal(s.status, 'suspended');
  assert.match(s.state_tag ?? '', new RegExp(`^ws-${name}-s\\d{6}$`));
  await assert.rejects(c.getSandbox(w.sandbox_id), (e) => codeOf(e) === 'FORKD_E_SANDBOX_NOT_FOUND');
  await assert.rejects(c.suspendWorkspace(name), (e) => codeOf(e) === 'FORKD_E_CONFLICT');
  await d.kill9();
  await d.restart();
  assert.equal((await c.getWorkspace(name)).status, 'suspended');
  const r = await c.resumeWorkspace(name);
  assert.equal(r.sandbox_id, w.sandbox_id);
  assert.equal(await py(w.sandbox_id, 'notes'), "['a', 'b']");
  assert.equal((await c.exec(w.sandbox_id, { cmd: 'cat /root/proj/doc.txt; echo $WS_ENV' })).stdout, 'draft\nkept\n');
  assert.deepEqual((await c.getSandbox(w.sandbox_id)).metadata, { team: 'x' });
  assert.equal((await c.getSandbox(w.sandbox_id)).workspace, name);
  await assert.rejects(c.resumeWorkspace(name), (e) => codeOf(e) === 'FORKD_E_CONFLICT');
  // A second suspend stacks a layer on the first; delete removes the workspace and its state snapshots.
  await py(w.sandbox_id, "notes.append('c')");
  const s2 = await c.suspendWorkspace(name);
  assert.notEqual(s2.state_tag, s.state_tag);
  await c.resumeWorkspace(name);
  assert.equal(await py(w.sandbox_id, 'notes'), "['a', 'b', 'c']");
  await c.deleteWorkspace(name);
  await assert.rejects(c.getWorkspace(name), (e) => codeOf(e) === 'FORKD_E_WORKSPACE_NOT_FOUND');
  await assert.rejects(c.getSandbox(w.sandbox_id), (e) => codeOf(e) === 'FORKD_E_SANDBOX_NOT_FOUND');
  assert.deepEqual((await c.listSnapshots()).filter((x) => x.tag.startsWith(`ws-${name}-`)), []);
});

/** The memory limit in QEMU's own memory cgroup (v1 memory.limit_in_bytes or v2 memory.max), in MiB. */
async function cgroupMemoryMib(pid: number): Promise<number> {
  const lines = (await fs.readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  const file = v1 ? path.join('/sys/fs/cgroup/memory', v1.split(':').slice(2).join(':'), 'memory.limit_in_bytes') : path.join('/sys/fs/cgroup', lines.find((l) => l.startsWith('0::'))!.slice(3), 'memory.max');
  return Number((await fs.readFile(file, 'utf8')).trim()) / (1024 * 1024);
}

test('workspace limits: created with spawn\'s limit fields, kept across suspend and resume, changed by a resume', async () => {
  const name = `l${run}`;
  const w = await c.createWorkspace({ name, snapshot_tag: d.tag, memory_limit_mib: 640, pids_max: 200 });
  try {
    assert.equal(w.memory_limit_mib, 640);
    assert.equal(w.limits.pids_max, 200);
    const sb = await c.getSandbox(w.sandbox_id);
    assert.deepEqual([sb.memory_limit_mib, sb.limits.pids_max], [640, 200]);
    assert.equal(await cgroupMemoryMib(sb.pid!), 640, 'the limit is applied to QEMU');
    await c.suspendWorkspace(name);
    const kept = await c.resumeWorkspace(name);
    assert.deepEqual([kept.memory_limit_mib, kept.limits.pids_max], [640, 200]);
    assert.equal(await cgroupMemoryMib((await c.getSandbox(w.sandbox_id)).pid!), 640, 'a resumed workspace lost its limit');
    await c.suspendWorkspace(name);
    await assert.rejects(c.resumeWorkspace(name, { cpu_quota: 1000 }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
    const changed = await c.resumeWorkspace(name, { memory_limit_mib: 768, cpu_quota: 0.5 });
    assert.deepEqual([changed.memory_limit_mib, changed.limits.pids_max, changed.limits.cpu_quota], [768, 200, 0.5]);
    const after = await c.getSandbox(w.sandbox_id);
    assert.deepEqual([after.memory_limit_mib, after.limits.cpu_quota], [768, 0.5]);
    assert.equal(await cgroupMemoryMib(after.pid!), 768);
  } finally {
    await c.deleteWorkspace(name).catch(() => undefined);
  }
});

test('workspace bad inputs and adopting a running sandbox', async () => {
  const [sb] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, timeout_ms: 60_000 });
  const name = `a${run}`;
  await assert.rejects(c.createWorkspace({ name, snapshot_tag: d.tag, sandbox_id: sb!.id } as never), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(c.createWorkspace({ name: '../x', snapshot_tag: d.tag }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(c.createWorkspace({ name, snapshot_tag: 'no-such-tag' }), (e) => codeOf(e) === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  await assert.rejects(c.suspendWorkspace('no-such-ws'), (e) => codeOf(e) === 'FORKD_E_WORKSPACE_NOT_FOUND');
  // A running sandbox keeps the limits and network it was spawned with: none may be asked for here.
  await assert.rejects(c.createWorkspace({ name, sandbox_id: sb!.id, memory_limit_mib: 512 }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(c.createWorkspace({ name, snapshot_tag: d.tag, pids_max: 0 }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  const w = await c.createWorkspace({ name, sandbox_id: sb!.id });
  assert.equal(w.sandbox_id, sb!.id);
  assert.equal((await c.getSandbox(sb!.id)).expires_at_unix_ms, null, 'a workspace must not time out');
  await assert.rejects(c.createWorkspace({ name, snapshot_tag: d.tag }), (e) => codeOf(e) === 'FORKD_E_WORKSPACE_EXISTS');
  assert.deepEqual((await c.listWorkspaces()).map((x) => x.name).filter((n) => n === name), [name]);
  // Its VM killed directly (not suspended): the workspace falls back to its saved state, never stuck.
  await c.killSandbox(sb!.id);
  const after = await c.getWorkspace(name);
  assert.equal(after.status, 'suspended');
  assert.match(after.warning ?? '', /ended \(killed\) without a suspend/);
  const back = await c.resumeWorkspace(name);
  assert.deepEqual([back.status, back.sandbox_id], ['running', sb!.id]);
  await c.deleteWorkspace(name);
});
