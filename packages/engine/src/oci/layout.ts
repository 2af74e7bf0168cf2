/**
 * Packs: an OCI image layout (oci-layout, index.json, blobs/sha256/<hex>) in one tar file, for
 * offline transfer. The blobs inside are the registry's (zstd-compressed), so a pack and a push of
 * the same snapshot carry the same digests. Unpacking copies each blob into a staging directory in
 * the store, hashing as it copies (a blob whose bytes do not match its name is DIGEST_MISMATCH),
 * then imports from there like a pull; the staging directory is removed whatever happens.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { type HomeLayout, STAGING_PREFIX } from '../home/paths.js';
import { ensurePrivateDir, stagingOwnerSuffix } from '../util/staging.js';
import { fsyncPath } from '../util/fsx.js';
import { fileChunks } from './codec.js';
import { DigestCounter, sha256Digest } from './digest.js';
import { ANNOTATION, MEDIA } from './format.js';
import type { ExportedLink } from './export.js';
import type { BlobSource } from './import.js';
import { TAR_END, readTarIndex, tarHeader, tarPadding } from './tar.js';
import { isDigest } from './reference.js';

const BLOB_NAME = /^blobs\/sha256\/[0-9a-f]{64}$/;

/** Writes the chain's links as a layout tar at file (via a temp file renamed into place). */
export async function writePack(links: ExportedLink[], tag: string, file: string, description?: string): Promise<{ bytes: number }> {
  const head = links[links.length - 1]!;
  const annotations: Record<string, string> = { [ANNOTATION.refName]: tag };
  if (description) annotations['org.opencontainers.image.description'] = description;
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.layoutIndex, manifests: [{ mediaType: MEDIA.manifest, artifactType: MEDIA.artifact, digest: head.digest, size: head.manifest.length, annotations }] }));
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const out = await fs.open(tmp, 'wx', 0o600);
  let bytes = 0;
  const put = async (b: Buffer) => {
    await out.write(b);
    bytes += b.length;
  };
  const now = Date.now() / 1000;
  try {
    const small = async (name: string, data: Buffer) => {
      await put(tarHeader(name, data.length, 'file', now));
      await put(data);
      await put(tarPadding(data.length));
    };
    await small('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    await small('index.json', index);
    await put(tarHeader('blobs/', 0, 'dir', now));
    await put(tarHeader('blobs/sha256/', 0, 'dir', now));
    const written = new Set<string>();
    for (const l of links) {
      if (!written.has(l.digest)) await small(`blobs/sha256/${l.digest.slice(7)}`, l.manifest);
      written.add(l.digest);
      for (const b of l.blobs) {
        if (written.has(b.digest)) continue;
        written.add(b.digest);
        await put(tarHeader(`blobs/sha256/${b.digest.slice(7)}`, b.size, 'file', now));
        for await (const c of fileChunks(b.path)) await put(Buffer.from(c));
        await put(tarPadding(b.size));
      }
    }
    await put(TAR_END);
    await out.sync();
  } catch (e) {
    await out.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await out.close();
  await fs.rename(tmp, file);
  await fsyncPath(path.dirname(path.resolve(file)));
  return { bytes };
}

/** Extracts a pack's blobs into a new staging directory; the caller removes it (stage.dir). */
export async function stagePack(layout: HomeLayout, file: string): Promise<{ dir: string; source: BlobSource; headRef: string; refName: string | null }> {
  await ensurePrivateDir(layout.snapshots);
  const dir = path.join(layout.snapshots, `${STAGING_PREFIX}unpack-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
  try {
    const fh = await fs.open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new ForkdError('FORKD_E_FILE_NOT_FOUND', `cannot open pack ${file}: ${e.code ?? e.message}`, { file });
    });
    let index: Buffer | null = null;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${file} is not a regular file`);
      const entries = await readTarIndex(fh, st.size, (name, type) => (type === 'dir' ? name === 'blobs' || name === 'blobs/sha256' : name === 'oci-layout' || name === 'index.json' || BLOB_NAME.test(name)));
      let total = 0;
      for (const e of entries) {
        if (e.type === 'dir') continue;
        total += e.size;
        if (total > OCI_LIMITS.maxTotalBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `the pack holds more than ${OCI_LIMITS.maxTotalBytes} bytes`);
        if (e.name === 'index.json' || e.name === 'oci-layout') {
          if (e.size > OCI_LIMITS.maxManifestBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `the pack's ${e.name} is ${e.size} bytes`);
          const b = Buffer.alloc(e.size);
          await fh.read(b, 0, e.size, e.offset);
          if (e.name === 'index.json') index = b;
          continue;
        }
        const digest = `sha256:${e.name.slice('blobs/sha256/'.length)}`;
        const counter = new DigestCounter(digest, e.size, `pack blob ${digest.slice(0, 19)}`);
        const out = await fs.open(path.join(dir, 'blobs', 'sha256', digest.slice(7)), 'wx', 0o600);
        try {
          const buf = Buffer.alloc(1024 * 1024);
          for (let off = 0; off < e.size; ) {
            const n = Math.min(buf.length, e.size - off);
            const { bytesRead } = await fh.read(buf, 0, n, e.offset + off);
            if (bytesRead === 0) break;
            counter.update(buf.subarray(0, bytesRead));
            await out.write(buf, 0, bytesRead);
            off += bytesRead;
          }
        } finally {
          await out.close();
        }
        counter.check();
      }
    } finally {
      await fh.close();
    }
    if (!index) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', 'the pack has no index.json (not an OCI layout)');
    const head = parseIndex(index);
    return { dir, source: layoutSource(dir), headRef: head.digest, refName: head.refName };
  } catch (e) {
    await fs.rm(dir, { recursive: true, force: true });
    throw e;
  }
}

