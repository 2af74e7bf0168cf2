import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs, existsSync } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { bzImageVersion, compareVersions, resolveKernel } from './kernel.js';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-boot-'));
after(() => fs.rm(dir, { recursive: true, force: true }));

test('versions compare numerically', () => {
  assert.ok(compareVersions('6.1.0-10-cloud-amd64', '6.1.0-9-cloud-amd64') > 0);
  assert.ok(compareVersions('6.10.0-1', '6.9.0-1') > 0);
});

test('prefers the newest -cloud-amd64 kernel, else the newest vmlinuz', async () => {
  const boot = path.join(dir, 'b1');
  await fs.mkdir(boot);
  for (const n of ['vmlinuz-6.1.0-9-cloud-amd64', 'vmlinuz-6.1.0-10-cloud-amd64', 'vmlinuz-6.5.0-1-amd64', 'config-6.1.0-10-cloud-amd64']) await fs.writeFile(path.join(boot, n), n);
  const k = await resolveKernel(undefined, { bootDir: boot, modulesRoot: '/mods' });
  assert.equal(k.path, path.join(boot, 'vmlinuz-6.1.0-10-cloud-amd64'));
  assert.equal(k.version, '6.1.0-10-cloud-amd64');
  assert.equal(k.modulesDir, '/mods/6.1.0-10-cloud-amd64');
  assert.match(k.sha256, /^[0-9a-f]{64}$/);
  await fs.rm(path.join(boot, 'vmlinuz-6.1.0-9-cloud-amd64'));
  await fs.rm(path.join(boot, 'vmlinuz-6.1.0-10-cloud-amd64'));
  assert.equal((await resolveKernel(undefined, { bootDir: boot })).version, '6.5.0-1-amd64');
});

test('missing kernels are FORKD_E_KERNEL_NOT_FOUND with an install hint', async () => {
  const empty = path.join(dir, 'empty');
  await fs.mkdir(empty);
  await assert.rejects(resolveKernel(undefined, { bootDir: empty }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_KERNEL_NOT_FOUND' && /apt-get install linux-image-cloud-amd64/.test(e.message));
  await assert.rejects(resolveKernel(path.join(dir, 'nope')), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_KERNEL_NOT_FOUND');
});

test('an explicit bzImage with another name is identified by its header', async (t) => {
  const real = (await fs.readdir('/boot').catch(() => [])).find((n) => n.startsWith('vmlinuz-'));
  if (!real || !existsSync(`/boot/${real}`)) return t.skip('no kernel in /boot');
  assert.equal(await bzImageVersion(`/boot/${real}`), real.slice('vmlinuz-'.length));
  const copy = path.join(dir, 'my-kernel');
  await fs.copyFile(`/boot/${real}`, copy);
  const k = await resolveKernel(copy);
  assert.equal(k.version, real.slice('vmlinuz-'.length));
});
