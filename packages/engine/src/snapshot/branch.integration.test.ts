import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Sandbox } from '../sandbox/sandbox.js';
import { ensureFixtureSnapshot, testEngine } from '../testing/fixture.js';
import { assembledPath } from './memory.js';
import { branchProven } from '../sandbox/branch-proven.js';

const engine = testEngine();
let base = '';
const live: Sandbox[] = [];
const made: string[] = [];
const run = crypto.randomBytes(3).toString('hex');
const t = (name: string) => {
  const tag = `it-${run}-${name}`;
  made.push(tag);
  return tag;
};

before(async () => {
  base = await ensureFixtureSnapshot(engine);
});
after(async () => {
  await Promise.all(live.map((s) => s.kill()));
  for (const tag of made.reverse()) await engine.removeSnapshot(tag, { cascade: true }).catch(() => undefined);
});

async function spawn(tag: string, n = 1): Promise<Sandbox[]> {
  const sbs = await engine.spawn({ tag, n });
  live.push(...sbs);
  return sbs;
}
async function py(sb: Sandbox, code: string): Promise<unknown> {
  const r = await sb.eval('python', code, { timeoutMs: 25_000 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  return r.json;
}
async function sh(sb: Sandbox, cmd: string): Promise<string> {
  const r = await sb.commands.exec({ shell: cmd, timeout_ms: 25_000 });
  return r.stdout.trim();
}
const stagingLeft = () => readdirSync(engine.layout.snapshots).filter((n) => n.startsWith('.staging-'));

for (const mode of ['live', 'full'] as const) {
  test(`${mode} branch: children start at the branch instant (memory and disk); the source goes on`, async () => {
    const [src] = await spawn(base);
    await py(src!, "state = 'before'; blob = bytearray(16 * 1024 * 1024); blob[::4096] = b'y' * (len(blob) // 4096)");
    await sh(src!, 'echo before > /root/state.txt && sync');
    const tag = t(`${mode}`);
    const r = await engine.branch(src!, { tag, mode });
    assert.ok(r.pauseMs > 0 && r.pauseMs <= r.captureMs, `pause ${r.pauseMs} capture ${r.captureMs}`);
    // A live capture that failed its restore probe was redone stopped (see sandbox/branch-proven.ts); the
    // children below must then still see the branch instant.
    if (r.mode === 'full' && mode === 'live') assert.ok(r.liveCaptureFailed, 'a live request came back full without a reason');
    else assert.equal(r.mode, mode);
    if (r.mode === 'live') assert.ok(r.pauseMs < r.captureMs / 2, `live pause ${r.pauseMs} ms is not short next to the capture ${r.captureMs} ms`);
    if (r.liveCaptureFailed) process.stderr.write(`# the live capture failed its probe and was redone stopped: ${r.liveCaptureFailed}\n`);
    assert.equal(r.snapshot.manifest.parent_tag, base);
    // The source keeps running and diverges after the branch.
    await py(src!, "state = 'after'");
    await sh(src!, 'echo after > /root/state.txt && echo new > /root/after-only.txt && sync');
    const kids = await spawn(tag, 2);
    for (const k of kids) {
      assert.deepEqual(await py(k, '[state, len(blob), blob[4096], forkd_parent_marker]'), ['before', 16 * 1024 * 1024, 121, 424242]);
      assert.equal(await sh(k, 'cat /root/state.txt'), 'before');
      assert.equal(await sh(k, 'test -e /root/after-only.txt && echo yes || echo no'), 'no');
    }
    assert.equal(await py(src!, 'state'), 'after');
    // The layer stores what changed, not the whole RAM.
    const layerBytes = r.snapshot.manifest.files.memory.physical_bytes;
    assert.ok(layerBytes < r.snapshot.manifest.files.memory.logical_bytes / 4, `layer holds ${layerBytes} bytes`);
    assert.deepEqual(stagingLeft(), []);
  });
}

test('a live capture that fails its restore probe is removed and redone stopped; a good one is kept', async () => {
  const [src] = await spawn(base);
  await py(src!, "probe_state = 'captured'");
  const tag = t('probe');
  const probed: string[] = [];
  const r = await branchProven(engine.layout, engine.platform, src!, { tag, mode: 'live' }, async (x) => {
    probed.push(x);
    if (probed.length === 1) throw new Error('simulated: the child reset at restore');
  });
  assert.deepEqual(probed, [tag], 'the redone (stopped) capture is not probed again');
  assert.equal(r.mode, 'full');
  assert.match(r.liveCaptureFailed ?? '', /simulated/);
  assert.ok(r.pauseMs > 0);
  const [k] = await spawn(tag);
  assert.equal(await py(k!, 'probe_state'), 'captured');
  // The default probe restores a real child: a good live capture passes it and stays live.
  const good = t('probe-ok');
  const ok = await engine.branch(src!, { tag: good, mode: 'live' });
  assert.equal(ok.mode, 'live');
  assert.equal(ok.liveCaptureFailed, null);
  assert.deepEqual(stagingLeft(), []);
});

test('consecutive branches of one source, and a branch of a branch child, each hold their own instant', async () => {
  const [src] = await spawn(base);
  await py(src!, 'n = 1');
  const b1 = t('seq1');
  await engine.branch(src!, { tag: b1 });
  await py(src!, 'n = 2');
  await sh(src!, 'echo two > /root/n.txt');
  const b2 = t('seq2');
  await engine.branch(src!, { tag: b2 });
  await py(src!, 'n = 3');
  const [k1] = await spawn(b1);
  const [k2] = await spawn(b2);
  assert.equal(await py(k1!, 'n'), 1);
  assert.equal(await sh(k1!, 'cat /root/n.txt 2>/dev/null || echo none'), 'none');
  assert.equal(await py(k2!, 'n'), 2);
  assert.equal(await sh(k2!, 'cat /root/n.txt'), 'two');
  // A child of a branch, branched again: a chain of depth 2 under the base.
  await py(k1!, 'm = 10');
  await sh(k1!, 'echo grandchild > /root/g.txt');
  const b11 = t('seq1-1');
  const r = await engine.branch(k1!, { tag: b11 });
  assert.equal(r.snapshot.manifest.parent_tag, b1);
  assert.deepEqual(await engine.ancestors(b11), [base, b1]);
  const [g] = await spawn(b11);
  assert.deepEqual(await py(g!, '[n, m]'), [1, 10]);
  assert.equal(await sh(g!, 'cat /root/g.txt'), 'grandchild');
});

test('snapshot-diff chain of depth 3: children see every layer, layers are small, a lost memory image is rebuilt, compact is equivalent, rmi needs cascade', async () => {
  const l1 = t('l1');
  const l2 = t('l2');
  const l3 = t('l3');
  await engine.diffSnapshot({ from: base, to: l1, cmd: 'echo one > /root/l1 && python3 -c "print(1)" > /dev/null' });
  await engine.diffSnapshot({ from: l1, to: l2, cmd: 'echo two > /root/l2 && dd if=/dev/urandom of=/root/blob bs=1M count=4 status=none' });
  await engine.diffSnapshot({ from: l2, to: l3, cmd: 'echo three > /root/l3 && rm /root/l1' });
  assert.deepEqual(await engine.ancestors(l3), [base, l1, l2]);
  for (const tag of [l1, l2, l3]) {
    const m = (await engine.getSnapshot(tag)).manifest;
    assert.equal(m.origin.kind, 'diff');
    assert.ok(m.files.memory.physical_bytes < 96 * 1024 * 1024, `${tag} memory layer ${m.files.memory.physical_bytes}`);
    assert.ok(m.files.disk.physical_bytes < 32 * 1024 * 1024, `${tag} disk layer ${m.files.disk.physical_bytes}`);
  }
  const check = async (sb: Sandbox) => {
    assert.equal(await sh(sb, 'cat /root/l2 /root/l3; test -e /root/l1 && echo l1 || echo no-l1; stat -c %s /root/blob'), `two\nthree\nno-l1\n${4 * 1024 * 1024}`);
    assert.equal(await py(sb, 'forkd_parent_marker'), 424242);
  };
  const [head] = await spawn(l3);
  await check(head!);
  // The assembled memory of the head is a cache: remove it and the next spawn rebuilds it from the layers.
  const cached = assembledPath(engine.layout, (await engine.getSnapshot(l3)).manifest);
  await fs.rm(cached);
  const [rebuilt] = await spawn(l3);
  await check(rebuilt!);
  assert.ok(existsSync(cached), 'the rebuilt image was not kept');
  // Compact: an equivalent flat snapshot with no parent.
  const flat = t('flat');
  const c = await engine.compactSnapshot({ from: l3, to: flat });
  assert.equal(c.manifest.parent_tag, null);
  const [f] = await spawn(flat);
  await check(f!);
  // rmi with dependents is refused, naming them; cascade removes the subtree; the compacted copy stays.
  await assert.rejects(engine.removeSnapshot(l1), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_HAS_DEPENDENTS' && e.message!.includes(l2) && e.message!.includes(l3));
  assert.deepEqual(await engine.removeSnapshot(l1, { cascade: true }), [l3, l2, l1]);
  for (const tag of [l1, l2, l3]) await assert.rejects(engine.getSnapshot(tag), (e: { code?: string }) => e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  assert.equal(existsSync(cached), false, 'the assembled image of a removed layer was left behind');
  const [again] = await spawn(flat);
  await check(again!);
});

test('broken chains and bad inputs give clear codes and leave nothing half-written', async () => {
  const [src] = await spawn(base);
  await assert.rejects(engine.branch(src!, { tag: '../evil' }), (e: { code?: string }) => e.code === 'FORKD_E_INVALID_TAG');
  await assert.rejects(engine.branch(src!, { tag: base }), (e: { code?: string }) => e.code === 'FORKD_E_SNAPSHOT_EXISTS');
  const a = t('broken-a');
  const b = t('broken-b');
  await engine.branch(src!, { tag: a });
  await assert.rejects(engine.diffSnapshot({ from: a, to: t('never'), cmd: 'echo nope >&2; exit 3' }), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_COMMAND_FAILED' && /exited with 3/.test(e.message!) && /nope/.test(e.message!));
  await assert.rejects(engine.getSnapshot(`it-${run}-never`), (e: { code?: string }) => e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  await engine.diffSnapshot({ from: a, to: b, cmd: 'true' });
  // A manifest edited to loop: a -> b -> a.
  const am = path.join(engine.layout.snapshots, a, 'snapshot.json');
  const orig = await fs.readFile(am, 'utf8');
  await fs.writeFile(am, JSON.stringify({ ...JSON.parse(orig), parent_tag: b }));
  await assert.rejects(engine.spawn({ tag: b, n: 1 }), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE' && /cycle/.test(e.message!));
  // A missing parent.
  await fs.writeFile(am, JSON.stringify({ ...JSON.parse(orig), parent_tag: 'no-such-parent' }));
  await assert.rejects(engine.spawn({ tag: b, n: 1 }), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE' && /no-such-parent/.test(e.message!));
  // The parent deleted and re-created under the same tag (another instance): the layer refuses it.
  const om = JSON.parse(orig) as { files: { vmstate: { sha256: string } } };
  await fs.writeFile(am, JSON.stringify({ ...om, files: { ...om.files, vmstate: { ...om.files.vmstate, sha256: 'f'.repeat(64) } } }));
  await assert.rejects(engine.spawn({ tag: b, n: 1 }), (e: { code?: string; message?: string }) => e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE' && /re-created/.test(e.message!));
  await fs.writeFile(am, orig);
  // Branch of a dead sandbox.
  await src!.kill();
  await assert.rejects(engine.branch(src!, { tag: t('dead') }), (e: { code?: string }) => e.code === 'FORKD_E_SANDBOX_NOT_RUNNING');
  assert.deepEqual(stagingLeft(), []);
});
