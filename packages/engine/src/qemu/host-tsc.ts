/**
 * The host's TSC rate, for guests under TCG. QEMU 7.2's TCG hands the guest the host's own TSC
 * (rdtsc reads cpu_get_host_ticks()), but microvm has no PIT port 0x61, so the guest kernel cannot
 * calibrate it and must be told its rate (tsc_early_khz). A wrong rate costs twice: the guest's
 * clock drifts by the error (a fixed 2 GHz on a 2.096 GHz host ran 4.8 % fast), and the LAPIC
 * timer, calibrated against that TSC, fires early, so every guest timer takes two interrupts
 * (two host wake-ups) instead of one (bench/README.md#idle-cost).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { forkdHome } from '../home/paths.js';
import { hostHelper } from './host-helpers.js';
import { runTool } from './tools.js';

/** The rate the kernel is told when the host's cannot be measured (not an x86-64 host). */
export const FALLBACK_TSC_KHZ = 2_000_000;

// Counts TSC ticks against CLOCK_MONOTONIC_RAW over 3 x 50 ms and prints the median rate in kHz.
const TSC_RATE_SOURCE = `#include <stdio.h>
#include <time.h>
#include <x86intrin.h>
static double ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC_RAW, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(void) {
  double r[3];
  for (int i = 0; i < 3; i++) {
    struct timespec d = { 0, 50000000 };
    double t0 = ns(); unsigned long long c0 = __rdtsc();
    nanosleep(&d, 0);
    unsigned long long c1 = __rdtsc(); double t1 = ns();
    r[i] = (double)(c1 - c0) / (t1 - t0) * 1e6;
  }
  double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];
  printf("%.0f\\n", r[2] < lo ? lo : r[2] > hi ? hi : r[2]);
  return 0;
}
`;

let measured: Promise<number> | null = null;

/**
 * The host TSC rate in kHz, measured once per host boot (~150 ms) and kept in <home>/cache: the same
 * host gives the same kernel line, so a snapshot's recorded line stays comparable across processes.
 */
export function hostTscKhz(): Promise<number> {
  if (process.arch !== 'x64') return Promise.resolve(FALLBACK_TSC_KHZ);
  measured ??= cachedPerBoot();
  measured.catch(() => (measured = null));
  return measured;
}

async function cachedPerBoot(): Promise<number> {
  const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const file = path.join(forkdHome(), 'cache', 'host-tsc-khz');
  const m = /^(\S+) (\d+)\n?$/.exec(await fs.readFile(file, 'utf8').catch(() => ''));
  if (m && m[1] === bootId) return Number(m[2]);
  const khz = await measure();
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${bootId} ${khz}\n`);
  await fs.rename(tmp, file);
  return khz;
}

async function measure(): Promise<number> {
  const bin = await hostHelper({ name: 'forkd-tsc-rate', source: TSC_RATE_SOURCE });
  const { stdout } = await runTool(bin, [], { timeoutMs: 10_000 });
  const khz = Number(stdout.trim());
  // Anything outside 100 MHz..20 GHz is a broken measurement, not a CPU.
  if (!Number.isInteger(khz) || khz < 100_000 || khz > 20_000_000) throw new ForkdError('FORKD_E_INTERNAL', `measured host TSC rate is implausible: ${JSON.stringify(stdout.trim())} kHz`);
  return khz;
}
