/**
 * Files to zstd blobs and back, with the zstd CLI (Node 20 has no zstd). Compression hashes the
 * file and the blob as they stream. Decompression verifies both digests while streaming, counts
 * bytes against what the artifact declared, and writes runs of zero pages as holes: guest RAM and
 * ext4 images are mostly zeros, so a pulled 512 MiB memory file takes the disk its data needs.
 * Reading a sparse file's holes costs no disk reads either (the kernel returns zeros).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { once } from 'node:events';
import crypto from 'node:crypto';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { DigestCounter } from './digest.js';

const READ_CHUNK = 1024 * 1024;
const HASH_CHUNK = 4 * 1024 * 1024;
const PAGE = 4096;

function zstd(args: string[]): ChildProcess {
  // --pdeathsig: a zstd orphaned by a killed daemon must not write on into staging.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'zstd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  return child;
}

async function exitOf(child: ChildProcess, stderr: () => string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'close');
  if (child.exitCode !== 0) {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `not a valid zstd stream: zstd exited ${child.exitCode ?? child.signalCode}: ${stderr().slice(-300)}`);
  }
}

function collectStderr(child: ChildProcess): () => string {
  let s = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (s.length < 4096) s += d.toString();
  });
  return () => s;
}

/** Writes with backpressure; a stream that closes or fails while full releases the writer (the exit code tells why). */
async function writeAll(stream: NodeJS.WritableStream, chunk: Uint8Array): Promise<void> {
  if (stream.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

export interface CompressedFile {
  blob: { digest: string; size: number };
  file: { digest: string; size: number };
}

/**
 * Compresses src into dst (created, never overwritten). zstd reads the file itself (no copy of every
 * byte through Node and a pipe: holes come back from the kernel as zeros at memory speed), while
 * Node hashes the same file on the other core; the two run side by side.
 */
export async function compressFile(src: string, dst: string, onBytes?: (n: number) => void): Promise<CompressedFile> {
  const size = (await fs.stat(src)).size;
  const out = await fs.open(dst, 'wx', 0o600);
  // `--` first: a path starting with '-' is a file, not an option. zstd may finish a small file at
  // once: its stdout is consumed from this tick on (no await between spawn and the drain), or a
  // fast exit could leave an empty blob.
  const child = zstd(['-q', `-${OCI_LIMITS.zstdLevel}`, '-T0', '-c', '--', src]);
  const stderr = collectStderr(child);
  child.stdin!.end();
  const blobHash = crypto.createHash('sha256');
  let blobSize = 0;
  try {
    const drain = (async () => {
      for await (const c of child.stdout! as AsyncIterable<Buffer>) {
        blobHash.update(c);
        blobSize += c.length;
        await out.write(c);
      }
    })();
    const [file] = await Promise.all([hashFile(src, onBytes), drain]);
    await exitOf(child, stderr);
    // A file that changed while being read would give a blob that does not match its digest.
    if (file.size !== size || (await fs.stat(src)).size !== size) throw new ForkdError('FORKD_E_INTERNAL', `${src} changed size while being packed`);
    // A zstd frame is never empty: an empty blob means its output was lost, never push that.
    if (blobSize === 0) throw new ForkdError('FORKD_E_INTERNAL', `zstd produced no output for ${src}`);
    await out.sync();
    return { blob: { digest: `sha256:${blobHash.digest('hex')}`, size: blobSize }, file };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    await out.close();
  }
}

/** sha256 and size of a file, read in large chunks (holes read as zeros, no disk I/O). */
async function hashFile(src: string, onBytes?: (n: number) => void): Promise<{ digest: string; size: number }> {
  const h = crypto.createHash('sha256');
  const fh = await fs.open(src, 'r');
  const buf = Buffer.alloc(HASH_CHUNK);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, HASH_CHUNK, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      size += bytesRead;
      onBytes?.(bytesRead);
    }
  } finally {
    await fh.close();
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

export interface DecompressTarget {
  /** What the blob's descriptor says (compressed). */
  blob: { digest: string; size: number };
  /** What the layer's annotations say (decompressed). */
  file: { digest: string; size: number };
  what: string;
}

/**
 * Decompresses a blob stream into dst (created with 'wx', mode 0600). Throws, leaving dst for the
 * caller's staging cleanup, on: a truncated or over-long blob (ARTIFACT_TRUNCATED / ARTIFACT_TOO_LARGE),
 * a digest mismatch of blob or file (DIGEST_MISMATCH), a file larger than declared, or more non-zero
 * bytes per compressed byte than OCI_LIMITS.maxDecompressionRatio (ARTIFACT_RATIO).
 */
export async function decompressTo(input: AsyncIterable<Uint8Array>, dst: string, t: DecompressTarget, onBytes?: (n: number) => void): Promise<void> {
  const blob = new DigestCounter(t.blob.digest, t.blob.size, `${t.what} (compressed)`);
  const file = new DigestCounter(t.file.digest, t.file.size, t.what);
  const child = zstd(['-d', '-q', '-c']);
  const stderr = collectStderr(child);
  child.stdin!.on('error', () => undefined);
  const out = await fs.open(dst, 'wx', 0o600);
  let dataBytes = 0;
  let pos = 0;
  const pending = Buffer.alloc(READ_CHUNK);
  let pendingLen = 0;
  const flush = async (final: boolean) => {
    // Whole pages only (except at the end), aligned to the file: a zero page becomes a hole.
    const usable = final ? pendingLen : pendingLen - (pendingLen % PAGE);
    let runStart = -1;
    for (let p = 0; p < usable; p += PAGE) {
      const e = Math.min(p + PAGE, usable);
      const zero = isZero(pending, p, e);
      if (!zero && runStart < 0) runStart = p;
      if (zero && runStart >= 0) {
        await out.write(pending, runStart, p - runStart, pos + runStart);
        runStart = -1;
      }
      if (!zero) dataBytes += e - p;
    }
    if (runStart >= 0) await out.write(pending, runStart, usable - runStart, pos + runStart);
    pending.copy(pending, 0, usable, pendingLen);
    pendingLen -= usable;
    pos += usable;
    if (dataBytes > OCI_LIMITS.maxDecompressionRatio * blob.bytes + READ_CHUNK) {
      throw new ForkdError('FORKD_E_ARTIFACT_RATIO', `${t.what} decompresses to more than ${OCI_LIMITS.maxDecompressionRatio}x its compressed size`, { what: t.what });
    }
  };
  try {
    const feed = (async () => {
      try {
        for await (const c of input) {
          blob.update(c);
          onBytes?.(c.length);
          await writeAll(child.stdin!, c);
        }
      } finally {
        child.stdin!.end();
      }
      blob.check();
    })().catch((e: unknown) => {
      child.kill('SIGKILL'); // unblocks the drain
      throw e;
    });
    const drain = (async () => {
      for await (const c of child.stdout! as AsyncIterable<Buffer>) {
        file.update(c);
        for (let off = 0; off < c.length; ) {
          const n = Math.min(c.length - off, pending.length - pendingLen);
          c.copy(pending, pendingLen, off, off + n);
          pendingLen += n;
          off += n;
          if (pendingLen === pending.length) await flush(false);
        }
      }
      await flush(true);
    })().catch((e: unknown) => {
      child.kill('SIGKILL'); // unblocks the feed
      throw e;
    });
    // The feed's verdict (truncated, digest) comes first: zstd's complaint about the same input is less precise.
    const [f, d] = await Promise.allSettled([feed, drain]);
    if (f.status === 'rejected') throw f.reason;
    if (d.status === 'rejected') throw d.reason;
    await exitOf(child, stderr);
    file.check();
    await out.truncate(t.file.size);
    await out.sync();
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    await out.close();
  }
}

const ZERO = Buffer.alloc(PAGE);
function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf.compare(ZERO, 0, end - start, start, end) === 0;
}

/** A file read as a stream of chunks (for decompressing a blob from a layout or a cache). */
export async function* fileChunks(p: string): AsyncGenerator<Uint8Array> {
  const fh = await fs.open(p, 'r');
  try {
    yield* fh.createReadStream({ highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
