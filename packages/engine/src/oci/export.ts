/**
 * A snapshot chain to OCI artifacts: one manifest per link, root first, its blobs compressed into
 * a work directory. Deterministic for a given snapshot (zstd's output does not depend on thread
 * count; created times come from the snapshot), so pushing the same chain twice yields the same
 * digests and the registry's HEAD checks skip what it has.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { type HomeLayout } from '../home/paths.js';
import { readImageInfo } from '../image/build.js';
import { requiredFiles, type SnapshotManifest } from '../snapshot/manifest.js';
import { ancestors } from '../snapshot/chain.js';
import { readSnapshot, type SnapshotEntry } from '../snapshot/store.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { compressFile } from './codec.js';
import { sha256Digest } from './digest.js';
import { ANNOTATION, MEDIA, OCI_FORMAT_VERSION, ROOTFS_FILE, type ArtifactManifest, type DescriptorT, type SnapshotConfig } from './format.js';

export interface BlobFile {
  digest: string;
  size: number;
  path: string;
}

export interface ExportedLink {
  tag: string;
  manifest: Buffer;
  digest: string;
  /** The config and every layer, each a file in the work directory. */
  blobs: BlobFile[];
}

export async function exportChain(layout: HomeLayout, tag: string, workDir: string, onProgress: ProgressFn = noProgress): Promise<ExportedLink[]> {
  const head = await readSnapshot(layout, tag);
  const chain = [...(await ancestors(layout, head)), head];
  const out: ExportedLink[] = [];
  let parentDigest: string | null = null;
  for (const [i, entry] of chain.entries()) {
    onProgress({ phase: 'pack', message: `compressing ${entry.tag} (${i + 1}/${chain.length})`, fraction: i / chain.length });
    const link = await exportLink(layout, entry, parentDigest, workDir, onProgress);
    out.push(link);
    parentDigest = link.digest;
  }
  return out;
}

async function exportLink(layout: HomeLayout, entry: SnapshotEntry, parentDigest: string | null, workDir: string, onProgress: ProgressFn): Promise<ExportedLink> {
  const m = entry.manifest;
  const image = await readImageInfo(layout, m.image.key);
  if (!image) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${entry.tag} needs image ${m.image.key.slice(0, 12)}, which this store no longer has`, { tag: entry.tag });
  const { path: _imagePath, ...imageRecord } = image;
  // Host paths stay home: the receiving host sets its own.
  const config: SnapshotConfig = {
    forkd_oci_format: OCI_FORMAT_VERSION,
    snapshot: { ...withoutProvenance(m), kernel: { ...m.kernel, path: path.basename(m.kernel.path) }, image: { ...m.image, path: ROOTFS_FILE } },
    image: imageRecord,
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configBlob = await writeBlob(workDir, configBytes);
  const files: Array<{ name: string; src: string; mediaType: string }> = requiredFiles(m).map((name) => ({ name, src: path.join(entry.dir, name), mediaType: MEDIA.file }));
  if (m.parent_tag === null) files.push({ name: ROOTFS_FILE, src: image.path, mediaType: MEDIA.rootfs });
  const layers: DescriptorT[] = [];
  const blobs: BlobFile[] = [configBlob];
  for (const f of files) {
    const size = (await fs.stat(f.src)).size;
    let done = 0;
    const tmp = path.join(workDir, `.tmp-${crypto.randomBytes(6).toString('hex')}`);
    const c = await compressFile(f.src, tmp, (n) => {
      done += n;
      if (done % (64 * 1024 * 1024) < n) onProgress({ phase: 'pack', message: `compressing ${entry.tag}/${f.name}: ${mib(done)}/${mib(size)} MiB`, fraction: size ? done / size : 1 });
    });
    const blob: BlobFile = { digest: c.blob.digest, size: c.blob.size, path: path.join(workDir, c.blob.digest.slice(7)) };
    await fs.rename(tmp, blob.path);
    blobs.push(blob);
    layers.push({
      mediaType: f.mediaType,
      digest: c.blob.digest,
      size: c.blob.size,
      annotations: { [ANNOTATION.file]: f.name, [ANNOTATION.fileSize]: String(c.file.size), [ANNOTATION.fileDigest]: c.file.digest },
    });
  }
  const annotations: Record<string, string> = { [ANNOTATION.format]: String(OCI_FORMAT_VERSION), [ANNOTATION.tag]: entry.tag, [ANNOTATION.created]: m.created_at };
  if (parentDigest) annotations[ANNOTATION.parent] = parentDigest;
  const manifest: ArtifactManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: MEDIA.artifact,
    config: { mediaType: MEDIA.config, digest: configBlob.digest, size: configBlob.size },
    layers,
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { tag: entry.tag, manifest: bytes, digest: sha256Digest(bytes), blobs };
}

function mib(n: number): string {
  return (n / 1048576).toFixed(0);
}

async function writeBlob(workDir: string, data: Buffer): Promise<BlobFile> {
  const digest = sha256Digest(data);
  const p = path.join(workDir, digest.slice(7));
  await fs.writeFile(p, data, { mode: 0o600 });
  return { digest, size: data.length, path: p };
}


/** Where this store got a snapshot from is this store's business, not the artifact's. */
function withoutProvenance(m: SnapshotManifest): SnapshotManifest {
  const { pulled_from: _ignored, ...rest } = m;
  return rest;
}
