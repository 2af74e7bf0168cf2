/**
 * The little of tar that packs need (ustar, regular files and directories), written and read by
 * hand: a pack comes from elsewhere, so the reader refuses everything it does not need before a
 * byte is written: links, devices, fifos, pax/GNU extension headers (ENTRY_TYPE), absolute names
 * and `..` (UNSAFE_PATH), a name twice (DUPLICATE), a short file (TRUNCATED), a bad header
 * checksum (INVALID), more entries than OCI_LIMITS.maxPackEntries (TOO_LARGE).
 */
import type { FileHandle } from 'node:fs/promises';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';

const BLOCK = 512;

export interface TarEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  /** Offset of the entry's data in the archive. */
  offset: number;
}

/** A ustar header for a regular file or directory (sizes of 8 GiB and more in base-256). */
export function tarHeader(name: string, size: number, type: 'file' | 'dir', mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new ForkdError('FORKD_E_INTERNAL', `tar name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(type === 'dir' ? '0000755\0' : '0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  if (size < 8 ** 11) h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  else {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write(Math.floor(mtime).toString(8).padStart(11, '0') + '\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type === 'dir' ? '5' : '0', 156, 'ascii');
  return sealUstarHeader(h);
}

/** Marks a header ustar and writes its checksum (the sum of its bytes, the checksum field as spaces). */
export function sealUstarHeader(h: Buffer): Buffer {
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('        ', 148, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

export const TAR_END = Buffer.alloc(BLOCK * 2);

/** Lists and validates every entry of a tar file; allowed() says which (normalised) names may appear. */
export async function readTarIndex(fh: FileHandle, fileSize: number, allowed: (name: string, type: 'file' | 'dir') => boolean): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const seen = new Set<string>();
  const h = Buffer.alloc(BLOCK);
  for (let off = 0; ; ) {
    if (off + BLOCK > fileSize) throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', `the pack ends inside a tar header (at byte ${off})`);
    await fh.read(h, 0, BLOCK, off);
    if (h.every((b) => b === 0)) return out; // end of archive
    if (out.length >= OCI_LIMITS.maxPackEntries) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `the pack has more than ${OCI_LIMITS.maxPackEntries} entries`);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (parseOctal(h.subarray(148, 156)) !== sum) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `the pack has a damaged tar header at byte ${off}`);
    const flag = String.fromCharCode(h[156]!);
    const raw = cstr(h.subarray(0, 100));
    const prefix = h.subarray(257, 263).toString('ascii').startsWith('ustar') ? cstr(h.subarray(345, 500)) : '';
    const full = prefix ? `${prefix}/${raw}` : raw;
    let type: 'file' | 'dir';
    if (flag === '0' || flag === '\0' || flag === '7') type = 'file';
    else if (flag === '5') type = 'dir';
    else throw new ForkdError('FORKD_E_ARTIFACT_ENTRY_TYPE', `the pack's entry ${JSON.stringify(full.slice(0, 200))} is a ${entryKind(flag)}: packs hold regular files only`, { entry: full.slice(0, 200), type: flag });
    const name = normalise(full);
    const size = parseSize(h.subarray(124, 136));
    if (type === 'dir' && size !== 0) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `directory entry ${name} has a size`);
    if (!allowed(name, type)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `the pack has an unexpected entry ${JSON.stringify(name)}`, { entry: name });
    if (seen.has(name)) throw new ForkdError('FORKD_E_ARTIFACT_DUPLICATE', `the pack holds ${name} twice`, { entry: name });
    seen.add(name);
    const data = off + BLOCK;
    if (data + size > fileSize) throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', `the pack ends inside ${name} (${fileSize - data} of ${size} bytes)`, { entry: name });
    out.push({ name, type, size, offset: data });
    off = data + size + ((BLOCK - (size % BLOCK)) % BLOCK);
  }
}

function entryKind(flag: string): string {
  return ({ '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '6': 'fifo', x: 'pax extended header', g: 'pax global header', L: 'GNU long name', K: 'GNU long link' } as Record<string, string>)[flag] ?? `type ${JSON.stringify(flag)} entry`;
}

/** Absolute names and `..` are refused outright; `./` and trailing slashes are dropped. */
function normalise(name: string): string {
  if (name.startsWith('/') || name.includes('\\')) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `the pack names an absolute path ${JSON.stringify(name.slice(0, 200))}`, { entry: name.slice(0, 200) });
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `the pack names a path outside itself ${JSON.stringify(name.slice(0, 200))}`, { entry: name.slice(0, 200) });
  if (parts.length === 0) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', 'the pack has an entry with an empty name');
  return parts.join('/');
}

function cstr(b: Buffer): string {
  const i = b.indexOf(0);
  return b.subarray(0, i < 0 ? b.length : i).toString('utf8');
}

function parseOctal(b: Buffer): number {
  const s = cstr(b).trim();
  if (!/^[0-7]*$/.test(s)) return -1;
  return s === '' ? 0 : parseInt(s, 8);
}

function parseSize(b: Buffer): number {
  if (b[0]! & 0x80) {
    let v = 0n;
    for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]!);
    if (v > BigInt(OCI_LIMITS.maxFileBytes)) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `a pack entry declares ${v} bytes`);
    return Number(v);
  }
  const n = parseOctal(b);
  if (n < 0) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', 'a pack entry has an unreadable size');
  if (n > OCI_LIMITS.maxFileBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `a pack entry declares ${n} bytes`);
  return n;
}
