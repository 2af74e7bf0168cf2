import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { moduleName, parseModuleIndex, resolveModules } from './modules.js';

const DEP = `kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko.zst: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/a.ko: kernel/net/b-c.ko kernel/net/d.ko
kernel/net/b-c.ko: kernel/net/d.ko
kernel/net/d.ko:
`;

test('module names drop the directory, suffix and compression and fold dashes', () => {
  assert.equal(moduleName('kernel/drivers/virtio/virtio_mmio.ko.xz'), 'virtio_mmio');
  assert.equal(moduleName('x/virtio-rng.ko'), 'virtio_rng');
});

test('dependencies come first, each once, in modprobe order', () => {
  const idx = parseModuleIndex(DEP, '');
  assert.deepEqual(resolveModules(idx, ['virtio_mmio', 'virtio_blk', 'virtio_console']).map((m) => m.name), ['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_blk', 'virtio_console']);
  assert.deepEqual(resolveModules(idx, ['a']).map((m) => m.name), ['d', 'b_c', 'a']);
  assert.equal(resolveModules(idx, ['virtio_mmio'])[2]!.file, 'kernel/drivers/virtio/virtio_mmio.ko.xz');
});

test('built-in modules are skipped, along with their dependency walk', () => {
  const idx = parseModuleIndex(DEP, 'kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/block/virtio_blk.ko\n');
  assert.deepEqual(resolveModules(idx, ['virtio_mmio', 'virtio_blk']).map((m) => m.name), ['virtio_mmio']);
});

test('an unknown module is a typed error naming who needed it', () => {
  const idx = parseModuleIndex('kernel/x.ko: kernel/missing.ko\n', '');
  assert.throws(() => resolveModules(idx, ['x']), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_KERNEL_NOT_FOUND' && /missing.*needed by x/.test(e.message));
});
