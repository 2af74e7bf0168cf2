import { ForkdError, GUEST_NETWORK } from '@forkd/protocol';

export type Accel = 'kvm' | 'tcg';

export interface VmSpec {
  name: string;
  accel: Accel;
  /** TCG translation-cache size (MiB). Not migrated state: children may cap it to bound memory. */
  tcgTbSizeMib?: number;
  vcpus: number;
  memMib: number;
  /** File backing guest RAM. share=on: the file is the RAM (a snapshot parent); share=off: private copy-on-write. */
  memPath: string;
  memShare: boolean;
  /** Cold boots only. Children restored with `incoming` carry no kernel (it is already in guest RAM). */
  kernel?: { path: string; initrd: string; append: string };
  /** cache: 'writeback' (default) honours guest flushes; 'unsafe' drops them (disposable overlays only). */
  disk?: { path: string; format: 'qcow2' | 'raw'; readOnly?: boolean; cache?: 'writeback' | 'unsafe' };
  agentSocket: string;
  qmpSocket: string;
  console: { kind: 'file'; path: string } | { kind: 'null' };
  /** Start paused, waiting for `migrate-incoming` (a child restored from a snapshot). */
  incoming?: boolean;
  /** -S: never start the guest on its own, even after an incoming migration (a branch receiver). */
  startPaused?: boolean;
  /** A second QMP monitor, used only to hand QEMU migration descriptors (vm/migration.ts). */
  fdQmpSocket?: string;
  /** QEMU's seccomp policy (qemu/jail.ts SECCOMP_ARG). */
  seccomp?: string;
  /** Files outside the run dir the VM reads besides kernel, RAM and disk: the disk's backing chain. */
  jailReadOnly?: string[];
  /**
   * The network device's backend: a tap QEMU opens by name (in the namespace QEMU runs in). Absent:
   * the device exists with no backend (nothing answers), so parents and children keep one device set.
   */
  tap?: string;
}

/** Name of the virtio-serial port the guest agent opens (found via /sys/class/virtio-ports/*\/name). */
export const AGENT_PORT_NAME = 'org.forkd.agent';

const MAX_VCPUS = 64;
const MAX_MEM_MIB = 1024 * 1024;

/**
 * A value inside a QEMU option string (`key=value,key=value`): ',' is escaped as ',,'.
 * Control characters (newline, NUL...) are rejected: nothing legitimate needs them.
 */
export function qemuOptValue(v: string, what: string): string {
  if (v.length === 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${what} is empty`);
  if (/[\x00-\x1f\x7f]/.test(v)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${what} contains a control character: ${JSON.stringify(v)}`);
  return v.replaceAll(',', ',,');
}

/** A value QEMU takes literally (no option parsing): -kernel, -initrd, -append, -name guest=. */
function literal(v: string, what: string): string {
  qemuOptValue(v, what);
  return v;
}

function checkInt(v: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `${what} must be an integer from ${min} to ${max}; got ${v}`, { [what]: v, min, max });
  return v;
}

/**
 * The QEMU argument vector for a microvm. Pure. The device part (machine, memory backend, disk,
 * virtio-serial) is emitted in one fixed order for parents and children alike: migration
 * requires the same devices in the same order on both sides. Only share=, the socket/console
 * paths, the kernel (parents only) and -incoming differ. Returned as an array for execve: no
 * shell ever sees it.
 */
