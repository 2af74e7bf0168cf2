/**
 * The agent's own runtime for images that bring nothing of forkd's (any OCI image): Node and the
 * libraries it links, relinked to load only from /.forkd/lib (patchelf: interpreter and RPATH),
 * a static busybox for the init, tini-static as PID 1, and the agent bundle with its helpers.
 * It sits at /.forkd in the image, so the image's own libc, shell and PATH are never used by the
 * agent, and the agent's are never seen by the image's programs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { runTool } from '../qemu/tools.js';
import { compileGuestHelpers } from '../image/guest-helpers.js';

/** Where the runtime lives in the guest (the initramfs hands over to RUNTIME_INIT when it exists). */
export const RUNTIME_DIR = '/.forkd';
export const RUNTIME_INIT = `${RUNTIME_DIR}/init`;
/** The image config (Env, WorkingDir, User) the agent applies to commands. */
export const IMAGE_CONFIG_FILE = `${RUNTIME_DIR}/image.json`;

/**
 * PID 1 after switch_root: the mounts /sbin/forkd-init makes for Debian images, with busybox's
 * applets by full path (the image may have no shell), then the agent under tini.
 */
export function runtimeInitScript(): string {
  const b = `${RUNTIME_DIR}/bin/busybox`;
  return `#!${b} sh
${b} mkdir -p /proc /sys /tmp /run /dev/pts /dev/shm
${b} mount -t proc proc /proc
${b} mount -t sysfs sys /sys
${b} mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
${b} mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
${b} mount -t devpts -o gid=5,mode=620 devpts /dev/pts
${b} mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
${b} hostname forkd
export HOME=/root LANG=C.UTF-8 FORKD_IMAGE_CONFIG=${IMAGE_CONFIG_FILE} FORKD_SETUID=${RUNTIME_DIR}/bin/forkd-setuid
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /
exec ${RUNTIME_DIR}/bin/tini -s -- ${RUNTIME_DIR}/bin/node --max-semi-space-size=1 --no-lazy-feedback-allocation ${RUNTIME_DIR}/agent/agent.mjs
`;
}

/** Drops to the image config's User for a command (setpriv may not be in the image; busybox's cannot change uid). */
const SETUID_HELPER_C = `#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: forkd-setuid UID GID PROG [ARGS]\\n"); return 127; }
  uid_t uid = (uid_t)strtoul(argv[1], 0, 10);
  gid_t gid = (gid_t)strtoul(argv[2], 0, 10);
  if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) { perror("forkd-setuid"); return 126; }
  execvp(argv[3], argv + 3);
  perror(argv[3]);
  return 127;
}
`;

/** The shared libraries a binary of the Debian root filesystem loads, resolved inside it (its own ldd). */
async function libraryClosure(rootfs: string, binary: string): Promise<string[]> {
  const { stdout } = await runTool('chroot', [rootfs, '/usr/bin/ldd', binary]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s+(\/\S+)\s/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  if (!libs.some((l) => l.includes('ld-linux'))) throw new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `ldd of ${binary} named no dynamic loader`);
  return libs;
}

/**
 * A path of the Debian root filesystem with its symlinks followed inside it (an absolute link
 * such as /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/... names the root's own file).
 */
export async function realpathInRoot(root: string, p: string, hops = 0): Promise<string> {
  const parts = p.split('/').filter((c) => c && c !== '.');
  let current = '/';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '..') { current = path.posix.dirname(current); continue; }
    const next = path.posix.join(current, part);
    const stat = await fs.lstat(path.join(root, next));
    if (!stat.isSymbolicLink()) { current = next; continue; }
    if (++hops > 40) throw new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `too many symlinks resolving ${p}`);
    const target = await fs.readlink(path.join(root, next));
    const base = target.startsWith('/') ? target : path.posix.join(current, target);
    return realpathInRoot(root, path.posix.join(base, ...parts.slice(i + 1)), hops);
  }
  return path.join(root, current);
}

/** Writes the runtime into tree/.forkd from a Debian root filesystem that has the agent's packages. */
export async function installRuntime(tree: string, debianRootfs: string, agentFiles: Array<{ name: string; data: Buffer }>): Promise<void> {
  const dir = path.join(tree, RUNTIME_DIR);
  const bin = path.join(dir, 'bin');
  const lib = path.join(dir, 'lib');
  const agent = path.join(dir, 'agent');
  for (const d of [bin, lib, agent]) await fs.mkdir(d, { recursive: true, mode: 0o755 });
  const inRoot = (p: string) => path.join(debianRootfs, p);
  await fs.copyFile(inRoot('/usr/bin/node'), path.join(bin, 'node'));
  for (const l of await libraryClosure(debianRootfs, '/usr/bin/node')) {
    await fs.copyFile(await realpathInRoot(debianRootfs, l), path.join(lib, path.basename(l)));
  }
  await fs.copyFile(inRoot('/usr/bin/tini-static'), path.join(bin, 'tini'));
  await fs.copyFile('/bin/busybox', path.join(bin, 'busybox'));
  const loader = `${RUNTIME_DIR}/lib/ld-linux-x86-64.so.2`;
  try {
    await runTool('patchelf', ['--set-interpreter', loader, '--force-rpath', '--set-rpath', `${RUNTIME_DIR}/lib`, path.join(bin, 'node')]);
    for (const l of await fs.readdir(lib)) {
      if (l.startsWith('ld-linux')) continue;
      await runTool('patchelf', ['--force-rpath', '--set-rpath', `${RUNTIME_DIR}/lib`, path.join(lib, l)]);
    }
  } catch (e) {
    if (e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING') throw new ForkdError('FORKD_E_TOOL_MISSING', 'patchelf is not installed: it relinks the agent runtime for OCI images (apt-get install patchelf)', { tool: 'patchelf' });
    throw e;
  }
  for (const f of agentFiles) await fs.writeFile(path.join(agent, f.name), f.data, { mode: 0o644 });
  await compileGuestHelpers(agent);
  const setuidSource = path.join(dir, 'forkd-setuid.c');
  await fs.writeFile(setuidSource, SETUID_HELPER_C);
  await runTool('gcc', ['-static', '-Os', '-s', '-o', path.join(bin, 'forkd-setuid'), setuidSource], { timeoutMs: 120_000 });
  await fs.rm(setuidSource);
  for (const f of await fs.readdir(bin)) await fs.chmod(path.join(bin, f), 0o755);
  await fs.writeFile(path.join(tree, RUNTIME_INIT), runtimeInitScript(), { mode: 0o755 });
}
