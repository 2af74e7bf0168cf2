import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ForkdError, GUEST_NETWORK } from '@forkd/protocol';
import { sha256, sha256File, exists, writeFileAtomic } from '../util/fsx.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { loadModuleIndex, resolveModules } from './modules.js';
import { initScript, INIT_APPLETS } from './init-script.js';
import type { KernelInfo } from './kernel.js';

const execFileP = promisify(execFile);

/** Bump when the layout of the initramfs changes. */
const FORMAT = 1;
/** Modules the guest needs to reach its disk, agent channel and network on microvm (virtio-mmio via ACPI). */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_blk', 'virtio_console', 'virtio_net'] as const;

export interface InitramfsInfo {
  path: string;
  sha256: string;
  /** Modules loaded by /init, in order. */
  modules: string[];
  cached: boolean;
}

export interface BuildInitramfsOptions {
  cacheDir: string;
  busybox?: string;
  modules?: readonly string[];
}

async function moduleBytes(file: string): Promise<Buffer> {
  const run = async (cmd: string) => {
    try {
      return (await execFileP(cmd, ['-dc', file], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 })).stdout;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') throw new ForkdError('FORKD_E_TOOL_MISSING', `${cmd} is needed to unpack ${file}: apt-get install ${cmd === 'xz' ? 'xz-utils' : cmd}`, { tool: cmd });
      throw new ForkdError('FORKD_E_TOOL_FAILED', `${cmd} -dc ${file} failed: ${err.message}`, { tool: cmd });
    }
  };
  if (file.endsWith('.ko.xz')) return run('xz');
  if (file.endsWith('.ko.zst')) return run('zstd');
  const raw = await fs.readFile(file);
  return file.endsWith('.ko.gz') ? zlib.gunzipSync(raw) : raw;
}

/**
 * Builds (or finds cached) the gzipped initramfs for a kernel: static busybox, the virtio
 * modules that kernel has as modules (with dependencies, in load order) and /init. Cached under
 * cacheDir by a hash of everything that goes in; written atomically.
 */
export async function buildInitramfs(kernel: KernelInfo, opts: BuildInitramfsOptions): Promise<InitramfsInfo> {
  const busybox = opts.busybox ?? '/bin/busybox';
  let busyboxSha: string;
  try {
    busyboxSha = await sha256File(busybox);
  } catch {
    throw new ForkdError('FORKD_E_TOOL_MISSING', `${busybox} not found: apt-get install busybox-static`, { tool: 'busybox' });
  }
  const index = await loadModuleIndex(kernel.modulesDir);
  const mods = resolveModules(index, [...(opts.modules ?? GUEST_MODULES)]);
  const modData = await Promise.all(mods.map(async (m) => {
    const data = await moduleBytes(path.join(kernel.modulesDir, m.file));
    return { name: m.name, data, sha: sha256(data) };
  }));
  const names0 = mods.map((m) => m.name);
  const init = initScript(names0, names0.includes('virtio_net') ? { ifname: GUEST_NETWORK.guestIfname, addr: GUEST_NETWORK.guestAddr, prefixLen: GUEST_NETWORK.prefixLen, gateway: GUEST_NETWORK.gatewayAddr } : undefined);
  const key = sha256(JSON.stringify({ format: FORMAT, kernel: kernel.sha256, modules: modData.map((m) => [m.name, m.sha]), init, busybox: busyboxSha, applets: INIT_APPLETS }));
  const out = path.join(opts.cacheDir, `initramfs-${key.slice(0, 32)}.cpio.gz`);
  const names = modData.map((m) => m.name);
  if (await exists(out)) return { path: out, sha256: await sha256File(out), modules: names, cached: true };

  const entries: CpioEntry[] = [
    ...['dev', 'proc', 'sys', 'newroot', 'bin', 'lib', 'lib/modules'].map((d) => ({ type: 'dir' as const, path: d })),
    { type: 'file', path: 'bin/busybox', data: await fs.readFile(busybox), mode: 0o755 },
    ...INIT_APPLETS.map((a) => ({ type: 'symlink' as const, path: `bin/${a}`, target: 'busybox' })),
    ...modData.map((m) => ({ type: 'file' as const, path: `lib/modules/${m.name}.ko`, data: m.data, mode: 0o644 })),
    { type: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 },
  ];
  const gz = zlib.gzipSync(writeCpio(entries), { level: 9 });
  await fs.mkdir(opts.cacheDir, { recursive: true });
  await writeFileAtomic(out, gz);
  await fs.chmod(out, 0o644); // QEMU reads it from its jail (another uid); it holds busybox and modules only
  return { path: out, sha256: sha256(gz), modules: names, cached: false };
}