export function buildQemuArgs(spec: VmSpec): string[] {
  const vcpus = checkInt(spec.vcpus, 1, MAX_VCPUS, 'vcpus');
  const mem = checkInt(spec.memMib, 16, MAX_MEM_MIB, 'memMib');
  if (spec.accel !== 'kvm' && spec.accel !== 'tcg') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unknown accel ${String(spec.accel)}`);
  if (spec.incoming && spec.kernel) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'a VM restored with -incoming must not be given a kernel');
  const args: string[] = [
    '-name', `guest=${qemuOptValue(spec.name, 'name')}`,
    '-M', `microvm,x-option-roms=off,rtc=on${idleTuning() ? ',pit=off' : ''},memory-backend=mem`,
    ...(spec.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', spec.tcgTbSizeMib ? `tcg,tb-size=${spec.tcgTbSizeMib}` : 'tcg', '-cpu', 'max']),
    '-smp', String(vcpus),
    '-m', `${mem}M`,
    '-nodefaults', '-no-user-config', '-no-reboot', '-nographic',
    '-object', `memory-backend-file,id=mem,size=${mem}M,mem-path=${qemuOptValue(spec.memPath, 'memPath')},share=${spec.memShare ? 'on' : 'off'}`,
  ];
  if (spec.kernel) {
    args.push('-kernel', literal(spec.kernel.path, 'kernel path'), '-initrd', literal(spec.kernel.initrd, 'initrd path'), '-append', literal(spec.kernel.append, 'kernel cmdline'));
  }
  if (spec.disk) {
    const d = spec.disk;
    if (d.format !== 'qcow2' && d.format !== 'raw') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unknown disk format ${String(d.format)}`);
    const cache = d.cache ?? 'writeback';
    if (cache !== 'writeback' && cache !== 'unsafe') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unknown disk cache mode ${String(cache)}`);
    // werror/rerror=report: a failed write (host disk full, the overlay's size cap) is an I/O error
    // in the guest, never a VM paused by QEMU's default werror=enospc (security review I3).
    args.push('-drive', `if=none,id=root,file=${qemuOptValue(d.path, 'disk path')},format=${d.format},cache=${cache},werror=report,rerror=report${d.readOnly ? ',readonly=on' : ''}`);
    args.push('-device', 'virtio-blk-device,drive=root');
  }
  args.push(
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent,path=${qemuOptValue(spec.agentSocket, 'agentSocket')},server=on,wait=off`,
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
    '-qmp', `unix:${qemuOptValue(spec.qmpSocket, 'qmpSocket')},server=on,wait=off`,
  );
  if (spec.fdQmpSocket) args.push('-qmp', `unix:${qemuOptValue(spec.fdQmpSocket, 'fdQmpSocket')},server=on,wait=off`);
  // The device is the same whatever the backend (the backend is not migrated state, the device
  // is). vnet_hdr=off: with a vnet-header tap virtio-net offers offloads that a backend-less
  // device does not, and a child must offer every feature its snapshot's guest negotiated.
  if (spec.tap !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(spec.tap)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid tap name ${JSON.stringify(spec.tap)}`);
    args.push('-netdev', `tap,id=n0,ifname=${spec.tap},script=no,downscript=no,vnet_hdr=off`);
  }
  args.push('-device', `virtio-net-device,${spec.tap !== undefined ? 'netdev=n0,' : ''}mac=${GUEST_NETWORK.mac}`);
  if (spec.console.kind === 'file') {
    // `-serial file:X` takes X literally, so go through -chardev where ',,' escaping is uniform.
    args.push('-chardev', `file,id=console,path=${qemuOptValue(spec.console.path, 'console path')}`, '-serial', 'chardev:console');
  } else {
    args.push('-serial', 'null');
  }
  if (spec.incoming) args.push('-incoming', 'defer');
  if (spec.startPaused) args.push('-S');
  if (spec.seccomp) args.push('-sandbox', literal(spec.seccomp, 'seccomp'));
  return args;
}

/**
 * Settings that make an idle guest quiet; FORKD_IDLE_TUNING=off leaves them out (a bench baseline).
 * Machine side, pit=off (bench/README.md#idle-cost): microvm's i8254 PIT keeps the square wave of
 * its reset state running (a QEMU timer toggling its output every 27.5 ms, ~36 main-loop wake-ups a
 * second) whether or not the guest listens. The guest needs no PIT: its TSC rate comes from
 * tsc_early_khz (TCG) or kvm-clock (KVM), its timer from the LAPIC. The RTC stays (rtc=on): its
 * update timer sleeps until the next alarm (once a day) once nobody reads register C, and the
 * guest kernel reads the wall clock from it at boot. The machine arguments are part of a
 * snapshot's machine signature, so a snapshot restores only under the setting it was made with.
 */
export function idleTuning(): boolean {
  return process.env.FORKD_IDLE_TUNING !== 'off';
}

/**
 * Kernel arguments that stop an idle guest waking its host (bench/README.md#idle-cost): each guest
 * wake-up is a wake-up of QEMU's main and vCPU threads, and under TCG a run of translated code.
 * - tsc=reliable: no clocksource watchdog (a timer every 0.5 s checking the TSC against jiffies;
 *   the host TSC under TCG, or kvm-clock under KVM, is what the guest must trust anyway).
 * - nowatchdog: no soft/hard lockup detector (an hrtimer every 4 s); the host kills stuck guests.
 * - vm.compaction_proactiveness=0: kcompactd stops waking every 500 ms to score fragmentation for
 *   proactive compaction (it still compacts on demand); a sandbox has no use for huge pages.
 */
const IDLE_KERNEL_ARGS = ['tsc=reliable', 'nowatchdog', 'sysctl.vm.compaction_proactiveness=0'];

/**
 * The guest kernel command line. Under TCG the 6.1 kernel hangs calibrating the TSC on microvm
 * (no port 0x61) unless it is told the TSC and loop rates, and runs without address randomisation.
 * tscKhz: the host's TSC rate (qemu/host-tsc.ts), which TCG guests read as theirs.
 */
export function kernelCmdline(accel: Accel, extra: string[] = [], o: { tscKhz?: number } = {}): string {
  const parts = ['console=ttyS0', 'quiet', 'panic=-1', 'reboot=t'];
  const tune = idleTuning();
  if (accel === 'tcg') parts.push(`tsc_early_khz=${tune && o.tscKhz !== undefined ? checkInt(o.tscKhz, 100_000, 20_000_000, 'tscKhz') : 2000000}`, 'lpj=4000000');
  if (tune) parts.push(...IDLE_KERNEL_ARGS);
  // QEMU 7.2's TCG keys translated code by virtual address, so with ASLR every new process
  // re-translates its libraries at their new addresses: each exec costs several times more
  // (bench/README.md#guest-aslr-off-under-tcg). TCG does not speculate, and the guest's processes
  // are all the tenant's: guest ASLR guards nothing there. FORKD_GUEST_ASLR=on keeps it.
  if (accel === 'tcg' && process.env.FORKD_GUEST_ASLR !== 'on') parts.push('norandmaps');
  for (const e of extra) {
    if (!/^[A-Za-z0-9_.,:/=+@-]+$/.test(e)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `kernel argument ${JSON.stringify(e)} has unsupported characters`);
    parts.push(e);
  }
  return parts.join(' ');
}
