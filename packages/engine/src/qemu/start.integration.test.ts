import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { startQemu } from './start.js';
import type { VmSpec } from './args.js';

// A comma in the directory name exercises QEMU's ',,' escaping for real.
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-q,e-'));
after(() => fs.rm(dir, { recursive: true, force: true }));

function spec(extra: Partial<VmSpec> = {}): VmSpec {
  return {
    name: 'itest',
    accel: 'tcg',
    vcpus: 1,
    memMib: 64,
    memPath: path.join(dir, 'mem,ory.bin'),
    memShare: false,
    agentSocket: path.join(dir, 'ag,ent.sock'),
    qmpSocket: path.join(dir, 'q,mp.sock'),
    console: { kind: 'file', path: path.join(dir, 'con,sole.log') },
    incoming: true,
    ...extra,
  };
}

test('starts QEMU (paused for -incoming), answers QMP, quits cleanly', async () => {
  const t0 = Date.now();
  const { proc: p, qmp } = await startQemu(spec(), { runDir: dir });
  const qmpMs = Date.now() - t0;
  try {
    assert.deepEqual(((await qmp.execute('query-status')) as { status: string }).status, 'inmigrate');
    const v = (await qmp.execute('query-version')) as { qemu: { major: number } };
    assert.ok(v.qemu.major >= 7);
    // Comma-containing paths were created as named (escaping worked).
    for (const f of ['ag,ent.sock', 'q,mp.sock', 'con,sole.log']) await fs.access(path.join(dir, f));
    const cmdline = await fs.readFile(`/proc/${p.pid}/cmdline`, 'utf8');
    assert.ok(cmdline.startsWith(`${(await fs.realpath('/usr/bin/qemu-system-x86_64'))}\0`) || cmdline.includes('qemu-system-x86_64'), 'setpriv exec()s QEMU in place');
    const status = await fs.readFile(`/proc/${p.pid}/status`, 'utf8');
    assert.ok(status.includes('State:'));
    const shutdown = qmp.waitForEvent('SHUTDOWN', undefined, 5000);
    await qmp.execute('quit');
    await shutdown.catch(() => undefined);
    const ex = await p.exited;
    assert.equal(ex.code, 0);
    assert.equal(p.hasExited, true);
    process.stderr.write(`# QMP ready ${qmpMs} ms after the start\n`);
  } finally {
    qmp.close();
    p.kill();
  }
});

test('a missing QEMU binary is FORKD_E_QEMU_NOT_INSTALLED', async () => {
  await assert.rejects(startQemu(spec(), { runDir: dir, qemuBinary: 'qemu-system-forkd-missing' }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_QEMU_NOT_INSTALLED');
});

test('QEMU exiting at start is FORKD_E_VM_START_FAILED with its stderr', async () => {
  // An exit before QMP exists at all (here a fake binary).
  const fake = path.join(dir, 'fake-qemu');
  await fs.writeFile(fake, '#!/bin/sh\necho "fake qemu: unsupported option" >&2\nexit 1\n', { mode: 0o755 });
  await assert.rejects(startQemu(spec(), { runDir: dir, qemuBinary: fake }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_VM_START_FAILED' && /unsupported option/.test(e.message));
  // QEMU creates its QMP socket before opening memory and disks: an exit after the socket exists,
  // before the greeting.
  await assert.rejects(startQemu(spec({ memPath: '/proc/forkd-no/such' }), { runDir: dir }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_VM_START_FAILED' && /forkd-no/.test(e.message));
  await assert.rejects(startQemu(spec({ incoming: false, disk: { path: path.join(dir, 'missing.qcow2'), format: 'qcow2' } }), { runDir: dir }), (e: unknown) => {
    assert.ok(e instanceof ForkdError);
    assert.equal(e.code, 'FORKD_E_VM_START_FAILED');
    assert.match(e.message, /missing\.qcow2/);
    return true;
  });
});
