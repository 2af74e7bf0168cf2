/**
 * E2B's fork, createSnapshot, pause and connect-resumes on a real daemon with real VMs (the fixture
 * python snapshot): state captured at the right instant, the same id after a resume, typed errors.
 * Every snapshot layer and workspace these tests make is removed in after().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller, Sandbox, ConflictError, InvalidArgumentError, NotFoundError, type SandboxOpts } from './index.js';

let d: TestDaemon;
let ctl: Controller;
const run = crypto.randomBytes(3).toString('hex');
const suite = `sdkb-${run}`;
/** Sandbox ids made here: their branches (branched_from sandbox:<id>) and workspaces are cleaned up. */
const mine = new Set<string>();
const conn = () => ({ socketPath: d.socketPath });

async function create(opts: SandboxOpts = {}, tag = d.tag): Promise<Sandbox> {
  const sb = await Sandbox.create(tag, { ...conn(), ...opts, metadata: { suite, ...(opts.metadata ?? {}) } });
  mine.add(sb.sandboxId);
  return sb;
}

/** The last expression's repr in the sandbox's interpreter (fails on an error in the code). */
async function py(sb: Sandbox, code: string): Promise<string | undefined> {
  const ex = await sb.runCode(code);
  assert.equal(ex.error, undefined, ex.error?.traceback);
  return ex.text;
}

before(async () => {
  d = await startTestDaemon();
  ctl = new Controller(conn());
});

after(async () => {
  if (!ctl) return;
  for (const id of mine) {
    await ctl.deleteWorkspace(id).catch(() => undefined);
    await ctl.killSandbox(id).catch(() => undefined);
  }
  const ours = (s: { tag: string; branched_from: string | null }) => s.tag.startsWith(suite) || [...mine].some((id) => s.branched_from === `sandbox:${id}`);
  for (const s of (await ctl.listSnapshots()).filter(ours)) await ctl.deleteSnapshot(s.tag, { cascade: true, force: true }).catch(() => undefined);
  const left = (await ctl.listSnapshots()).filter(ours).map((s) => s.tag);
  await d.stop();
  assert.deepEqual(left, [], 'every snapshot layer made here is removed');
});

describe('fork', () => {
  test('every child has the state at the fork; later changes of the source are not in it; the source keeps its id and timeout', async () => {
    const src = await create({ envs: { FORK_ENV: 'inherited' }, timeoutMs: 240_000 });
    const endBefore = (await src.getInfo()).endAt;
    await py(src, "fork_v = 7\nfork_list = ['a']");
    await src.files.write('/root/fork.txt', 'before-fork');

    const kids = await src.fork({ count: 3, metadata: { role: 'child' } });
    assert.equal(kids.length, 3);
    const children = kids.map((k) => {
      assert.ok(k instanceof Sandbox, `a Sandbox, not ${String(k)}`);
      mine.add(k.sandboxId);
      return k;
    });
    await py(src, "fork_v = 0\nfork_list.append('after')");
    await src.files.write('/root/fork.txt', 'after-fork');

    assert.equal(new Set([src.sandboxId, ...children.map((k) => k.sandboxId)]).size, 4, 'four distinct sandboxes');
    for (const k of children) {
      assert.equal(await py(k, 'fork_v'), '7');
      assert.equal(await py(k, 'fork_list'), "['a']");
      assert.equal(await py(k, 'forkd_parent_marker'), '424242', 'the parent snapshot state is under it');
      assert.equal(await k.files.read('/root/fork.txt'), 'before-fork');
      assert.equal((await k.commands.run('echo $FORK_ENV')).stdout, 'inherited\n');
      const info = await k.getInfo();
      assert.deepEqual(info.metadata, { suite, role: 'child' });
      assert.ok(info.endAt && Math.abs(info.endAt.getTime() - Date.now() - 300_000) < 30_000, 'E2B default: a child lives 300 s');
    }
    // Children diverge from each other.
    await py(children[0]!, 'fork_v = 100');
    assert.equal(await py(children[1]!, 'fork_v'), '7');

    assert.equal(await src.isRunning(), true);
    assert.equal(await py(src, 'fork_v'), '0');
    assert.deepEqual((await src.getInfo()).endAt, endBefore, 'the source keeps its expiry');

    // Static form, and one snapshot for all the children of one fork.
    const [one] = await Sandbox.fork(src.sandboxId, { ...conn(), count: 1, timeoutMs: 60_000 });
    assert.ok(one instanceof Sandbox);
    mine.add(one.sandboxId);
    assert.equal(await py(one, 'fork_v'), '0', 'a second fork captures the source as it is now');
    const tags = new Set(await Promise.all(children.map(async (k) => (await k.getInfo()).templateId)));
    assert.equal(tags.size, 1, 'one capture for the three children');
    const layer = await ctl.snapshotInfo([...tags][0]!);
    assert.deepEqual([layer.parent_tag, layer.branched_from], [d.tag, `sandbox:${src.sandboxId}`]);
  });
});

