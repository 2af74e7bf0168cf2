/** EntryInfo construction and errno -> ForkdError mapping for the files.* methods. */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ForkdError, type EntryInfoT } from '@forkd/protocol';

export function fsError(err: unknown, p: string): ForkdError {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof ForkdError) return err;
  // A component that is not a directory (/etc/passwd/x) means the path does not exist either.
  if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') return new ForkdError('FORKD_E_FILE_NOT_FOUND', `no such file or directory: ${p}`, { path: p, errno: e.code });
  const msg = e?.message ?? String(err);
  // Node's messages already start with the code ("EXDEV: cross-device link..."): do not repeat it.
  return new ForkdError('FORKD_E_INVALID_ARGUMENT', e?.code && !msg.startsWith(e.code) ? `${e.code}: ${msg}` : msg, { path: p, errno: e?.code ?? null });
}

export function entryType(st: Stats): EntryInfoT['type'] {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  return 'other';
}

export function permissionString(st: Stats): string {
  const t = st.isSymbolicLink() ? 'l' : st.isDirectory() ? 'd' : st.isFile() ? '-' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : st.isSocket() ? 's' : '?';
  let s = t;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (st.mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}

export async function entryInfo(p: string, st?: Stats): Promise<EntryInfoT> {
  const s = st ?? (await fs.lstat(p));
  let target: string | null = null;
  if (s.isSymbolicLink()) {
    try {
      target = await fs.readlink(p);
    } catch {
      target = null;
    }
  }
  return {
    name: path.basename(p) || p,
    path: p,
    type: entryType(s),
    size: s.size,
    mode: s.mode & 0o7777,
    permissions: permissionString(s),
    modified_ms: Math.round(s.mtimeMs),
    symlink_target: target,
  };
}
