/**
 * A streaming reader for the tar inside an image layer (ustar, pax and GNU long names): what
 * root filesystems need (files, directories, symlinks, hard links, devices, fifos, ownership,
 * modes, mtimes, xattrs). It only parses: where entries may land is rootfs-tree.ts's job. The
 * layer comes from elsewhere, so every size is checked and a short stream is an error.
 */
import { ForkdError } from '@forkd/protocol';

const BLOCK = 512;
/** A pax or GNU long-name header body larger than this is not a name: refuse it rather than buffer it. */
const MAX_META_BYTES = 1024 * 1024;

export type LayerEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface LayerEntry {
  /** As written in the archive (pax/GNU long names applied); not normalised. */
  name: string;
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
}

const TYPES: Record<string, LayerEntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

/** Pulls exact byte counts out of a chunk stream. */
class ByteReader {
  private buf = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length === 0 ? Buffer.from(r.value) : Buffer.concat([this.buf, r.value]);
    }
    return this.buf.length >= n;
  }

  /** Exactly n bytes, or null at a clean end of stream (no byte at all). */
  async exact(n: number, what: string): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return null;
      throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', `layer tar ends inside ${what}`);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Up to n bytes (at least one), for streaming a file's data. */
  async some(n: number, what: string): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.fill(1))) throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', `layer tar ends inside ${what}`);
    const k = Math.min(n, this.buf.length);
    const out = this.buf.subarray(0, k);
    this.buf = this.buf.subarray(k);
    return out;
  }
}

function str(h: Buffer, off: number, len: number): string {
  const s = h.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

function num(h: Buffer, off: number, len: number, what: string): number {
  if (h[off]! & 0x80) {
    let v = 0n;
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(h[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `layer tar: ${what} out of range`);
    return Number(v);
  }
  const s = str(h, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `layer tar: ${what} is not octal (${JSON.stringify(s.slice(0, 20))})`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return num(h, 148, 8, 'checksum') === sum;
}

/** pax records: "<len> key=value\n" repeated. */
function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(body.subarray(off, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || off + len > body.length) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', 'layer tar: malformed pax record');
    const rec = body.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/**
 * Reads entries in order; for each, calls onEntry with the entry and a reader of its data (files
 * only; the callback must consume it or the reader skips the rest).
 */
export async function readLayerTar(input: AsyncIterable<Uint8Array>, onEntry: (e: LayerEntry, data: AsyncIterable<Buffer>) => Promise<void>): Promise<{ entries: number }> {
  const r = new ByteReader(input[Symbol.asyncIterator]());
  let entries = 0;
  let pax = new Map<string, Buffer>();
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const h = await r.exact(BLOCK, 'a header');
    if (h === null) break; // some writers omit the two zero blocks
    if (h.every((b) => b === 0)) break;
    if (!checksumOk(h)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', 'layer tar: header checksum mismatch');
    const flag = String.fromCharCode(h[156]!);
    const size = num(h, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META_BYTES) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `layer tar: a ${flag} header of ${size} bytes`);
      const body = (await r.exact(size + pad(size), 'an extended header')) ?? Buffer.alloc(0);
      const data = body.subarray(0, size);
      if (flag === 'x') pax = parsePax(data);
      else if (flag === 'L') longName = str(data, 0, data.length);
      else if (flag === 'K') longLink = str(data, 0, data.length);
      continue; // 'g' (global) carries nothing a root filesystem needs
    }
    const type = TYPES[flag];
    if (!type) throw new ForkdError('FORKD_E_ARTIFACT_ENTRY_TYPE', `layer tar: entry type ${JSON.stringify(flag)} is not supported`);
    const prefix = str(h, 257, 6).startsWith('ustar') ? str(h, 345, 155) : '';
    let name = longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
    let linkname = longLink ?? str(h, 157, 100);
    if (pax.has('path')) name = pax.get('path')!.toString('utf8');
    if (pax.has('linkpath')) linkname = pax.get('linkpath')!.toString('utf8');
    const paxSize = pax.get('size');
    const dataSize = paxSize ? Number(paxSize.toString('ascii')) : size;
    if (!Number.isSafeInteger(dataSize) || dataSize < 0) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', 'layer tar: bad pax size');
    const xattrs: Record<string, Buffer> = {};
    for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
    const entry: LayerEntry = {
      name,
      type,
      mode: num(h, 100, 8, 'mode') & 0o7777,
      uid: pax.has('uid') ? Number(pax.get('uid')!.toString('ascii')) : num(h, 108, 8, 'uid'),
      gid: pax.has('gid') ? Number(pax.get('gid')!.toString('ascii')) : num(h, 116, 8, 'gid'),
      size: type === 'file' ? dataSize : 0,
      mtime: pax.has('mtime') ? Math.floor(Number(pax.get('mtime')!.toString('ascii'))) : num(h, 136, 12, 'mtime'),
      linkname,
      devmajor: num(h, 329, 8, 'devmajor'),
      devminor: num(h, 337, 8, 'devminor'),
      xattrs,
    };
    pax = new Map();
    longName = longLink = null;
    let left = dataSize; // non-files normally carry none; if one does, it is skipped
    const data: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        while (left > 0) {
          const c = await r.some(Math.min(left, 1 << 20), `the data of ${name}`);
          left -= c.length;
          yield c;
        }
      },
    };
    await onEntry(entry, data);
    while (left > 0) left -= (await r.some(Math.min(left, 1 << 20), `the data of ${name}`)).length;
    const skip = pad(dataSize);
    if (skip > 0 && (await r.exact(skip, `the padding of ${name}`)) === null) throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', 'layer tar ends inside padding');
    entries++;
  }
  return { entries };
}
