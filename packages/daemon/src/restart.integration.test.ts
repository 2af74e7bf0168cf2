import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { Controller, type SandboxInfo } from '@forkd/sdk';
import { keeperSocketPath } from '@forkd/engine/keeper';
import { startTestDaemon } from './testing/daemon.js';
import { pidAlive, waitFor } from '@forkd/engine/testing';



const byId = (l: SandboxInfo[]) => l.map((s) => s.id).sort();

test('kill -9 of the daemon with 5 live sandboxes: the restarted daemon adopts all 5, state and timeouts intact', async () => {
  const d = await startTestDaemon({ keeperGraceSecs: 120 });
  try {
    const c = new Controller({ socketPath: d.socketPath });
    const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 6, metadata: { run: 'crash' }, envs: { RUN_ENV: 'kept' } });
    await Promise.all(sbs.map((s, i) => c.eval(s.id, { code: `survivor = ${i} * 11` })));
    // Acknowledged before the crash: one killed, one given a timeout.
    await c.killSandbox(sbs[5]!.id);
    // Long enough to outlast a slow restart (adoption waits patiently for loaded VMs): the check is
    // that the deadline survives unchanged, not that it fires.
    const setFrom = Date.now();
    await c.setSandboxTimeout(sbs[4]!.id, 120_000);
    const setUntil = Date.now();
    const live = sbs.slice(0, 5);
    await d.kill9();
    for (const s of live) assert.ok(pidAlive(s.pid!), `QEMU of ${s.id} died with the daemon`);
    await d.restart();
    const after = await c.listSandboxes();
    const problems = d.log().split('\n').filter((l) => /"level":(40|50)|previous daemon|never acknowledged|keeper|sandbox ended/.test(l)).join('\n');
    assert.deepEqual(byId(after), byId(live), `the restarted daemon lost or resurrected a sandbox; its warnings:\n${problems}`);
    for (const [i, s] of live.entries()) {
      const again = after.find((a) => a.id === s.id)!;
      assert.equal(again.pid, s.pid);
      assert.deepEqual(again.metadata, { run: 'crash' });
      assert.equal((await c.eval(s.id, { code: 'survivor' })).result, String(i * 11));
      assert.equal((await c.exec(s.id, { cmd: 'echo still here $RUN_ENV' })).stdout, 'still here kept\n', 'spawn envs lost in the adoption');
    }
    const expires = after.find((a) => a.id === sbs[4]!.id)!.expires_at_unix_ms!;
    assert.ok(expires >= setFrom + 120_000 && expires <= setUntil + 120_000, `deadline ${expires} moved (set between ${setFrom} and ${setUntil} + 120 s)`);
    assert.match(d.log(), /"adopted":\[/);
  } finally {
    await d.stop();
  }
});

