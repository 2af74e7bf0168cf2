/**
 * OCI artifacts into the snapshot store (pull and unpack share this). Before a blob is fetched,
 * the head's manifest and config and those of every missing ancestor are read, validated and
 * checked against this host; the walk down the chain stops at the first link the store already has
 * (same tag, same instance), so only missing links travel. Each link is written in a staging
 * directory (snapshot/ and image/ conventions) and renamed into place only when every file is whole
 * and both its compressed and decompressed digests matched.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, OCI_LIMITS, assertValidTag, isValidTag } from '@forkd/protocol';
import { type HomeLayout, imageDir, snapshotDir, STAGING_PREFIX } from '../home/paths.js';
import { readImageInfo, type ImageInfo } from '../image/build.js';
import { PAGE_SIZE, type SnapshotManifest } from '../snapshot/manifest.js';
import { readSnapshot } from '../snapshot/store.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { runTool } from '../qemu/tools.js';
import { sealForJail } from '../qemu/jail.js';
import { allocatedBytes, exists, writeFileAtomic } from '../util/fsx.js';
import { commitStaging, freeSnapshotDir, inStaging, stagingOwnerSuffix } from '../util/staging.js';
import { decompressTo } from './codec.js';
import { DigestCounter } from './digest.js';
import { ANNOTATION, ROOTFS_FILE, checkCompatible, declaredFiles, parseArtifactManifest, parseSnapshotConfig, type DeclaredFile, type HostCompat, type SnapshotConfig } from './format.js';

/** Where artifacts come from: a registry repository or an OCI layout on disk. */
export interface BlobSource {
  describe: string;
  manifest(reference: string): Promise<{ bytes: Buffer; digest: string }>;
  blob(digest: string): AsyncIterable<Uint8Array>;
}

export interface ImportOptions {
  /** The tag the head lands under (default: its own). Ancestors keep theirs: layers name them. */
  tag?: string;
  host: HostCompat;
  onProgress?: ProgressFn;
  /** Recorded in the progress messages and errors. */
  refText: string;
  /** What the pull's trust check found (recorded in each imported snapshot's pulled_from). */
  verification?: { status: 'verified' | 'not-required' | 'skipped' | 'unsigned-pack'; signers: string[] };
}

export interface ImportResult {
  tag: string;
  digest: string;
  /** Tags written by this import, root first. */
  imported: string[];
  /** The first ancestor the store already had (the walk stopped there), if any. */
  reused: string | null;
  /** Whether the image's root filesystem was fetched (false: the store had it). */
  imageFetched: boolean;
}

interface PlannedLink {
  digest: string;
  tag: string;
  config: SnapshotConfig;
  files: DeclaredFile[];
}

