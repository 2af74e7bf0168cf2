/**
 * The guest's system helper (forkd-sys: clock_settime + kernel RNG ioctls) is C, shipped as
 * source in the agent bundle and compiled here, on the host, when an image is built: a static
 * binary needs nothing from the guest's libc, and the guest image carries no compiler.
 */
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { runTool } from '../qemu/tools.js';

export const SYS_HELPER_SOURCE = 'sys-helper.c';
/** Installed next to agent.mjs; the agent starts it from there. */
export const SYS_HELPER_BINARY = 'forkd-sys';
/** Part of the image key: other flags make other bytes. */
export const SYS_HELPER_CFLAGS = ['-static', '-Os', '-s'] as const;

/** Compiles the helper into dir/forkd-sys. The guest is x86_64 (qemu-system-x86_64): so must the host compiler be. */
export async function compileSysHelper(sourcePath: string, dir: string): Promise<void> {
  if (process.arch !== 'x64') {
    throw new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `the guest helper is compiled with the host's gcc for x86_64 guests; this host is ${process.arch}`, { arch: process.arch });
  }
  const out = path.join(dir, SYS_HELPER_BINARY);
  try {
    await runTool('gcc', [...SYS_HELPER_CFLAGS, '-o', out, sourcePath], { timeoutMs: 120_000 });
  } catch (e) {
    if (e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING') {
      throw new ForkdError('FORKD_E_TOOL_MISSING', 'gcc is not installed: it builds the guest helper (apt-get install gcc libc6-dev)', { tool: 'gcc' });
    }
    throw e;
  }
}
