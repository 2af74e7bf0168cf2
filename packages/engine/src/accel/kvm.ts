import { promises as fs, constants as fsc } from 'node:fs';

export interface KvmStatus {
  /** /dev/kvm opens read-write. Necessary, not sufficient: only a real boot shows KVM works. */
  openable: boolean;
  /** Why it does not open (when it does not). */
  error?: string;
  /** kvm_intel, kvm_amd, kvm_pvm... from /sys/module (null if none is loaded). */
  module: string | null;
}

export async function kvmStatus(device = '/dev/kvm', sysModule = '/sys/module'): Promise<KvmStatus> {
  let module: string | null = null;
  try {
    const mods = (await fs.readdir(sysModule)).filter((m) => /^kvm_[a-z0-9_]+$/.test(m)).sort();
    module = mods[0] ?? null;
  } catch {
    module = null;
  }
  try {
    const fh = await fs.open(device, fsc.O_RDWR);
    await fh.close();
    return { openable: true, module };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { openable: false, error: `${device}: ${err.code ?? err.message}`, module };
  }
}
