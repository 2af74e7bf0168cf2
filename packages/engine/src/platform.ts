import path from 'node:path';
import type { HomeLayout } from './home/paths.js';
import { type ProgressFn, noProgress } from './progress.js';
import { resolveKernel, type KernelInfo } from './boot/kernel.js';
import { buildInitramfs } from './boot/initramfs.js';
import { resolveAccel } from './accel/probe.js';
import { qemuVersion } from './qemu/version.js';

export type AccelRequest = 'auto' | 'kvm' | 'tcg';

export interface PlatformEnv {
  qemuVersion: string;
  kernel: KernelInfo;
  initramfs: { path: string; sha256: string };
  accel: 'kvm' | 'tcg';
  accelReason: string;
  accelProbed: boolean;
}

/**
 * What this host offers: QEMU version, guest kernel + initramfs, and the acceleration verdict
 * (probed by a real boot, cached per kernel). Resolved once per process.
 */
export class Platform {
  private env: Promise<PlatformEnv> | null = null;

  constructor(
    private readonly layout: HomeLayout,
    readonly opts: { kernel?: string; accel?: AccelRequest } = {},
  ) {}

  resolve(onProgress: ProgressFn = noProgress): Promise<PlatformEnv> {
    if (!this.env) {
      this.env = this.doResolve(onProgress);
      this.env.catch(() => {
        this.env = null;
      });
    }
    return this.env;
  }

  private async doResolve(onProgress: ProgressFn): Promise<PlatformEnv> {
    const version = await qemuVersion();
    const kernel = await resolveKernel(this.opts.kernel ?? process.env.FORKD_KERNEL);
    onProgress({ phase: 'platform', message: `kernel ${kernel.version}, QEMU ${version}` });
    const initramfs = await buildInitramfs(kernel, { cacheDir: path.join(this.layout.cache, 'initramfs') });
    const requested = this.opts.accel ?? ((process.env.FORKD_ACCEL as AccelRequest | undefined) || 'auto');
    if (requested === 'auto') onProgress({ phase: 'platform', message: 'checking acceleration (cached after the first probe)' });
    const verdict = await resolveAccel({ requested, kernel, initramfs, cacheFile: this.layout.accelCache });
    onProgress({ phase: 'platform', message: `acceleration: ${verdict.accel} (${verdict.reason})` });
    return { qemuVersion: version, kernel, initramfs, accel: verdict.accel, accelReason: verdict.reason, accelProbed: verdict.probed };
  }
}
