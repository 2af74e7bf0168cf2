/**
 * A writer for the "newc" cpio format the Linux kernel unpacks as an initramfs. Pure: entries in,
 * bytes out. Timestamps are 0 and inode numbers sequential, so equal input gives equal bytes.
 */
export type CpioEntry =
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function normalize(p: string): string {
  const s = p.replace(/^\/+/, '').replace(/\/+$/, '');
  if (!s || s.split('/').some((c) => c === '..' || c === '' || c === '.')) throw new Error(`bad cpio path ${JSON.stringify(p)}`);
  return s;
}

export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, nlink: number) => {
    const nameBuf = Buffer.from(`${name}\0`, 'utf8');
    const header =
      '070701' +
      hex8(ino++) + hex8(mode) + hex8(0) + hex8(0) + hex8(nlink) + hex8(0) + hex8(data.length) +
      hex8(0) + hex8(0) + hex8(0) + hex8(0) + hex8(nameBuf.length) + hex8(0);
    parts.push(Buffer.from(header, 'ascii'), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length)));
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = normalize(e.path);
    if (e.type === 'dir') push(name, S_IFDIR | ((e.mode ?? 0o755) & 0o7777), new Uint8Array(0), 2);
    else if (e.type === 'file') push(name, S_IFREG | ((e.mode ?? 0o644) & 0o7777), e.data, 1);
    else push(name, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), 1);
  }
  ino = 0;
  push('TRAILER!!!', 0, new Uint8Array(0), 1);
  return Buffer.concat(parts);
}

export interface CpioParsed {
  path: string;
  mode: number;
  data: Buffer;
}

/** Reads newc cpio back (used by tests and to inspect cached images). */
export function readCpio(buf: Buffer): CpioParsed[] {
  const out: CpioParsed[] = [];
  let off = 0;
  for (;;) {
    if (buf.toString('ascii', off, off + 6) !== '070701') throw new Error(`bad cpio magic at ${off}`);
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = nameStart + nameSize + pad4(110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.push({ path: name, mode, data: buf.subarray(dataStart, dataStart + size) });
    off = dataStart + size + pad4(size);
  }
}
