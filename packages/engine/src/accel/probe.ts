import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { kernelCmdline, type Accel } from '../qemu/args.js';
import { startQemu } from '../qemu/start.js';
import { qemuVersion } from '../qemu/version.js';
import { createVmDir } from '../runtime/dir.js';
import { PROBE_MARKER } from '../boot/init-script.js';
import { kvmStatus, type KvmStatus } from './kvm.js';
import { readVerdict, writeVerdict } from './cache.js';

export interface ProbeResult {
  ok: boolean;
  /** QEMU start to the marker on the console (or to giving up). */
  bootMs: number;
  /** Why it failed (empty when ok). */
  reason: string;
  consoleTail: string;
}

export interface ProbeInputs {
  kernel: { path: string };
  initramfs: { path: string };
  timeoutMs?: number;
  memMib?: number;
}

/**
 * Boots the kernel + initramfs with forkd.probe=1 under `accel` and waits for /init to print
 * the probe marker on the serial console. QEMU is killed on timeout. A real boot is the only
 * reliable test: /dev/kvm may open and still hang every stock kernel (kvm_pvm).
 */
export async function bootProbe(accel: Accel, o: ProbeInputs): Promise<ProbeResult> {
  const timeoutMs = o.timeoutMs ?? 8000;
  const vmDir = await createVmDir('probe');
  const consolePath = path.join(vmDir.dir, 'console.log');
  const t0 = Date.now();
  try {
    const { proc, qmp } = await startQemu(
      {
        name: `forkd-probe-${vmDir.id}`,
        accel,
        vcpus: 1,
        memMib: o.memMib ?? 256,
        memPath: path.join(vmDir.dir, 'memory.bin'),
        memShare: false,
        kernel: { path: o.kernel.path, initrd: o.initramfs.path, append: kernelCmdline(accel, ['forkd.probe=1']) },
        agentSocket: path.join(vmDir.dir, 'agent.sock'),
        qmpSocket: path.join(vmDir.dir, 'qmp.sock'),
        console: { kind: 'file', path: consolePath },
      },
      { runDir: vmDir.dir },
    );
    qmp.close(); // the probe reads the console, not QMP
    await vmDir.setQemuPid(proc.pid);
    const deadline = t0 + timeoutMs;
    let text = '';
    try {
      for (;;) {
        text = await fs.readFile(consolePath, 'utf8').catch(() => '');
        if (text.includes(PROBE_MARKER)) return { ok: true, bootMs: Date.now() - t0, reason: '', consoleTail: text.slice(-2000) };
        if (proc.hasExited) {
          const ex = await proc.exited;
          return { ok: false, bootMs: Date.now() - t0, reason: `failed: QEMU exited (${ex.signal ?? `code ${ex.code}`}) before init ran: ${proc.stderrTail().trim().slice(-500).replace(/\s*\n\s*/g, ' / ')}`, consoleTail: text.slice(-2000) };
        }
        if (Date.now() > deadline) return { ok: false, bootMs: Date.now() - t0, reason: `did not reach init in ${Math.round(timeoutMs / 1000)} s`, consoleTail: text.slice(-2000) };
        await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 25))]);
      }
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  } catch (e) {
    if (e instanceof ForkdError && e.code === 'FORKD_E_VM_START_FAILED') return { ok: false, bootMs: Date.now() - t0, reason: `failed: ${e.message}`, consoleTail: '' };
    throw e;
  } finally {
    await vmDir.remove();
  }
}

export interface ResolveAccelOptions {
  requested: 'auto' | 'kvm' | 'tcg';
  kernel: { path: string; sha256: string };
  initramfs: { path: string; sha256?: string };
  /** JSON file of cached verdicts, keyed by kernel sha256 + QEMU version + KVM module. */
  cacheFile: string;
  /** Budget of the KVM boot probe. Default 8 s (a KVM guest reaches /init in well under 1 s). */
  timeoutMs?: number;
}

export interface AccelVerdict {
  accel: Accel;
  reason: string;
  /** The verdict rests on a real boot (now or cached). */
  probed: boolean;
  /** The verdict came from the cache file. */
  cached?: boolean;
  bootMs?: number;
}

function describeKvm(k: KvmStatus): string {
  if (k.module === 'kvm_pvm') return '/dev/kvm is kvm_pvm: a nested PVM hypervisor that only runs PVM-enabled guest kernels';
  if (k.module) return `/dev/kvm is ${k.module}; nested or broken virtualisation?`;
  return 'no kvm_* module found in /sys/module; nested virtualisation?';
}

async function probeKvm(o: ResolveAccelOptions, kvm: KvmStatus): Promise<AccelVerdict> {
  const version = await qemuVersion();
  const key = `${o.kernel.sha256}|qemu-${version}|${kvm.module ?? 'kvm'}`;
  const hit = await readVerdict(o.cacheFile, key);
  if (hit) return { accel: hit.accel, reason: hit.reason, probed: true, cached: true, ...(hit.bootMs !== undefined ? { bootMs: hit.bootMs } : {}) };
  const timeoutMs = o.timeoutMs ?? 8000;
  const r = await bootProbe('kvm', { kernel: o.kernel, initramfs: o.initramfs, timeoutMs });
  const verdict: AccelVerdict = r.ok
    ? { accel: 'kvm', reason: `KVM boot of ${path.basename(o.kernel.path)} reached init in ${r.bootMs} ms (${kvm.module ?? 'kvm'})`, probed: true, cached: false, bootMs: r.bootMs }
    : { accel: 'tcg', reason: `KVM boot of ${path.basename(o.kernel.path)} ${r.reason} (${describeKvm(kvm)})`, probed: true, cached: false, bootMs: r.bootMs };
  await writeVerdict(o.cacheFile, key, { accel: verdict.accel, reason: verdict.reason, bootMs: r.bootMs, at: new Date().toISOString() });
  return verdict;
}

/**
 * Decides between KVM and TCG. auto: TCG when /dev/kvm cannot be opened, else a real KVM boot
 * probe decides (cached). kvm: the same probe, but failure is FORKD_E_ACCEL_UNAVAILABLE.
 * tcg: no probe (use bootProbe('tcg', ...) to check that TCG boots).
 */
export async function resolveAccel(o: ResolveAccelOptions): Promise<AccelVerdict> {
  if (o.requested === 'tcg') return { accel: 'tcg', reason: 'TCG requested', probed: false };
  if (o.requested !== 'auto' && o.requested !== 'kvm') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `accel must be auto, kvm or tcg; got ${String(o.requested)}`);
  const kvm = await kvmStatus();
  if (!kvm.openable) {
    if (o.requested === 'kvm') throw new ForkdError('FORKD_E_ACCEL_UNAVAILABLE', `KVM requested but ${kvm.error}`, { module: kvm.module });
    return { accel: 'tcg', reason: `KVM unavailable (${kvm.error}); using TCG (software emulation, slower)`, probed: false };
  }
  const v = await probeKvm(o, kvm);
  if (o.requested === 'kvm' && v.accel !== 'kvm') throw new ForkdError('FORKD_E_ACCEL_UNAVAILABLE', `KVM requested but unusable: ${v.reason}`, { module: kvm.module });
  return v;
}
