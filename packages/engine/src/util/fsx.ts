import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/** fsync a file or directory by path. */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await fs.open(p, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a file so that readers see either the old or the new content, never a torn one. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncPath(path.dirname(file));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

export async function sha256File(p: string): Promise<string> {
  const h = crypto.createHash('sha256');
  const fh = await fs.open(p, 'r');
  try {
    for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
  } finally {
    await fh.close().catch(() => undefined);
  }
  return h.digest('hex');
}

export function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Disk usage (allocated bytes) of a file; sparse files report what they really hold. */
export async function allocatedBytes(p: string): Promise<number> {
  const st = await fs.stat(p);
  return st.blocks * 512;
}

/** Recursively sum allocated bytes below a directory. */
export async function dirAllocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirAllocatedBytes(p);
    else if (e.isFile()) total += await allocatedBytes(p);
  }
  return total;
}
