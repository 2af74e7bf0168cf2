import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { buildQemuArgs, type VmSpec } from './args.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECCOMP_ARG, claimJailUid, jailFor, jailUid, launchCommand, pickJailUid } from './jail.js';

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

test('pickJailUid: the preferred uid when free, else the next free one (wrapping); an exhausted range is refused', () => {
  assert.equal(pickJailUid(105, new Set(), 100, 10), 105);
  assert.equal(pickJailUid(105, new Set([105, 106]), 100, 10), 107);
  assert.equal(pickJailUid(109, new Set([109]), 100, 10), 100, 'wraps to the start of the range');
  const all = new Set(Array.from({ length: 10 }, (_, i) => 100 + i));
  assert.throws(() => pickJailUid(103, all, 100, 10), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_JAIL_UNAVAILABLE');
});

test('claimJailUid: two live VMs never share a uid (a run dir or a process already has it: another is picked); a claim is kept', { skip: process.getuid?.() !== 0 && 'chown needs root' }, async () => {
  process.env.FORKD_JAIL_UID_BASE = '2000000';
  const run = await fs.mkdtemp(path.join(os.tmpdir(), 'jail-uid-'));
  const fakeProc = await fs.mkdtemp(path.join(os.tmpdir(), 'jail-proc-'));
  try {
    const [a, b, c] = ['vm-00000000000000aa', 'vm-00000000000000bb', 'vm-00000000000000cc'].map((n) => path.join(run, n)) as [string, string, string];
    for (const d of [a, b, c]) await fs.mkdir(d, { mode: 0o700 });
    // VM a already runs with the uid b would prefer (a hash collision).
    await fs.chown(a, jailUid(b), 0);
    const ub = await claimJailUid(b, { procDir: fakeProc });
    assert.notEqual(ub, jailUid(b));
    assert.equal((await fs.stat(b)).uid, ub, 'the claim is recorded as the run dir owner');
    assert.equal(await claimJailUid(b, { procDir: fakeProc }), ub, 'a claimed run dir keeps its uid');
    // A running process (a VM of another run dir) holds the uid c would prefer.
    await fs.mkdir(path.join(fakeProc, '4242'));
    await fs.chown(path.join(fakeProc, '4242'), jailUid(c), 0);
    const uc = await claimJailUid(c, { procDir: fakeProc });
    assert.notEqual(uc, jailUid(c));
    assert.ok(![jailUid(b), ub].includes(uc));
    // Concurrent claims in one process are serialized: all distinct.
    const many = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const d = path.join(run, `vm-${(0x100 + i).toString(16).padStart(16, '0')}`);
      await fs.mkdir(d, { mode: 0o700 });
      return claimJailUid(d, { procDir: fakeProc });
    }));
    assert.equal(new Set([...many, ub, uc, jailUid(b)]).size, 23);
  } finally {
    await fs.rm(run, { recursive: true, force: true });
    await fs.rm(fakeProc, { recursive: true, force: true });
  }
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
