/**
 * The agent process's own native generators (OpenSSL's DRBGs, libc's random()) are cloned with
 * the snapshot. forkd-reseed.node (reseed-addon.c, compiled into the image) reseeds them; it is
 * loaded once at start, in the parent, so a restored child loads nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

export const RESEED_ADDON = 'forkd-reseed.node';

type ReseedFn = (openssl: Buffer, libc: Buffer) => number;

export class NativeReseed {
  private fn: ReseedFn | null = null;
  /** Why the addon is not loaded (absent outside images, or the load failed). */
  loadError: string | null = 'not loaded';

  load(helpersDir: string): void {
    const file = path.join(helpersDir, RESEED_ADDON);
    if (!fs.existsSync(file)) {
      this.loadError = `${file} is absent`;
      return;
    }
    try {
      const mod = { exports: {} as { reseed?: ReseedFn } };
      process.dlopen(mod, file);
      if (typeof mod.exports.reseed !== 'function') throw new Error('no reseed export');
      this.fn = mod.exports.reseed;
      this.loadError = null;
    } catch (e) {
      this.loadError = `${file}: ${(e as Error).message}`;
    }
  }

  /** Names of the generators reseeded (empty when the addon is not loaded). */
  reseed(openssl: Buffer, libc: Buffer): string[] {
    if (!this.fn) return [];
    const done = this.fn(openssl, libc);
    return [...(done & 1 ? ['agent.openssl'] : []), ...(done & 2 ? ['agent.libc'] : [])];
  }
}