describe('createSnapshot', () => {
  test('SnapshotInfo {snapshotId, names}; Sandbox.create(snapshotId) boots the state at the capture', async () => {
    const src = await create();
    await py(src, "snap_v = 'at-snapshot'");
    await src.commands.run('echo disk-at-snapshot > /root/snap.txt');
    const name = `${suite}-named`;
    const snap = await src.createSnapshot({ name });
    assert.equal(snap.snapshotId, name);
    assert.deepEqual(snap.names, [name]);
    assert.deepEqual([snap.info.parent_tag, snap.info.status, snap.info.bootable], [d.tag, 'ready', true]);
    assert.ok(snap.info.pause_ms !== null && snap.info.pause_ms >= 0, `pause_ms ${snap.info.pause_ms}`);
    await py(src, "snap_v = 'later'");

    const child = await create({}, snap.snapshotId);
    assert.equal(await py(child, 'snap_v'), "'at-snapshot'");
    assert.equal((await child.commands.run('cat /root/snap.txt')).stdout, 'disk-at-snapshot\n');
    assert.equal((await child.getInfo()).templateId, name);
    assert.equal(await py(src, 'snap_v'), "'later'", 'the source runs on');

    // Without a name the daemon picks the tag; the same name twice is a conflict.
    const unnamed = await src.createSnapshot();
    assert.match(unnamed.snapshotId, /^branch-/);
    const fromUnnamed = await create({}, unnamed.snapshotId);
    assert.equal(await py(fromUnnamed, 'snap_v'), "'later'");
    await assert.rejects(src.createSnapshot({ name }), (e: ConflictError) => e instanceof ConflictError && e.code === 'FORKD_E_SNAPSHOT_EXISTS');
  });
});

describe('pause and connect', () => {
  test('pause() -> connect(id) resumes the same sandbox id with the interpreter, files, envs and metadata', async () => {
    const sb = await create({ envs: { PAUSE_ENV: 'kept' }, metadata: { role: 'paused' } });
    await py(sb, "paused_v = {'k': [1, 2]}");
    await sb.files.write('/root/paused.txt', 'file-kept');

    assert.equal(await sb.pause(), true);
    assert.equal(await sb.isRunning(), false);
    assert.equal(await sb.pause(), false, 'already paused');
    const running = await Sandbox.list({ ...conn(), query: { metadata: { suite, role: 'paused' } } }).toArray();
    assert.deepEqual(running, [], 'a paused sandbox is not listed as running');
    const paused = await Sandbox.list({ ...conn(), query: { metadata: { suite, role: 'paused' }, state: ['paused'] } }).toArray();
    assert.deepEqual(paused.map((p) => [p.sandboxId, p.state, p.templateId, p.language]), [[sb.sandboxId, 'paused', d.tag, 'python']]);

    const back = await Sandbox.connect(sb.sandboxId, conn());
    assert.equal(back.sandboxId, sb.sandboxId);
    assert.equal(await py(back, 'paused_v'), "{'k': [1, 2]}");
    assert.equal(await back.files.read('/root/paused.txt'), 'file-kept');
    assert.equal((await back.commands.run('echo $PAUSE_ENV')).stdout, 'kept\n');
    assert.deepEqual((await back.getInfo()).metadata, { suite, role: 'paused' });
    assert.equal(await sb.isRunning(), true, 'the old handle works again: same id');
    assert.equal((await Sandbox.connect(sb.sandboxId, conn())).sandboxId, sb.sandboxId, 'connect to a running sandbox just attaches');

    // Paused twice, resumed by the instance connect().
    await py(back, "paused_v['k'].append(3)");
    assert.equal(await back.pause(), true);
    assert.equal(await back.connect(), back);
    assert.equal(await py(back, 'paused_v'), "{'k': [1, 2, 3]}");

    // kill() removes the workspace pause() made, with its saved state.
    assert.equal(await back.kill(), true);
    await assert.rejects(ctl.getWorkspace(sb.sandboxId), (e: NotFoundError) => e.code === 'FORKD_E_WORKSPACE_NOT_FOUND');
    assert.deepEqual((await ctl.listSnapshots()).filter((s) => s.tag.startsWith(`ws-${sb.sandboxId}-`)), []);
    await assert.rejects(Sandbox.connect(sb.sandboxId, conn()), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
  });

  test('Sandbox.kill(id) of a paused sandbox removes it and its saved state', async () => {
    const sb = await create();
    assert.equal(await sb.pause(), true);
    const ws = await ctl.getWorkspace(sb.sandboxId);
    assert.ok(ws.state_tag, 'the suspend saved a state layer');
    await ctl.getSnapshot(ws.state_tag);
    assert.equal(await Sandbox.kill(sb.sandboxId, conn()), true);
    assert.equal(await Sandbox.kill(sb.sandboxId, conn()), false, 'nothing left to kill');
    await assert.rejects(ctl.getSnapshot(ws.state_tag), (e: NotFoundError) => e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  });
});

describe('typed errors', () => {
  test('fork, createSnapshot and pause of a killed sandbox; bad arguments', async () => {
    const sb = await create();
    assert.equal(await sb.kill(), true);
    const gone = (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SANDBOX_NOT_FOUND' && e.message.includes(sb.sandboxId);
    await assert.rejects(sb.fork({ count: 2 }), gone);
    await assert.rejects(Sandbox.fork(sb.sandboxId, conn()), gone);
    await assert.rejects(sb.createSnapshot(), gone);
    await assert.rejects(sb.pause(), gone);
    await assert.rejects(sb.connect(), gone);

    const live = await create();
    await assert.rejects(live.fork({ count: 101 }), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && e.code === 'FORKD_E_INVALID_ARGUMENT');
    await assert.rejects(live.createSnapshot({ name: 'bad name!' }), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && /^FORKD_E_INVALID/.test(e.code));
    await assert.rejects(live.pause({ keepMemory: false }), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && /keepMemory/.test(e.message));
    assert.equal(await live.isRunning(), true, 'a refused pause leaves it running');
  });
});