test('a daemon that stays dead past the grace period: its VMs are killed, and the next daemon reaps the records with no leftovers', async () => {
  const d = await startTestDaemon({ keeperGraceSecs: 2 });
  const c = new Controller({ socketPath: d.socketPath });
  const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 2 });
  const ws = await c.createWorkspace({ name: 'lost-vm', snapshot_tag: d.tag });
  const pids = [...sbs.map((s) => s.pid!), (await c.getSandbox(ws.sandbox_id)).pid!];
  await d.kill9();
  assert.ok(await waitFor(() => pids.every((p) => !pidAlive(p)), 15_000), 'QEMU outlived the grace period');
  assert.ok(await waitFor(() => !existsSync(keeperSocketPath(d.statePath)), 5_000), 'the keeper did not exit');
  await d.restart();
  try {
    assert.deepEqual(await c.listSandboxes(), []);
    assert.match(d.log(), /"reaped":\["sb-/);
    // A workspace whose VM was lost (as after a host reboot) falls back to its last saved state.
    const w = await c.getWorkspace('lost-vm');
    assert.equal(w.status, 'suspended');
    assert.match(w.warning ?? '', /VM was lost/);
    const resumed = await c.resumeWorkspace('lost-vm');
    assert.deepEqual([resumed.status, resumed.sandbox_id, resumed.warning], ['running', ws.sandbox_id, null]);
    assert.equal((await c.exec(ws.sandbox_id, { cmd: 'echo back' })).stdout, 'back\n');
    await c.deleteWorkspace('lost-vm');
    await assert.rejects(c.exec(sbs[0]!.id, { cmd: 'true' }), (e: { code?: string }) => e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
    const runDir = process.getuid?.() === 0 ? '/run/forkd' : null;
    if (runDir) for (const s of sbs) assert.equal(readdirSync(runDir).includes(`vm-${s.id.slice(3)}`), false, `run dir of ${s.id} left behind`);
  } finally {
    await d.stop();
  }
});

test('SIGTERM under --on-stop end drains: an in-flight call finishes, sandboxes are stopped and recorded as gone, no QEMU is left', async () => {
  const d = await startTestDaemon({ extraArgs: ['--on-stop', 'end'] });
  const c = new Controller({ socketPath: d.socketPath });
  const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  const inflight = c.exec(s!.id, { cmd: 'sleep 1.5; echo finished' });
  await new Promise((r) => setTimeout(r, 300));
  await d.stop();
  assert.equal((await inflight).stdout, 'finished\n');
  assert.equal(d.proc.exitCode, 0);
  assert.ok(await waitFor(() => !pidAlive(s!.pid!), 5_000), 'QEMU survived a graceful stop');
  await d.restart();
  try {
    assert.deepEqual(await c.listSandboxes(), [], 'a sandbox stopped at shutdown came back as if alive');
  } finally {
    await d.stop();
  }
});

test('SIGTERM by default leaves the VMs to the keeper: the next daemon adopts the sandbox and the running workspace, state intact', async () => {
  const d = await startTestDaemon({ keeperGraceSecs: 120, extraArgs: ['--on-stop', 'leave'] });
  const c = new Controller({ socketPath: d.socketPath });
  try {
    const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
    await c.eval(s!.id, { code: 'kept = 41 + 1' });
    const ws = await c.createWorkspace({ name: 'term-leave', snapshot_tag: d.tag });
    await c.exec(ws.sandbox_id, { cmd: 'echo unsaved > /root/state' });
    await d.stop();
    assert.equal(d.proc.exitCode, 0);
    assert.ok(pidAlive(s!.pid!), 'QEMU died with a graceful stop that should leave it');
    await d.restart();
    assert.equal((await c.eval(s!.id, { code: 'kept' })).result, '42');
    const w = await c.getWorkspace('term-leave');
    assert.deepEqual([w.status, w.warning], ['running', null]);
    assert.equal((await c.exec(ws.sandbox_id, { cmd: 'cat /root/state' })).stdout, 'unsaved\n');
    await c.deleteWorkspace('term-leave');
    await c.killSandbox(s!.id);
  } finally {
    await d.stop();
  }
});

test('SIGTERM under --on-stop end: the sandbox is gone and the workspace is suspended with its state, not lost', async () => {
  const d = await startTestDaemon({ extraArgs: ['--on-stop', 'end'] });
  const c = new Controller({ socketPath: d.socketPath });
  try {
    const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
    const ws = await c.createWorkspace({ name: 'term-end', snapshot_tag: d.tag });
    const wsPid = (await c.getSandbox(ws.sandbox_id)).pid!;
    await c.exec(ws.sandbox_id, { cmd: 'echo saved > /root/state' });
    await d.stop();
    assert.ok(await waitFor(() => !pidAlive(s!.pid!) && !pidAlive(wsPid), 5_000), 'QEMU survived --on-stop end');
    await d.restart();
    assert.deepEqual(await c.listSandboxes(), []);
    const w = await c.getWorkspace('term-end');
    assert.equal(w.status, 'suspended');
    assert.equal(w.warning, null, 'the workspace was reported lost instead of suspended');
    await c.resumeWorkspace('term-end');
    assert.equal((await c.exec(ws.sandbox_id, { cmd: 'cat /root/state' })).stdout, 'saved\n');
    await c.deleteWorkspace('term-end');
  } finally {
    await d.stop();
  }
});

/** Sends QMP commands to a VM nobody else holds the monitor of (its daemon is dead); returns the last reply. */
async function qmpOf(pid: number, cmds: string[]): Promise<unknown> {
  const arg = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').find((a) => a.startsWith('unix:') && a.includes('qmp.sock'))!;
  const sock = net.connect(arg.slice('unix:'.length).split(',')[0]!);
  let buf = '';
  const replies: unknown[] = [];
  const want = cmds.length + 1; // qmp_capabilities first
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (c) => {
      buf += c.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as { QMP?: unknown; return?: unknown; error?: unknown };
        buf = buf.slice(i + 1);
        if (msg.QMP) sock.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        else if ('return' in msg || 'error' in msg) {
          replies.push(msg);
          if (replies.length === want) resolve();
          else sock.write(JSON.stringify({ execute: cmds[replies.length - 1] }) + '\n');
        }
      }
    });
  });
  sock.destroy();
  return replies.at(-1);
}

test('a daemon that dies mid-branch leaves a stopped source: the next daemon resumes it instead of reaping it', async () => {
  const d = await startTestDaemon({ keeperGraceSecs: 120 });
  const c = new Controller({ socketPath: d.socketPath });
  try {
    const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
    await c.eval(s!.id, { code: 'kept = 7 * 6' });
    await d.kill9();
    // What a full capture holds the source in until its finally (which a dead daemon never runs).
    await qmpOf(s!.pid!, ['stop']);
    assert.equal((await qmpOf(s!.pid!, ['query-status']) as { return: { status: string } }).return.status, 'paused');
    await d.restart();
    assert.deepEqual(byId(await c.listSandboxes()), [s!.id], `the paused source was not adopted:\n${d.log()}`);
    assert.equal((await c.eval(s!.id, { code: 'kept' })).result, '42');
    await c.killSandbox(s!.id);
  } finally {
    await d.stop();
  }
});
