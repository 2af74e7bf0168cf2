/**
 * Small C programs forkd runs on the host (the THP wrapper, the jail's mount view, fd passing to
 * QEMU, the read-only RAM shim), compiled once per host with the system's gcc and cached under
 * <home>/cache/bin by a hash of their source and flags: Node cannot unshare a mount namespace or
 * send a descriptor over a Unix socket, and a shell per launch costs more than an exec.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { forkdHome } from '../home/paths.js';
import { runTool } from './tools.js';
import { which } from './which.js';

export interface HostHelper {
  /** The cached file's name prefix (forkd-jail, forkd-qmp-fd, ...). */
  name: string;
  source: string;
  /** Extra gcc flags: -shared -fPIC for a preload library, -ldl, ... */
  cflags?: string[];
}

const built = new Map<string, Promise<string>>();

/** The helper's path, compiled on first use. FORKD_E_TOOL_MISSING without gcc. */
export function hostHelper(h: HostHelper): Promise<string> {
  const key = helperPath(h);
  let p = built.get(key);
  if (!p) {
    p = build(h, key);
    built.set(key, p);
    p.catch(() => built.delete(key));
  }
  return p;
}

function helperPath(h: HostHelper): string {
  const hash = crypto.createHash('sha256').update(h.source).update('\0').update((h.cflags ?? []).join(' ')).digest('hex').slice(0, 12);
  return path.join(forkdHome(), 'cache', 'bin', `${h.name}-${hash}${(h.cflags ?? []).includes('-shared') ? '.so' : ''}`);
}

async function build(h: HostHelper, out: string): Promise<string> {
  try {
    await fs.access(out);
    return out;
  } catch {
    /* build it */
  }
  const gcc = (await which('gcc')) ?? (await which('cc'));
  if (!gcc) throw new ForkdError('FORKD_E_TOOL_MISSING', `gcc is needed to build the host helper ${h.name}: apt-get install gcc libc6-dev`, { tool: 'gcc' });
  const dir = path.dirname(out);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const tag = crypto.randomBytes(4).toString('hex');
  const src = path.join(dir, `.${h.name}-${tag}.c`);
  const tmp = `${out}.${tag}.tmp`;
  try {
    await fs.writeFile(src, h.source, { flag: 'wx', mode: 0o600 });
    await runTool(gcc, ['-O2', '-Wall', ...(h.cflags ?? []), '-o', tmp, src], { timeoutMs: 60_000 });
    // Readable and executable by the jail's uids: the helper runs inside the mount view too.
    await fs.chmod(tmp, 0o755);
    await fs.rename(tmp, out);
    return out;
  } finally {
    await fs.rm(src, { force: true });
    await fs.rm(tmp, { force: true });
  }
}
