/**
 * Files a template copies into its image, stored by content: <home>/template-files/<sha256>.
 * Clients upload a file once (the SDK hashes it first and skips what is here); a template names it
 * by digest, so the bytes, not a host path, are part of the step's cache key. Written through a
 * temporary file and renamed only after the digest matched: a file here always has its name's hash.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, LIMITS, Sha256Hex } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { STAGING_PREFIX } from '../home/paths.js';
import { stagingOwnerSuffix } from '../util/staging.js';

export function templateFilesDir(layout: HomeLayout): string {
  return path.join(layout.root, 'template-files');
}

function fileOf(layout: HomeLayout, digest: string): string {
  if (!Sha256Hex.safeParse(digest).success) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not a sha256 digest: ${JSON.stringify(digest).slice(0, 80)}`);
  return path.join(templateFilesDir(layout), digest);
}

export async function hasTemplateFile(layout: HomeLayout, digest: string): Promise<boolean> {
  return fs.access(fileOf(layout, digest)).then(() => true, () => false);
}

/** A stored file's size, or null when it was never uploaded. */
export async function templateFileBytes(layout: HomeLayout, digest: string): Promise<number | null> {
  return fs.stat(fileOf(layout, digest)).then((s) => s.size, () => null);
}

/**
 * Stores bytes under their digest. The caller's claimed digest must match what arrived
 * (FORKD_E_INVALID_ARGUMENT otherwise, nothing kept); over maxCopyFileBytes: FORKD_E_PAYLOAD_TOO_LARGE.
 */
export async function putTemplateFile(layout: HomeLayout, digest: string, chunks: AsyncIterable<Uint8Array> | Uint8Array): Promise<{ sha256: string; bytes: number; existed: boolean }> {
  const final = fileOf(layout, digest);
  const dir = templateFilesDir(layout);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `${STAGING_PREFIX}${digest.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  const h = crypto.createHash('sha256');
  let bytes = 0;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    for await (const c of chunks instanceof Uint8Array ? [chunks] : chunks) {
      bytes += c.byteLength;
      if (bytes > LIMITS.templates.maxCopyFileBytes) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `a template file may hold at most ${LIMITS.templates.maxCopyFileBytes} bytes`, { max_bytes: LIMITS.templates.maxCopyFileBytes });
      h.update(c);
      await fh.write(c);
    }
    await fh.sync();
    await fh.close();
    const got = h.digest('hex');
    if (got !== digest) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `the uploaded bytes hash to ${got}, not ${digest}`, { expected: digest, got });
    const existed = await hasTemplateFile(layout, digest);
    await fs.rename(tmp, final);
    return { sha256: digest, bytes, existed };
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** A stored file's bytes, checked against its digest (a damaged store never reaches an image). */
export async function readTemplateFile(layout: HomeLayout, digest: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await fs.readFile(fileOf(layout, digest));
  } catch {
    throw new ForkdError('FORKD_E_TEMPLATE_FILE_MISSING', `the template copies file ${digest}, which was never uploaded (upload it first: PUT /v1/template-files/${digest})`, { sha256: digest });
  }
  const got = crypto.createHash('sha256').update(data).digest('hex');
  if (got !== digest) throw new ForkdError('FORKD_E_TEMPLATE_FILE_MISSING', `stored template file ${digest} is damaged (its bytes hash to ${got}); upload it again`, { sha256: digest });
  return data;
}
