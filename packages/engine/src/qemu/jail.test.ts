import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { buildQemuArgs, type VmSpec } from './args.js';
import { SECCOMP_ARG, jailFor, jailUid, launchCommand } from './jail.js';

const env = { ...process.env };
afterEach(() => {
  for (const k of ['FORKD_JAIL', 'FORKD_JAIL_UID_BASE']) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
});

const child: VmSpec = {
  name: 'c', accel: 'tcg', vcpus: 1, memMib: 256, memPath: '/snap/py/memory.bin', memShare: false,
  disk: { path: '/run/forkd/vm-1/disk.qcow2', format: 'qcow2' }, agentSocket: '/run/forkd/vm-1/agent.sock', qmpSocket: '/run/forkd/vm-1/qmp.sock',
  fdQmpSocket: '/run/forkd/vm-1/qmp-fd.sock', console: { kind: 'null' }, incoming: true, jailReadOnly: ['/snap/py/disk.qcow2', '/img/rootfs.ext4'],
};

test('the seccomp policy and the descriptor monitor are in the argv', () => {
  const args = buildQemuArgs({ ...child, seccomp: SECCOMP_ARG }).join(' ');
  assert.match(args, /-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny$/);
  assert.match(args, /-qmp unix:\/run\/forkd\/vm-1\/qmp-fd.sock,server=on,wait=off/);
  assert.doesNotMatch(buildQemuArgs(child).join(' '), /-sandbox/);
});

test('uids: one per run dir, stable, inside the configured range; a bad base is refused', () => {
  process.env.FORKD_JAIL_UID_BASE = '2000000';
  const a = jailUid('/run/forkd/vm-a');
  assert.equal(a, jailUid('/run/forkd/vm-a'));
  assert.notEqual(a, jailUid('/run/forkd/vm-b'));
  assert.ok(a >= 2_000_000 && a < 2_000_000 + 2 ** 24);
  process.env.FORKD_JAIL_UID_BASE = '0';
  assert.throws(() => jailUid('/x'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
});

test('FORKD_JAIL=off: only pdeathsig; bad values are refused', async () => {
  process.env.FORKD_JAIL = 'off';
  const jail = await jailFor(child, '/run/forkd/vm-1');
  assert.deepEqual(jail, { mode: 'off' });
  const cmd = await launchCommand('/usr/bin/qemu-system-x86_64', ['-name', 'x'], '/run/forkd/vm-1', jail);
  assert.deepEqual(cmd.slice(1, 4), ['--pdeathsig', 'KILL', '--']);
  process.env.FORKD_JAIL = 'maybe';
  await assert.rejects(jailFor(child, '/run/forkd/vm-1'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
});

test('a child: reads its RAM image (read-only shim) and disk chain, writes only its run dir; setpriv drops everything after the mount view', { skip: process.getuid?.() !== 0 && 'the full jail needs root' }, async () => {
  const jail = await jailFor(child, '/run/forkd/vm-1');
  assert.equal(jail.mode, 'full');
  assert.deepEqual(jail.readOnly!.sort(), ['/img/rootfs.ext4', '/snap/py/disk.qcow2', '/snap/py/memory.bin']);
  assert.deepEqual(jail.writable, ['/run/forkd/vm-1/disk.qcow2']);
  assert.equal(jail.roRam, '/snap/py/memory.bin');
  const cmd = await launchCommand('/usr/bin/qemu-system-x86_64', ['-name', 'x'], '/run/forkd/vm-1', jail);
  const sep = cmd.indexOf('--');
  const view = cmd.slice(1, sep);
  assert.match(cmd[0]!, /forkd-jail-/);
  assert.deepEqual(view.slice(0, 6), ['--root', '/run/forkd/vm-1/.jail', '--cwd', '/run/forkd/vm-1', '--rw', '/run/forkd/vm-1']);
  for (const ro of jail.readOnly!) assert.ok(view.join(' ').includes(`--ro ${ro}`), ro);
  assert.ok(!view.includes('/run/forkd/vm-1/disk.qcow2'), 'a file inside the run dir is bound again');
  assert.ok(view.some((v) => v.startsWith('LD_PRELOAD=')) && view.includes('FORKD_RO_RAM=/snap/py/memory.bin'));
  const drop = cmd.slice(sep + 1);
  assert.deepEqual(drop.slice(1, 3), ['--pdeathsig', 'KILL']);
  assert.deepEqual(drop.slice(3, 7), ['--reuid', String(jail.uid), '--regid', String(jail.gid)]);
  assert.deepEqual(drop.slice(7, 12), ['--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--']);
  assert.deepEqual(drop.slice(12), ['/usr/bin/qemu-system-x86_64', '-name', 'x']);
});

test('a snapshot parent writes its RAM file and disk in staging; no read-only shim', { skip: process.getuid?.() !== 0 && 'the full jail needs root' }, async () => {
  const parent: VmSpec = { ...child, memPath: '/snap/.staging-x/memory.bin', memShare: true, incoming: false, disk: { path: '/snap/.staging-x/disk.qcow2', format: 'qcow2' }, jailReadOnly: ['/img/rootfs.ext4'] };
  const jail = await jailFor(parent, '/run/forkd/vm-2');
  assert.deepEqual(jail.writable!.sort(), ['/snap/.staging-x/disk.qcow2', '/snap/.staging-x/memory.bin']);
  assert.deepEqual(jail.readOnly, ['/img/rootfs.ext4']);
  assert.equal(jail.roRam, undefined);
});

test('FORKD_QEMU_KSM=on: the launch marks QEMU mergeable (jail flag, or the THP wrapper\'s --ksm); unset: neither', { skip: process.getuid?.() !== 0 && 'the full jail needs root' }, async () => {
  const saved = process.env.FORKD_QEMU_KSM;
  try {
    delete process.env.FORKD_JAIL;
    const jail = await jailFor(child, '/run/forkd/vm-1');
    process.env.FORKD_QEMU_KSM = 'on';
    const on = await launchCommand('/usr/bin/qemu-system-x86_64', ['-name', 'x'], '/run/forkd/vm-1', jail);
    assert.ok(on.slice(0, on.indexOf('--')).includes('--ksm'));
    const seccompOn = await launchCommand('/usr/bin/qemu-system-x86_64', ['-name', 'x'], '/run/forkd/vm-1', { mode: 'seccomp' });
    const wrapper = seccompOn.findIndex((a) => /forkd-thp-off-/.test(a));
    if (wrapper >= 0) assert.equal(seccompOn[wrapper + 1], '--ksm');
    delete process.env.FORKD_QEMU_KSM;
    const off = await launchCommand('/usr/bin/qemu-system-x86_64', ['-name', 'x'], '/run/forkd/vm-1', jail);
    assert.ok(!off.includes('--ksm'));
  } finally {
    if (saved === undefined) delete process.env.FORKD_QEMU_KSM;
    else process.env.FORKD_QEMU_KSM = saved;
  }
});
