import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { resolveKernel, type KernelInfo } from './kernel.js';
import { buildInitramfs, type InitramfsInfo } from './initramfs.js';
import { INIT_ERROR_PREFIX } from './init-script.js';
import { startQemu } from '../qemu/start.js';
import { kernelCmdline, type VmSpec } from '../qemu/args.js';
import { runTool } from '../qemu/tools.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-bootit-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));
let kernel: KernelInfo;
let initramfs: InitramfsInfo;
before(async () => {
  kernel = await resolveKernel();
  initramfs = await buildInitramfs(kernel, { cacheDir: path.join(tmp, 'cache') });
});

/** Boots under TCG until QEMU exits (the guest powers off); returns the console and the time. */
async function boot(name: string, disk?: VmSpec['disk']): Promise<{ console: string; ms: number }> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir);
  const consolePath = path.join(dir, 'console.log');
  const t0 = Date.now();
  const { proc: p, qmp } = await startQemu(
    {
      name,
      accel: 'tcg',
      vcpus: 1,
      memMib: 256,
      memPath: path.join(dir, 'memory.bin'),
      memShare: false,
      kernel: { path: kernel.path, initrd: initramfs.path, append: kernelCmdline('tcg') },
      ...(disk ? { disk } : {}),
      agentSocket: path.join(dir, 'agent.sock'),
      qmpSocket: path.join(dir, 'qmp.sock'),
      console: { kind: 'file', path: consolePath },
    },
    { runDir: dir },
  );
  qmp.close();
  const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  const ex = await p.exited;
  clearTimeout(timer);
  assert.equal(ex.signal, null, 'guest did not power off within 30 s');
  return { console: await fs.readFile(consolePath, 'utf8'), ms: Date.now() - t0 };
}

test('boots to the root disk: virtio-blk found, ext4 mounted rw, switch_root to /sbin/forkd-init', async () => {
  const root = path.join(tmp, 'rootfs');
  for (const d of ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp']) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  await fs.writeFile(
    path.join(root, 'sbin/forkd-init'),
    '#!/bin/busybox sh\n/bin/busybox echo "FORKD-ROOT-OK pid=$$"\n/bin/busybox mount -t proc proc /proc\n/bin/busybox mount -t sysfs sys /sys\n/bin/busybox grep " / ext4 " /proc/mounts\n/bin/busybox ls /sys/class/virtio-ports/\n/bin/busybox cat /sys/class/virtio-ports/*/name\n/bin/busybox poweroff -f\n',
    { mode: 0o755 },
  );
  const img = path.join(tmp, 'root.ext4');
  await runTool('mkfs.ext4', ['-q', '-F', '-d', root, img, '32M']);
  const r = await boot('root', { path: img, format: 'raw' });
  process.stderr.write(`# TCG cold boot to /sbin/forkd-init and power-off: ${r.ms} ms\n`);
  assert.match(r.console, /FORKD-ROOT-OK pid=1/, r.console);
  assert.match(r.console, /\/dev\/root \/ ext4 rw|\/dev\/vda \/ ext4 rw/, r.console);
  assert.match(r.console, /org\.forkd\.agent/, r.console);
  assert.ok(!r.console.includes(INIT_ERROR_PREFIX), r.console);
});

test('without a root disk, /init fails loudly on the console and powers off', async () => {
  const r = await boot('nodisk');
  assert.match(r.console, /FORKD-INIT-ERROR: no root disk \(\/dev\/vda\) after 10 s/, r.console);
});