function parseIndex(bytes: Buffer): { digest: string; refName: string | null } {
  let j: { manifests?: Array<{ mediaType?: unknown; digest?: unknown; annotations?: Record<string, unknown> }> };
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', "the pack's index.json is not JSON");
  }
  const ms = Array.isArray(j.manifests) ? j.manifests : [];
  if (ms.length !== 1) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `the pack's index names ${ms.length} manifests; a forkd pack names one (the chain head)`);
  const m = ms[0]!;
  if (m.mediaType !== MEDIA.manifest || typeof m.digest !== 'string' || !isDigest(m.digest)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', "the pack's index does not name an OCI manifest by digest");
  const ref = m.annotations?.[ANNOTATION.refName];
  return { digest: m.digest, refName: typeof ref === 'string' ? ref : null };
}

/** Blobs of an extracted layout (already verified against their names while extracted). */
export function layoutSource(dir: string): BlobSource {
  const blobPath = (d: string) => {
    if (!isDigest(d)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `not a digest: ${d.slice(0, 80)}`);
    return path.join(dir, 'blobs', 'sha256', d.slice(7));
  };
  const missing = (d: string) => new ForkdError('FORKD_E_ARTIFACT_INVALID', `the pack lacks blob ${d}`, { digest: d });
  return {
    describe: dir,
    async manifest(reference: string) {
      const p = blobPath(reference);
      const st = await fs.stat(p).catch(() => null);
      if (!st) throw missing(reference);
      if (st.size > OCI_LIMITS.maxManifestBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `manifest ${reference} is ${st.size} bytes (limit ${OCI_LIMITS.maxManifestBytes})`);
      const bytes = await fs.readFile(p);
      const digest = sha256Digest(bytes);
      if (digest !== reference) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `manifest ${reference} has digest ${digest}`);
      return { bytes, digest };
    },
    async *blob(digest: string) {
      const p = blobPath(digest);
      if (!(await fs.stat(p).catch(() => null))) throw missing(digest);
      yield* fileChunks(p);
    },
  };
}
