import { ForkdError } from '@forkd/protocol';
import { runTool } from './tools.js';

export interface QemuVersionInfo {
  /** "7.2.22" */
  version: string;
  major: number;
  minor: number;
  micro: number;
  /** The package suffix, e.g. "Debian 1:7.2+dfsg-7+deb12u18+b3" (empty if none). */
  pkg: string;
}

/** Parses the first line of `qemu-system-x86_64 --version`. */
export function parseQemuVersion(text: string): QemuVersionInfo {
  const m = /QEMU emulator version (\d+)\.(\d+)\.(\d+)(?:\s*\(([^)]*)\))?/.exec(text);
  if (!m) throw new ForkdError('FORKD_E_INTERNAL', `cannot parse QEMU version from: ${text.slice(0, 200)}`);
  const [major, minor, micro] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { version: `${major}.${minor}.${micro}`, major, minor, micro, pkg: m[4] ?? '' };
}

const cache = new Map<string, Promise<QemuVersionInfo>>();

export function qemuVersionInfo(binary = qemuBinary()): Promise<QemuVersionInfo> {
  let p = cache.get(binary);
  if (!p) {
    p = runTool(binary, ['--version'], { timeoutMs: 10_000 }).then(
      (r) => parseQemuVersion(r.stdout),
      (e: unknown) => {
        cache.delete(binary);
        if (e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING') {
          throw new ForkdError('FORKD_E_QEMU_NOT_INSTALLED', `${binary} not found: apt-get install qemu-system-x86`, { binary });
        }
        throw e;
      },
    );
    cache.set(binary, p);
  }
  return p;
}

/** "7.2.22" (cached per process). Snapshots are tagged with it: microvm state does not migrate across versions. */
export async function qemuVersion(binary = qemuBinary()): Promise<string> {
  return (await qemuVersionInfo(binary)).version;
}

/** The QEMU binary: FORKD_QEMU_BINARY overrides (a path or a name on PATH). */
export function qemuBinary(): string {
  return process.env.FORKD_QEMU_BINARY || 'qemu-system-x86_64';
}
