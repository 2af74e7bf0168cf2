import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { sha256File } from '../util/fsx.js';

export interface KernelInfo {
  path: string;
  version: string;
  /** /lib/modules/<version> (may not exist for a kernel with everything built in). */
  modulesDir: string;
  sha256: string;
}

export interface ResolveKernelOptions {
  bootDir?: string;
  modulesRoot?: string;
}

const HINT = 'install a guest kernel: apt-get install linux-image-cloud-amd64 (or pass --kernel / FORKD_KERNEL)';

/** Compares dotted/dashed versions numerically ("6.1.0-10" < "6.1.0-9" is false). */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Reads the version string a bzImage carries (setup header field kernel_version at 0x20E). */
export async function bzImageVersion(file: string): Promise<string | null> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(0x10000 + 0x400);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
    const off = head.readUInt16LE(0x20e) + 0x200;
    if (off >= bytesRead) return null;
    const end = head.indexOf(0, off);
    const text = head.toString('latin1', off, end < 0 ? Math.min(bytesRead, off + 256) : end);
    return text.split(' ')[0] || null;
  } finally {
    await fh.close();
  }
}

/**
 * The guest kernel: an explicit path (--kernel / FORKD_KERNEL), else the newest
 * /boot/vmlinuz-*-cloud-amd64, else the newest /boot/vmlinuz-*.
 */
export async function resolveKernel(explicit?: string, opts: ResolveKernelOptions = {}): Promise<KernelInfo> {
  const bootDir = opts.bootDir ?? '/boot';
  const modulesRoot = opts.modulesRoot ?? '/lib/modules';
  let file: string;
  if (explicit) {
    file = path.resolve(explicit);
    try {
      if (!(await fs.stat(file)).isFile()) throw new Error('not a file');
    } catch {
      throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `kernel ${file} not found or not a file`, { path: file, hint: HINT });
    }
  } else {
    let names: string[] = [];
    try {
      names = (await fs.readdir(bootDir)).filter((n) => /^vmlinuz-.+/.test(n));
    } catch {
      // no /boot
    }
    const newest = (list: string[]) => list.sort((a, b) => compareVersions(b, a))[0];
    const pick = newest(names.filter((n) => n.endsWith('-cloud-amd64'))) ?? newest(names);
    if (!pick) throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `no guest kernel in ${bootDir}: ${HINT}`, { boot_dir: bootDir, hint: HINT });
    file = path.join(bootDir, pick);
  }
  const fromName = /^vmlinuz-(.+)$/.exec(path.basename(file))?.[1];
  let version = fromName;
  if (!version) {
    try {
      version = (await bzImageVersion(file)) ?? undefined;
    } catch {
      version = undefined;
    }
  }
  if (!version) throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `cannot tell the version of kernel ${file} (name it vmlinuz-<version> or use a bzImage)`, { path: file });
  let sha256: string;
  try {
    sha256 = await sha256File(file);
  } catch (e) {
    throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `cannot read kernel ${file}: ${(e as Error).message}`, { path: file, hint: HINT });
  }
  return { path: file, version, modulesDir: path.join(modulesRoot, version), sha256 };
}
