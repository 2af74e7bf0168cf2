import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { resolveKernel } from './kernel.js';
import { buildInitramfs } from './initramfs.js';
import { readCpio } from './cpio.js';
import { initScript } from './init-script.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-irf-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

test('builds busybox + virtio modules in load order + /init, then serves it from cache', async (t) => {
  const kernel = await resolveKernel().catch(() => null);
  if (!kernel) return t.skip('no guest kernel installed');
  const cacheDir = path.join(tmp, 'cache');
  const a = await buildInitramfs(kernel, { cacheDir });
  assert.equal(a.cached, false);
  // Loadable modules of the Debian cloud kernel, dependencies first.
  assert.deepEqual(a.modules.slice(-6), ['virtio_mmio', 'virtio_blk', 'virtio_console', 'failover', 'net_failover', 'virtio_net']);
  assert.ok(a.modules.indexOf('virtio_ring') < a.modules.indexOf('virtio'));
  const entries = readCpio(zlib.gunzipSync(await fs.readFile(a.path)));
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get('bin/busybox')!.mode & 0o777, 0o755);
  assert.equal(byPath.get('bin/sh')!.data.toString(), 'busybox');
  assert.equal(byPath.get('init')!.mode & 0o777, 0o755);
  // The guest's fixed address is set by /init (every child keeps its snapshot's).
  assert.match(byPath.get('init')!.data.toString(), /ip addr add 172\.16\.0\.2\/30 dev eth0/);
  for (const m of a.modules) assert.equal(byPath.get(`lib/modules/${m}.ko`)!.data.subarray(0, 4).toString('latin1'), '\x7fELF');
  for (const d of ['dev', 'proc', 'sys', 'newroot']) assert.ok(byPath.has(d), d);
  const init = byPath.get('init')!.data.toString();
  assert.ok(init.includes(`for m in ${a.modules.join(' ')}; do`));
  // No stray temp files; the second build is a cache hit with the same bytes.
  assert.deepEqual(await fs.readdir(cacheDir), [path.basename(a.path)]);
  const b = await buildInitramfs(kernel, { cacheDir });
  assert.equal(b.cached, true);
  assert.equal(b.sha256, a.sha256);
});

test('missing modules dir or busybox are typed errors', async () => {
  const fake = { path: '/x', version: 'v', modulesDir: path.join(tmp, 'no-modules'), sha256: '0' };
  await assert.rejects(buildInitramfs(fake, { cacheDir: tmp }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_KERNEL_NOT_FOUND');
  await assert.rejects(buildInitramfs(fake, { cacheDir: tmp, busybox: path.join(tmp, 'no-busybox') }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING');
});

test('the init script mounts devtmpfs before redirecting to the console, and rejects odd module names', () => {
  const s = initScript(['virtio_ring', 'virtio']);
  assert.ok(s.startsWith('#!/bin/busybox sh\n'));
  assert.ok(s.indexOf('mount -t devtmpfs') < s.indexOf('exec </dev/console'));
  assert.ok(s.includes('next=/sbin/forkd-init') && s.includes('[ -x /newroot/.forkd/init ] && next=/.forkd/init'), 'Debian images hand over to /sbin/forkd-init, OCI images to their /.forkd/init');
  assert.ok(s.includes('exec switch_root /newroot $next'));
  assert.ok(s.includes('mount --move /dev /newroot/dev'));
  assert.throws(() => initScript(['x; reboot']));
});
