/**
 * QEMU under TCG asks for transparent huge pages on its translated-code buffer, so each child
 * holds that memory in 2 MiB steps although it touches far less. PR_SET_THP_DISABLE survives
 * execve, so a 10-line wrapper (compiled once per host with the system's gcc, cached) sets it and
 * execs QEMU: children hold less memory and start on less CPU, calls no slower (figures:
 * bench/README.md#qemu-without-transparent-huge-pages). Without a compiler, QEMU starts directly;
 * FORKD_QEMU_THP=on opts out.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { forkdHome } from '../home/paths.js';
import { runTool } from './tools.js';
import { which } from './which.js';

const SOURCE = `#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <string.h>
/* forkd: run argv[1..] with transparent huge pages disabled (inherited across execve);
   a leading --ksm also marks all its memory mergeable by KSM (PR_SET_MEMORY_MERGE, Linux 6.4). */
int main(int argc, char **argv) {
  int a = 1;
  if (argc > 1 && !strcmp(argv[1], "--ksm")) {
    a = 2;
    if (prctl(67, 1, 0, 0, 0) != 0) perror("prctl(PR_SET_MEMORY_MERGE)");
  }
  if (argc <= a) return 127;
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("prctl(PR_SET_THP_DISABLE)");
  execv(argv[a], argv + a);
  perror("execv");
  return 127;
}
`;

let cached: Promise<string | null> | null = null;

/**
 * FORKD_QEMU_KSM=on: QEMU's whole memory is marked mergeable (KSM, Linux 6.4+), so identical pages
 * of children (the softmmu TLB tables, zeroed heap, identical translated code) can be shared once
 * the host runs ksmd (/sys/kernel/mm/ksm/run=1, the operator's choice: ksmd costs CPU). Opt-in
 * (figures: bench/README.md#density).
 */
export function ksmWanted(): boolean {
  return process.env.FORKD_QEMU_KSM === 'on';
}

/** The wrapper's path, or null when it cannot be had (no gcc, or turned off). */
export function thpOffWrapper(): Promise<string | null> {
  if (process.env.FORKD_QEMU_THP === 'on') return Promise.resolve(null);
  cached ??= build().catch(() => null);
  return cached;
}

async function build(): Promise<string | null> {
  const dir = path.join(forkdHome(), 'cache', 'bin');
  const out = path.join(dir, `forkd-thp-off-${crypto.createHash('sha256').update(SOURCE).digest('hex').slice(0, 12)}`);
  try {
    await fs.access(out, fs.constants.X_OK);
    return out;
  } catch {
    /* build it */
  }
  const gcc = (await which('gcc')) ?? (await which('cc'));
  if (!gcc) return null;
  await fs.mkdir(dir, { recursive: true });
  const tag = crypto.randomBytes(4).toString('hex');
  const src = path.join(dir, `.thp-off-${tag}.c`);
  const tmp = `${out}.${tag}.tmp`;
  try {
    await fs.writeFile(src, SOURCE);
    await runTool(gcc, ['-O2', '-o', tmp, src], { timeoutMs: 60_000 });
    await fs.rename(tmp, out);
    return out;
  } finally {
    await fs.rm(src, { force: true });
    await fs.rm(tmp, { force: true });
  }
}