export async function importArtifact(layout: HomeLayout, source: BlobSource, reference: string, o: ImportOptions): Promise<ImportResult> {
  const onProgress = o.onProgress ?? noProgress;
  onProgress({ phase: 'resolve', message: `resolving ${o.refText}` });
  const plan: PlannedLink[] = [];
  let reused: string | null = null;
  let ref = reference;
  let headDigest = '';
  for (let depth = 0; ; depth++) {
    if (depth >= OCI_LIMITS.maxChainDepth) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${o.refText}: the chain is deeper than ${OCI_LIMITS.maxChainDepth} links (or loops)`);
    const { bytes, digest } = await source.manifest(ref);
    if (depth === 0) headDigest = digest;
    const what = `${o.refText} link ${digest.slice(0, 19)}`;
    const m = parseArtifactManifest(bytes, what);
    const config = parseSnapshotConfig(await readSmallBlob(source, m.config.digest, m.config.size, `${what} config`), `${what} config`);
    const snap = config.snapshot;
    const tag = depth === 0 && o.tag !== undefined ? assertValidTag(o.tag) : snap.tag;
    if (!isValidTag(snap.tag) || (snap.parent_tag !== null && !isValidTag(snap.parent_tag))) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `${what}: its config names an invalid tag`, { tag: String(snap.tag).slice(0, 80) });
    if (!/^[0-9a-f]{64}$/.test(snap.image.key) || snap.image.key !== config.image.key) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what}: the image key is invalid or disagrees with the image record`);
    const child = plan[plan.length - 1];
    if (child && (child.config.snapshot.parent_tag !== snap.tag || (child.config.snapshot.parent_vmstate_sha256 ?? snap.files.vmstate.sha256) !== snap.files.vmstate.sha256)) {
      throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what}: the parent link is not the snapshot ${child.tag} was made on`);
    }
    const files = declaredFiles(m, config, what);
    checkCompatible(snap, o.host, o.refText);
    const local = await readSnapshot(layout, tag).catch(() => null);
    if (local) {
      if (local.manifest.files.vmstate.sha256 === snap.files.vmstate.sha256) {
        reused = tag;
        break;
      }
      throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} already exists here and is not the one ${o.refText} ${depth === 0 ? 'names' : 'is layered on'} (forkd rmi ${tag}${depth === 0 ? ', or pull with --tag' : ''})`, { tag });
    }
    await freeSnapshotDir(layout, tag);
    plan.push({ digest, tag, config, files });
    const parent = m.annotations[ANNOTATION.parent];
    if (parent === undefined) break;
    ref = parent;
  }
  plan.reverse();
  const head = plan[plan.length - 1];
  if (!head) {
    onProgress({ phase: 'done', message: `${o.refText} is already here as ${reused}`, fraction: 1 });
    return { tag: reused!, digest: headDigest, imported: [], reused, imageFetched: false };
  }
  const total = plan.reduce((s, l) => s + l.files.reduce((t, f) => t + (f.name === ROOTFS_FILE ? 0 : f.blob.size), 0), 0);
  let moved = 0;
  const started = Date.now();
  let lastReport = 0;
  const progress = (n: number) => {
    moved += n;
    const now = Date.now();
    if (now - lastReport < 250 && moved < total) return;
    lastReport = now;
    const rate = moved / 1048576 / Math.max(0.001, (now - started) / 1000);
    onProgress({ phase: 'pull', message: `${mib(moved)}/${mib(total)} MiB (${rate.toFixed(1)} MiB/s)`, fraction: total ? Math.min(1, moved / total) : 1 });
  };
  const root = plan[0]!;
  let image = await readImageInfo(layout, root.config.image.key);
  // A root filesystem this store lacks is staged first and moved into place just before the
  // root link commits: a refused artifact leaves no image behind either.
  let stagedImage: StagedImage | null = null;
  if (!image && root.config.snapshot.parent_tag === null) {
    stagedImage = await stageImage(layout, source, root, o.refText, onProgress);
    image = stagedImage.info;
  }
  if (!image) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `${o.refText} needs image ${root.config.image.key.slice(0, 12)}, which this store lacks`);
  const imported: string[] = [];
  try {
    for (const link of plan) {
      await importLink(layout, source, link, image, o, progress, link === root && stagedImage ? stagedImage.commit : null);
      imported.push(link.tag);
    }
  } finally {
    if (stagedImage) await fs.rm(stagedImage.dir, { recursive: true, force: true });
  }
  const imageFetched = stagedImage !== null;
  onProgress({ phase: 'done', message: `${o.refText} → ${head.tag} (${imported.length} link(s) fetched${reused ? `, ${reused} reused` : ''})`, fraction: 1 });
  return { tag: head.tag, digest: headDigest, imported, reused, imageFetched };
}

