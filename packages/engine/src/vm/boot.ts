import path from 'node:path';
import type { PingResultT } from '@forkd/protocol';
import { kernelCmdline } from '../qemu/args.js';
import { hostTscKhz } from '../qemu/host-tsc.js';
import { runTool } from '../qemu/tools.js';
import type { PlatformEnv } from '../platform.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { Vm } from './vm.js';
import type { QemuStarter } from '../qemu/start.js';
import type { NetworkLease } from '../network/index.js';
import { nowMs, since } from '../util/timing.js';

export interface BootOptions {
  memMib: number;
  vcpus: number;
  /** The image the disk overlay is backed by. */
  imagePath: string;
  /** Its format: raw (an image), or qcow2 (a template build's step layer, whose chain is in backingChain). */
  imageFormat?: 'raw' | 'qcow2';
  /** The image's own backing files (a qcow2 layer's chain down to its raw image): the jail shows them read-only. */
  backingChain?: string[];
  /** Where memory and the disk overlay live; defaults to the VM's run directory. */
  stateDir?: string;
  /** share=on makes the RAM file a snapshot parent's memory; cold boots use private RAM. */
  memShare: boolean;
  bootTimeoutMs?: number;
  onProgress?: ProgressFn;
  starter?: QemuStarter;
  /** A network namespace with a way out for this VM (a parent whose recipe warms up online). */
  network?: (vmId: string, tapOwner?: number) => Promise<NetworkLease>;
}

/** The kernel command line a cold boot under `accel` gets now (the snapshot carries the one it booted with). */
export async function guestCmdline(accel: 'kvm' | 'tcg'): Promise<string> {
  return kernelCmdline(accel, [], accel === 'tcg' ? { tscKhz: await hostTscKhz() } : {});
}

/** Boots a fresh VM from an image with the project's kernel + initramfs; resolves once the agent answers. */
export async function bootFromImage(env: PlatformEnv, kind: string, o: BootOptions): Promise<{ vm: Vm; bootMs: number; ping: PingResultT; cmdline: string; diskPath: string; backing: string }> {
  const onProgress = o.onProgress ?? noProgress;
  const cmdline = await guestCmdline(env.accel);
  const t0 = nowMs();
  let diskPath = '';
  let backing = '';
  onProgress({ phase: 'boot', message: `booting ${kind} (${env.accel}, ${o.memMib} MiB, ${o.vcpus} vCPU)` });
  const vm = await Vm.start(kind, {
    accel: env.accel,
    vcpus: o.vcpus,
    memMib: o.memMib,
    memPath: '',
    memShare: o.memShare,
    kernel: { path: env.kernel.path, initrd: env.initramfs.path, append: cmdline },
    jailReadOnly: [o.imagePath, ...(o.backingChain ?? [])],
    consoleLog: true,
  }, {
    prepare: async (runDir) => {
      const dir = o.stateDir ?? runDir;
      diskPath = path.join(dir, 'disk.qcow2');
      // Relative backing path: the layer stays valid when its directory is renamed into place.
      backing = path.relative(dir, o.imagePath);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', backing, '-F', o.imageFormat ?? 'raw', diskPath], { cwd: dir });
      return { memPath: path.join(dir, 'memory.bin'), disk: { path: diskPath, format: 'qcow2' } };
    },
    ...(o.starter ? { starter: o.starter } : {}),
    ...(o.network ? { network: o.network } : {}),
  });
  try {
    const agent = await vm.guard(vm.connectAgent(30_000), 'connecting to the agent socket');
    const ping = await vm.guard(agent.ping({ timeoutMs: o.bootTimeoutMs ?? 240_000 }), 'waiting for the guest agent to boot');
    const bootMs = since(t0);
    onProgress({ phase: 'boot', message: `agent answered after ${(bootMs / 1000).toFixed(1)} s` });
    return { vm, bootMs, ping, cmdline, diskPath, backing };
  } catch (e) {
    await vm.kill();
    throw e;
  }
}
