import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { resolveKernel, type KernelInfo } from '../boot/kernel.js';
import { buildInitramfs, type InitramfsInfo } from '../boot/initramfs.js';
import { bootProbe, resolveAccel } from './probe.js';
import { kvmStatus } from './kvm.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-accel-'));
process.env.FORKD_RUN_DIR = path.join(tmp, 'run');
const cacheFile = path.join(tmp, 'accel.json');
let kernel: KernelInfo;
let initramfs: InitramfsInfo;
before(async () => {
  kernel = await resolveKernel();
  initramfs = await buildInitramfs(kernel, { cacheDir: path.join(tmp, 'cache') });
});
after(() => fs.rm(tmp, { recursive: true, force: true }));

test('a real TCG boot reaches /init (FORKD-PROBE-OK)', async () => {
  const r = await bootProbe('tcg', { kernel, initramfs, timeoutMs: 30_000 });
  assert.equal(r.ok, true, `${r.reason}\n${r.consoleTail}`);
  process.stderr.write(`# TCG kernel start -> /init marker: ${r.bootMs} ms\n`);
  // The probe VM's run dir is removed.
  assert.deepEqual(await fs.readdir(process.env.FORKD_RUN_DIR!), []);
});

test('a probe of a broken kernel fails fast instead of hanging', async () => {
  const bogus = path.join(tmp, 'not-a-kernel');
  await fs.writeFile(bogus, 'nope');
  const r = await bootProbe('tcg', { kernel: { path: bogus }, initramfs, timeoutMs: 10_000 });
  assert.equal(r.ok, false);
  assert.ok(r.bootMs < 5000);
  assert.match(r.reason, /QEMU exited/);
  // A boot that does not reach init in time is killed (the kvm_pvm "hang" case).
  const slow = await bootProbe('tcg', { kernel, initramfs, timeoutMs: 300 });
  assert.equal(slow.ok, false);
  assert.match(slow.reason, /did not reach init in 0 s/);
  assert.deepEqual(await fs.readdir(process.env.FORKD_RUN_DIR!), []);
});

test('tcg requested: no probe', async () => {
  assert.deepEqual(await resolveAccel({ requested: 'tcg', kernel, initramfs, cacheFile }), { accel: 'tcg', reason: 'TCG requested', probed: false });
});

test('auto probes KVM by a real boot, caches the verdict; on kvm_pvm it ends on tcg', async () => {
  const kvm = await kvmStatus();
  const t0 = Date.now();
  const v = await resolveAccel({ requested: 'auto', kernel, initramfs, cacheFile });
  const ms = Date.now() - t0;
  process.stderr.write(`# auto verdict ${v.accel} after ${ms} ms: ${v.reason}\n`);
  if (!kvm.openable) {
    assert.equal(v.accel, 'tcg');
    assert.equal(v.probed, false);
    return;
  }
  assert.equal(v.probed, true);
  assert.equal(v.cached, false);
  if (kvm.module === 'kvm_pvm') {
    assert.equal(v.accel, 'tcg');
    // Seen here: QEMU 7.2 with -cpu host aborts at once (MSR 0x10a); older reports: the kernel hangs (8 s timeout).
    assert.match(v.reason, /^KVM boot of .*(did not reach init in 8 s|failed: QEMU exited).*kvm_pvm/s);
  }
  const t1 = Date.now();
  const again = await resolveAccel({ requested: 'auto', kernel, initramfs, cacheFile });
  assert.equal(again.cached, true);
  assert.equal(again.accel, v.accel);
  assert.ok(Date.now() - t1 < 1000, 'cached verdict is instant');
  const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8')) as Record<string, { accel: string }>;
  assert.equal(Object.keys(cache).length, 1);
  assert.ok(Object.keys(cache)[0]!.startsWith(kernel.sha256));
  if (v.accel === 'tcg') {
    await assert.rejects(resolveAccel({ requested: 'kvm', kernel, initramfs, cacheFile }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_ACCEL_UNAVAILABLE');
  } else {
    assert.equal((await resolveAccel({ requested: 'kvm', kernel, initramfs, cacheFile })).accel, 'kvm');
  }
  assert.deepEqual(await fs.readdir(process.env.FORKD_RUN_DIR!), [], 'probe VMs leave nothing behind');
});