async function readSmallBlob(source: BlobSource, digest: string, size: number, what: string): Promise<Buffer> {
  if (size > OCI_LIMITS.maxConfigBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${what} declares ${size} bytes (limit ${OCI_LIMITS.maxConfigBytes})`);
  const c = new DigestCounter(digest, size, what);
  const parts: Buffer[] = [];
  for await (const chunk of source.blob(digest)) {
    c.update(chunk);
    parts.push(Buffer.from(chunk));
  }
  c.check();
  return Buffer.concat(parts);
}

interface StagedImage {
  dir: string;
  info: ImageInfo;
  commit: () => Promise<void>;
}

async function stageImage(layout: HomeLayout, source: BlobSource, root: PlannedLink, refText: string, onProgress: ProgressFn): Promise<StagedImage> {
  const rec = root.config.image;
  let dir: string;
  try {
    dir = imageDir(layout, rec.key);
  } catch {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${refText}: invalid image key`);
  }
  const f = root.files.find((x) => x.name === ROOTFS_FILE)!;
  await fs.mkdir(layout.images, { recursive: true });
  const staging = path.join(layout.images, `${STAGING_PREFIX}${rec.key.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { mode: 0o700 });
  try {
    onProgress({ phase: 'pull', message: `image ${rec.key.slice(0, 12)}: ${mib(f.blob.size)} MiB compressed` });
    let moved = 0;
    await decompressTo(source.blob(f.blob.digest), path.join(staging, ROOTFS_FILE), { blob: f.blob, file: { digest: f.digest, size: f.size }, what: `${refText} ${ROOTFS_FILE}` }, (n) => {
      moved += n;
      if (moved % (32 * 1024 * 1024) < n) onProgress({ phase: 'pull', message: `image: ${mib(moved)}/${mib(f.blob.size)} MiB`, fraction: moved / f.blob.size });
    });
    if (f.size !== rec.disk_mib * 1024 * 1024) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${refText}: the root filesystem is ${f.size} bytes, its record says ${rec.disk_mib} MiB`);
    await fs.chmod(path.join(staging, ROOTFS_FILE), 0o444);
    const info: ImageInfo = { ...rec, path: path.join(dir, ROOTFS_FILE) };
    await writeFileAtomic(path.join(staging, 'image.json'), JSON.stringify(info, null, 2));
    const commit = async () => {
      try {
        await fs.rename(staging, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        // Another pull installed the same image meanwhile: the caller removes our copy.
      }
    };
    return { dir: staging, info, commit };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

async function importLink(layout: HomeLayout, source: BlobSource, link: PlannedLink, image: ImageInfo, o: ImportOptions, progress: (n: number) => void, beforeCommit: (() => Promise<void>) | null): Promise<void> {
  const finalDir = await freeSnapshotDir(layout, link.tag);
  const snap = link.config.snapshot;
  await inStaging(layout, link.tag, async (staging) => {
    for (const f of link.files) {
      if (f.name === ROOTFS_FILE) continue;
      await decompressTo(source.blob(f.blob.digest), path.join(staging, f.name), { blob: f.blob, file: { digest: f.digest, size: f.size }, what: `${o.refText} ${link.tag}/${f.name}` }, progress);
    }
    const ram = snap.machine.mem_mib * 1024 * 1024;
    const memName = snap.files.memory.name;
    const memSize = (await fs.stat(path.join(staging, memName))).size;
    if (memSize !== ram) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${o.refText}: ${memName} is ${memSize} bytes for a ${snap.machine.mem_mib} MiB guest`);
    if (snap.files.pages && (await fs.stat(path.join(staging, 'memory.pages'))).size !== Math.ceil(ram / PAGE_SIZE / 8)) {
      throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${o.refText}: memory.pages does not cover the guest's RAM`);
    }
    // The disk layer's backing is this store's, never the artifact's.
    const backing = snap.parent_tag === null ? path.relative(staging, image.path) : path.join('..', snap.parent_tag, 'disk.qcow2');
    await checkDiskLayer(path.join(staging, 'disk.qcow2'), image, o.refText);
    await runTool('qemu-img', ['rebase', '-u', '-b', backing, '-F', snap.parent_tag === null ? 'raw' : 'qcow2', '-f', 'qcow2', path.join(staging, 'disk.qcow2')]);
    if (memName === 'memory.bin') await sealForJail(path.join(staging, 'memory.bin'));
    else for (const n of ['memory.layer', 'memory.pages']) await fs.chmod(path.join(staging, n), 0o400);
    await sealForJail(path.join(staging, 'vmstate'), 0o600);
    await sealForJail(path.join(staging, 'disk.qcow2'), 0o440);
    const { pulled_from: _theirs, ...ownFields } = snap; // an incoming claim of provenance is ignored
    const manifest: SnapshotManifest = {
      ...ownFields,
      tag: link.tag,
      pulled_from: { ref: o.refText, digest: link.digest, verification: o.verification?.status ?? 'unsigned-pack', signers: o.verification?.signers ?? [], at: new Date().toISOString() },
      kernel: { ...snap.kernel, path: o.host.kernelPath },
      image: { ...snap.image, path: image.path },
      files: {
        ...snap.files,
        memory: { ...snap.files.memory, physical_bytes: await allocatedBytes(path.join(staging, memName)) },
        disk: { ...snap.files.disk, backing, physical_bytes: await allocatedBytes(path.join(staging, 'disk.qcow2')) },
      },
    };
    await beforeCommit?.();
    await commitStaging(staging, finalDir, manifest);
  });
  if (!(await exists(snapshotDir(layout, link.tag)))) throw new ForkdError('FORKD_E_INTERNAL', `snapshot ${link.tag} did not land`);
}

/**
 * A disk layer from elsewhere is opened by QEMU: it must be a plain qcow2 (no external data file,
 * whose path would be the artifact's choice) no larger than the image it sits on. Its backing name
 * is replaced by the caller; qemu-img info does not open backing files.
 */
async function checkDiskLayer(file: string, image: ImageInfo, refText: string): Promise<void> {
  let info: { format?: string; 'virtual-size'?: number; 'format-specific'?: { data?: Record<string, unknown> } };
  try {
    info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', '-f', 'qcow2', file])).stdout);
  } catch (e) {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${refText}: disk.qcow2 is not a qcow2 image`, undefined, { cause: e });
  }
  const data = info['format-specific']?.data ?? {};
  if (info.format !== 'qcow2' || 'data-file' in data) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${refText}: disk.qcow2 uses an external data file or is not qcow2`);
  if ((info['virtual-size'] ?? Infinity) > image.disk_mib * 1024 * 1024) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${refText}: disk.qcow2 is larger than its image`);
}

function mib(n: number): string {
  return (n / 1048576).toFixed(0);
}
