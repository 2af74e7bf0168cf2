/** files.*: binary-safe file access; bytes travel in frame payloads. */
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { LIMITS, type AgentMethod, type ResultOf } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import { entryInfo, fsError } from '../fs-util.js';
import { listTree } from '../files-list.js';

type R<M extends AgentMethod> = Promise<Reply<ResultOf<M>>>;

async function read(p: ParamsOut<'files.read'>): R<'files.read'> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(p.path, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`is a directory: ${p.path}`), { code: 'EISDIR' });
    const offset = p.offset ?? 0;
    // Not bounded by st.size: /proc and /sys files report 0 (or 4096) and still have content.
    // The end is a short read; a regular file that grows is read as far as it goes now.
    const want = Math.max(0, p.length ?? LIMITS.maxFileChunkBytes);
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const eof = got < want;
    const size = eof ? offset + got : Math.max(st.size, offset + got);
    return { result: { size, bytes: got, eof }, payload: buf.subarray(0, got) };
  } catch (err) {
    throw fsError(err, p.path);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function write(p: ParamsOut<'files.write'>, ctx: CallContext): R<'files.write'> {
  const offset = p.offset ?? 0;
  const truncate = p.truncate ?? p.offset === undefined;
  let fh: fs.FileHandle | undefined;
  try {
    if (p.mkdirs) await fs.mkdir(path.dirname(p.path), { recursive: true });
    fh = await fs.open(p.path, constants.O_WRONLY | constants.O_CREAT | (truncate ? constants.O_TRUNC : 0), p.mode ?? 0o644);
    let done = 0;
    while (done < ctx.payload.length) {
      const { bytesWritten } = await fh.write(ctx.payload, done, ctx.payload.length - done, offset + done);
      done += bytesWritten;
    }
    if (p.mode !== undefined) await fh.chmod(p.mode);
    const st = await fh.stat();
    return { result: { path: p.path, size: st.size } };
  } catch (err) {
    throw fsError(err, p.path);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function stat(p: ParamsOut<'files.stat'>): R<'files.stat'> {
  try {
    return { result: await entryInfo(p.path) };
  } catch (err) {
    throw fsError(err, p.path);
  }
}

async function mkdir(p: ParamsOut<'files.mkdir'>): R<'files.mkdir'> {
  try {
    if (p.parents) return { result: { created: (await fs.mkdir(p.path, { recursive: true })) !== undefined } };
    await fs.mkdir(p.path);
    return { result: { created: true } };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const st = await fs.stat(p.path).catch(() => null);
      if (st?.isDirectory()) return { result: { created: false } };
    }
    throw fsError(err, p.path);
  }
}

/** A missing path is not an error here: `removed: false`. */
async function remove(p: ParamsOut<'files.remove'>): R<'files.remove'> {
  try {
    const st = await fs.lstat(p.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (!st) return { result: { removed: false } };
    if (st.isDirectory()) {
      if (p.recursive) await fs.rm(p.path, { recursive: true, force: true });
      else await fs.rmdir(p.path);
    } else {
      await fs.unlink(p.path);
    }
    return { result: { removed: true } };
  } catch (err) {
    throw fsError(err, p.path);
  }
}

async function rename(p: ParamsOut<'files.rename'>): R<'files.rename'> {
  try {
    await fs.rename(p.from, p.to).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EXDEV') throw e;
      // Across filesystems (e.g. disk -> /tmp tmpfs): copy then remove, as mv does.
      await fs.cp(p.from, p.to, { recursive: true, force: true, preserveTimestamps: true, verbatimSymlinks: true });
      await fs.rm(p.from, { recursive: true, force: true });
    });
    return { result: await entryInfo(p.to) };
  } catch (err) {
    throw fsError(err, p.from);
  }
}

async function list(p: ParamsOut<'files.list'>): R<'files.list'> {
  try {
    return { result: await listTree(p.path, p.depth ?? 1, LIMITS.maxListEntries) };
  } catch (err) {
    throw fsError(err, p.path);
  }
}

export const fileMethods = {
  'files.read': read,
  'files.write': write,
  'files.list': list,
  'files.stat': stat,
  'files.mkdir': mkdir,
  'files.remove': remove,
  'files.rename': rename,
};
