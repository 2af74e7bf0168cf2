/**
 * The guest's helpers are C, shipped as source in the agent bundle and compiled here, on the host,
 * when an image is built: a static binary needs nothing from the guest's libc, and the guest image
 * carries no compiler. forkd-sys sets the clock and reseeds the kernel RNG; forkd-spawn starts
 * commands with posix_spawn (no fork of the agent); forkd-reseed.node reseeds OpenSSL and libc in
 * the agent process after a restore.
 */
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { runTool } from '../qemu/tools.js';

const STATIC_BINARY = ['-static', '-Os', '-s'] as const;
/**
 * A Node-API addon: its symbols (Node-API, OpenSSL, libc) come from the guest's Node process when
 * the agent loads it, all bound at load time (-z now) so a missing one fails the load, not a call.
 */
const GUEST_ADDON = ['-shared', '-fPIC', '-Os', '-s', '-Wl,-z,now'] as const;

/**
 * Source file in the agent bundle -> file installed next to agent.mjs (the agent starts or loads
 * them from there). The flags are part of the image key: other flags make other bytes.
 */
export const GUEST_HELPERS = [
  { source: 'sys-helper.c', binary: 'forkd-sys', cflags: STATIC_BINARY },
  { source: 'spawn-helper.c', binary: 'forkd-spawn', cflags: STATIC_BINARY },
  { source: 'reseed-addon.c', binary: 'forkd-reseed.node', cflags: GUEST_ADDON },
] as const;

/** Compiles every helper whose source is in dir. The guest is x86_64 (qemu-system-x86_64): so must the host compiler be. */
export async function compileGuestHelpers(dir: string): Promise<void> {
  for (const h of GUEST_HELPERS) await compileHelper(path.join(dir, h.source), path.join(dir, h.binary), h.cflags);
}

async function compileHelper(sourcePath: string, out: string, cflags: readonly string[]): Promise<void> {
  if (process.arch !== 'x64') {
    throw new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `the guest helper is compiled with the host's gcc for x86_64 guests; this host is ${process.arch}`, { arch: process.arch });
  }
  try {
    await runTool('gcc', [...cflags, '-o', out, sourcePath], { timeoutMs: 120_000 });
  } catch (e) {
    if (e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING') {
      throw new ForkdError('FORKD_E_TOOL_MISSING', 'gcc is not installed: it builds the guest helper (apt-get install gcc libc6-dev)', { tool: 'gcc' });
    }
    throw e;
  }
}
