import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { hostTscKhz } from './host-tsc.js';

// A real measurement (gcc builds the helper): it must agree with what the host kernel says about its
// CPU to within 5 % where /proc/cpuinfo reports a constant TSC (a VM host or a CPU without scaling).
test('hostTscKhz measures the host TSC rate once per host boot', { skip: process.arch !== 'x64' }, async () => {
  const home = await fs.mkdtemp('/tmp/forkd-tsc-test-');
  const prev = process.env.FORKD_HOME;
  process.env.FORKD_HOME = home;
  try {
    const khz = await hostTscKhz();
    assert.ok(Number.isInteger(khz) && khz > 100_000 && khz < 20_000_000, `implausible ${khz}`);
    assert.equal(await hostTscKhz(), khz, 'measured once, then cached');
    const cached = await fs.readFile(`${home}/cache/host-tsc-khz`, 'utf8');
    assert.equal(cached, `${(await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()} ${khz}\n`, 'kept per host boot for other processes');
    const info = await fs.readFile('/proc/cpuinfo', 'utf8');
    const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
    if (/\bconstant_tsc\b/.test(info) && /\bhypervisor\b/.test(info) && mhz > 0) assert.ok(Math.abs(khz / 1000 - mhz) / mhz < 0.05, `TSC ${khz} kHz vs cpu MHz ${mhz}`);
  } finally {
    if (prev === undefined) delete process.env.FORKD_HOME;
    else process.env.FORKD_HOME = prev;
    await fs.rm(home, { recursive: true, force: true });
  }
});
