import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { buildQemuArgs, kernelCmdline, qemuOptValue, type VmSpec } from './args.js';
import { machineSignature } from '../snapshot/machine.js';

const parent: VmSpec = {
  name: 'p',
  accel: 'tcg',
  vcpus: 2,
  memMib: 256,
  memPath: '/s/memory.bin',
  memShare: true,
  kernel: { path: '/boot/vmlinuz', initrd: '/c/initramfs.gz', append: kernelCmdline('tcg') },
  disk: { path: '/s/disk.qcow2', format: 'qcow2' },
  agentSocket: '/r/vm-a/agent.sock',
  qmpSocket: '/r/vm-a/qmp.sock',
  console: { kind: 'file', path: '/r/vm-a/console.log' },
};
const child: VmSpec = {
  ...parent,
  name: 'c',
  memShare: false,
  kernel: undefined,
  disk: { path: '/r/vm-b/disk.qcow2', format: 'qcow2' },
  agentSocket: '/r/vm-b/agent.sock',
  qmpSocket: '/r/vm-b/qmp.sock',
  console: { kind: 'null' },
  incoming: true,
};
delete (child as Partial<VmSpec>).kernel;

function valueOf(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

test('parent command line matches the proven microvm layout', () => {
  const a = buildQemuArgs(parent);
  assert.deepEqual(valueOf(a, '-M'), ['microvm,x-option-roms=off,rtc=on,pit=off,memory-backend=mem']);
  assert.deepEqual(valueOf(a, '-accel'), ['tcg']);
  assert.deepEqual(valueOf(a, '-cpu'), ['max']);
  assert.deepEqual(valueOf(a, '-smp'), ['2']);
  assert.deepEqual(valueOf(a, '-m'), ['256M']);
  for (const f of ['-nodefaults', '-no-user-config', '-no-reboot', '-nographic']) assert.ok(a.includes(f), f);
  assert.deepEqual(valueOf(a, '-object'), ['memory-backend-file,id=mem,size=256M,mem-path=/s/memory.bin,share=on']);
  assert.deepEqual(valueOf(a, '-kernel'), ['/boot/vmlinuz']);
  assert.deepEqual(valueOf(a, '-initrd'), ['/c/initramfs.gz']);
  assert.deepEqual(valueOf(a, '-qmp'), ['unix:/r/vm-a/qmp.sock,server=on,wait=off']);
  assert.ok(valueOf(a, '-chardev').includes('socket,id=agent,path=/r/vm-a/agent.sock,server=on,wait=off'));
  assert.ok(valueOf(a, '-device').includes('virtserialport,chardev=agent,name=org.forkd.agent'));
  assert.ok(!a.includes('-incoming'));
});

test('kvm uses -accel kvm -cpu host', () => {
  const a = buildQemuArgs({ ...parent, accel: 'kvm' });
  assert.deepEqual(valueOf(a, '-accel'), ['kvm']);
  assert.deepEqual(valueOf(a, '-cpu'), ['host']);
});

test('child: share=off, -incoming defer, no kernel/initrd/append', () => {
  const a = buildQemuArgs(child);
  assert.ok(valueOf(a, '-object')[0]!.endsWith(',share=off'));
  assert.deepEqual(valueOf(a, '-incoming'), ['defer']);
  for (const f of ['-kernel', '-initrd', '-append']) assert.ok(!a.includes(f), f);
  assert.deepEqual(valueOf(a, '-serial'), ['null']);
});

test('device order is identical for parent and child (migration needs it)', () => {
  const devices = (s: VmSpec) => {
    const a = buildQemuArgs(s);
    return a.flatMap((x, i) => (['-M', '-object', '-drive', '-device', '-smp', '-m', '-accel', '-cpu'].includes(x) ? [`${x} ${a[i + 1]!.replace(/(file|mem-path)=[^,]*/, '$1=*').replace(',share=on', '').replace(',share=off', '')}`] : []));
  };
  assert.deepEqual(devices(parent), devices(child));
  // Disk first, then virtio-serial: the guest's port numbering depends on it. The network device
  // last, the same with or without a backend (a child with a tap restores a parent without one).
  const d = valueOf(buildQemuArgs(parent), '-device');
  assert.deepEqual(d, ['virtio-blk-device,drive=root', 'virtio-serial-device', 'virtserialport,chardev=agent,name=org.forkd.agent', 'virtio-net-device,mac=52:54:00:f0:4b:02']);
  const withTap = buildQemuArgs({ ...child, tap: 'tap0' });
  assert.deepEqual(valueOf(withTap, '-device').at(-1), 'virtio-net-device,netdev=n0,mac=52:54:00:f0:4b:02');
  assert.deepEqual(valueOf(withTap, '-netdev'), ['tap,id=n0,ifname=tap0,script=no,downscript=no,vnet_hdr=off']);
  assert.throws(() => buildQemuArgs({ ...child, tap: 'tap0,script=/bin/sh' }));
});

test('output is deterministic', () => {
  assert.deepEqual(buildQemuArgs(parent), buildQemuArgs(structuredClone(parent)));
});

test('commas in paths are escaped as ",," inside option strings; shell metacharacters stay inert', () => {
  const evil = '/tmp/a,b $(touch x);`y` "q" \'z\'/f';
  const a = buildQemuArgs({ ...parent, memPath: evil, disk: { path: evil, format: 'raw', readOnly: true }, agentSocket: `${evil}.sock`, console: { kind: 'file', path: evil } });
  const esc = evil.replaceAll(',', ',,');
  assert.ok(valueOf(a, '-object')[0]!.includes(`mem-path=${esc},share=on`));
  assert.equal(valueOf(a, '-drive')[0], `if=none,id=root,file=${esc},format=raw,cache=writeback,werror=report,rerror=report,readonly=on`);
  assert.ok(valueOf(a, '-chardev').includes(`file,id=console,path=${esc}`));
  assert.ok(valueOf(a, '-chardev').includes(`socket,id=agent,path=${esc}.sock,server=on,wait=off`));
  // One argv element each, never joined into a shell string.
  assert.ok(a.every((x) => typeof x === 'string'));
  assert.equal(a.filter((x) => x.includes('$(touch x)')).length, 4);
});

test('control characters, bad numbers and kernel+incoming are rejected', () => {
  const bad = (s: Partial<VmSpec>) => assert.throws(() => buildQemuArgs({ ...parent, ...s }), (e: unknown) => e instanceof ForkdError);
  bad({ memPath: '/a\nb' });
  bad({ qmpSocket: '/a\0b' });
  bad({ vcpus: 0 });
  bad({ vcpus: 1.5 });
  bad({ memMib: 8 });
  bad({ incoming: true });
  bad({ accel: 'xen' as 'kvm' });
  assert.equal(qemuOptValue('a,,b', 'x'), 'a,,,,b');
});

test('kernelCmdline adds the TSC hints and norandmaps only under TCG and validates extras', () => {
  assert.equal(kernelCmdline('kvm'), 'console=ttyS0 quiet panic=-1 reboot=t tsc=reliable nowatchdog sysctl.vm.compaction_proactiveness=0');
  assert.equal(kernelCmdline('tcg', ['forkd.probe=1']), 'console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=2000000 lpj=4000000 tsc=reliable nowatchdog sysctl.vm.compaction_proactiveness=0 norandmaps forkd.probe=1');
  assert.throws(() => kernelCmdline('tcg', ['a b']), ForkdError);
  assert.throws(() => kernelCmdline('tcg', ['x;reboot']), ForkdError);
});

test('FORKD_IDLE_TUNING=off gives the machine with its PIT (a bench baseline), and another machine signature', () => {
  const tuned = machineSignature('tcg', 512, 1);
  process.env.FORKD_IDLE_TUNING = 'off';
  try {
    assert.deepEqual(valueOf(buildQemuArgs(child), '-M'), ['microvm,x-option-roms=off,rtc=on,memory-backend=mem']);
    assert.notEqual(machineSignature('tcg', 512, 1), tuned);
  } finally {
    delete process.env.FORKD_IDLE_TUNING;
  }
  assert.equal(machineSignature('tcg', 512, 1), tuned);
});

test('kernelCmdline tells a TCG guest the host TSC rate it reads; FORKD_IDLE_TUNING=off gives the old line', () => {
  assert.match(kernelCmdline('tcg', [], { tscKhz: 2095995 }), / tsc_early_khz=2095995 lpj=4000000 tsc=reliable nowatchdog sysctl.vm.compaction_proactiveness=0 /);
  assert.equal(kernelCmdline('kvm', [], { tscKhz: 2095995 }), 'console=ttyS0 quiet panic=-1 reboot=t tsc=reliable nowatchdog sysctl.vm.compaction_proactiveness=0');
  assert.throws(() => kernelCmdline('tcg', [], { tscKhz: 12 }), ForkdError);
  assert.throws(() => kernelCmdline('tcg', [], { tscKhz: 2e6 + 0.5 }), ForkdError);
  process.env.FORKD_IDLE_TUNING = 'off';
  try {
    assert.equal(kernelCmdline('tcg', [], { tscKhz: 2095995 }), 'console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=2000000 lpj=4000000 norandmaps');
  } finally {
    delete process.env.FORKD_IDLE_TUNING;
  }
});
