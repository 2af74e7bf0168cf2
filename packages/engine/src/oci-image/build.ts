/**
 * `forkd image from-oci`: an OCI image (registry, layout directory, docker save archive) becomes
 * a forkd image without Docker: its layers applied in order (whiteouts, ownership, modes, xattrs,
 * hard links) to a tree in the store's staging area, the agent's own runtime added at /.forkd, then
 * mkfs.ext4 -d. Only a whole, verified image is renamed into place; a failure leaves nothing.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { type HomeLayout, imageDir, STAGING_PREFIX } from '../home/paths.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { writeFileAtomic, sha256 } from '../util/fsx.js';
import { stagingOwnerSuffix } from '../util/staging.js';
import { runTool } from '../qemu/tools.js';
import { DigestCounter } from '../oci/digest.js';
import { agentFiles, agentRootfs, type ImageInfo, readImageInfo } from '../image/build.js';
import { GUEST_HOSTS, GUEST_RESOLV_CONF } from '../image/guest-init.js';
import { GUEST_HELPERS } from '../image/guest-helpers.js';
import { readLayerTar } from './layer-tar.js';
import { RootfsTree } from './rootfs-tree.js';
import { installRuntime, runtimeInitScript, IMAGE_CONFIG_FILE } from './runtime.js';
import { resolveImage, type BlobDescriptor, type ImageSource } from './source.js';

/** Bump when the way OCI images are assembled changes. */
const OCI_BUILDER_VERSION = 1;
export const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const ImageConfigDoc = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  config: z.object({ Env: z.array(z.string().max(65536)).max(1024).nullish(), WorkingDir: z.string().max(4096).nullish(), User: z.string().max(256).nullish() }).passthrough().nullish(),
  rootfs: z.object({ diff_ids: z.array(z.string()).max(512) }).passthrough().optional(),
}).passthrough();

/** What the agent applies to commands in this image (written to /.forkd/image.json). */
export interface ImageRuntimeConfig {
  env: Record<string, string>;
  workdir: string | null;
  user: string | null;
}

export interface FromOciOptions {
  name: string;
  diskMib?: number;
  onProgress?: ProgressFn;
}

function layerCodec(mediaType: string, raw: boolean): 'tar' | 'gzip' | 'zstd' {
  if (raw) return 'tar';
  if (/\.tar\+gzip$|\.tar\.gzip$|rootfs\.diff\.tar\.gzip$/.test(mediaType)) return 'gzip';
  if (/\.tar\+zstd$/.test(mediaType)) return 'zstd';
  if (/\.tar$/.test(mediaType)) return 'tar';
  throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `unknown layer media type ${JSON.stringify(mediaType)}`, { media_type: mediaType });
}

async function* counted(src: AsyncIterable<Uint8Array>, counter: DigestCounter): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    counter.update(c);
    yield c;
  }
  counter.check();
}

function decompress(src: AsyncIterable<Uint8Array>, codec: 'tar' | 'gzip' | 'zstd'): AsyncIterable<Uint8Array> {
  if (codec === 'tar') return src;
  if (codec === 'gzip') return Readable.from(src).pipe(createGunzip());
  const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const input = Readable.from(src);
  input.on('error', (e) => child.stdout.destroy(e));
  input.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.on('exit', (code) => {
    if (code !== 0) child.stdout.destroy(new ForkdError('FORKD_E_ARTIFACT_INVALID', `a zstd layer does not decompress (zstd exit ${code})`));
  });
  return child.stdout;
}

/** Hashes the uncompressed tar (the config's diff_id) while the reader consumes it. */
async function* diffHashed(src: AsyncIterable<Uint8Array>, expected: string | undefined, what: string): AsyncGenerator<Uint8Array> {
  const h = crypto.createHash('sha256');
  for await (const c of src) {
    h.update(c);
    yield c;
  }
  const got = `sha256:${h.digest('hex')}`;
  if (expected !== undefined && got !== expected) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `${what}: the uncompressed layer has digest ${got}, the config says ${expected}`, { expected, got });
}

export function runtimeConfigOf(env: string[] | null | undefined, workdir: string | null | undefined, user: string | null | undefined): ImageRuntimeConfig {
  const out: Record<string, string> = {};
  for (const kv of env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(kv.slice(0, eq))) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { env: out, workdir: workdir && workdir.startsWith('/') ? workdir : null, user: user ? user : null };
}

/** The forkd image made from an OCI image, cached by its manifest digest, disk size and the agent. */
export async function imageFromOci(layout: HomeLayout, src: ImageSource, reference: string | null, o: FromOciOptions): Promise<ImageInfo & { cached: boolean }> {
  const onProgress = o.onProgress ?? noProgress;
  if (!IMAGE_NAME.test(o.name)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid image name ${JSON.stringify(o.name)} (lowercase letters, digits, . _ -)`);
  const diskMib = o.diskMib ?? 1024;
  onProgress({ phase: 'image', message: `resolving ${src.describe}` });
  const img = await resolveImage(src, reference);
  const files = await agentFiles();
  const agentSha = sha256(JSON.stringify(files.map((f) => [f.name, sha256(f.data)])));
  const key = sha256(JSON.stringify({ v: OCI_BUILDER_VERSION, manifest: img.manifestDigest, disk: diskMib, agentSha, init: runtimeInitScript(), helpers: GUEST_HELPERS, hosts: GUEST_HOSTS, resolv: GUEST_RESOLV_CONF, name: o.name }));
  const cachedInfo = await readImageInfo(layout, key);
  if (cachedInfo) {
    onProgress({ phase: 'image', message: `image ${o.name} (${img.manifestDigest.slice(0, 19)}) is cached`, fraction: 1 });
    return { ...cachedInfo, cached: true };
  }
  const started = Date.now();
  const configBytes = await readBlob(src, img.config, OCI_LIMITS.maxConfigBytes);
  let rawConfig: unknown;
  try {
    rawConfig = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `the image config of ${src.describe} is not JSON`);
  }
  const parsed = ImageConfigDoc.safeParse(rawConfig);
  if (!parsed.success) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `the image config of ${src.describe} is malformed`);
  const cfg = parsed.data;
  if ((cfg.os && cfg.os !== 'linux') || (cfg.architecture && cfg.architecture !== 'amd64')) {
    throw new ForkdError('FORKD_E_IMAGE_PLATFORM', `${src.describe} is ${cfg.os}/${cfg.architecture}; forkd guests are linux/amd64`, { platforms: [`${cfg.os}/${cfg.architecture}`] });
  }
  const diffIds = cfg.rootfs?.diff_ids;
  if (diffIds && diffIds.length !== img.layers.length) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${src.describe}: ${img.layers.length} layers but ${diffIds.length} diff_ids`);
  const debianRootfs = await agentRootfs(layout, onProgress);
  await fs.mkdir(layout.images, { recursive: true });
  const staging = path.join(layout.images, `${STAGING_PREFIX}oci-${key.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true });
  try {
    const treeDir = path.join(staging, 'rootfs');
    await fs.mkdir(treeDir, { mode: 0o755 });
    const tree = new RootfsTree(treeDir, diskMib * 1024 * 1024);
    for (const [i, layer] of img.layers.entries()) {
      onProgress({ phase: 'layers', message: `layer ${i + 1}/${img.layers.length} ${layer.digest.slice(7, 19)} (${(layer.size / 1048576).toFixed(1)} MiB)`, fraction: i / img.layers.length });
      tree.startLayer();
      const compressed = counted(src.blob(layer.digest), new DigestCounter(layer.digest, layer.size, `layer ${layer.digest}`));
      const tar = diffHashed(decompress(compressed, layerCodec(layer.mediaType, src.rawLayers === true)), diffIds?.[i], `layer ${i + 1}`);
      await readLayerTar(tar, (e, data) => tree.apply(e, data));
    }
    onProgress({ phase: 'image', message: 'adding the agent runtime (/.forkd)' });
    await installRuntime(treeDir, debianRootfs, files);
    const runtimeConfig = runtimeConfigOf(cfg.config?.Env, cfg.config?.WorkingDir, cfg.config?.User);
    await fs.writeFile(path.join(treeDir, IMAGE_CONFIG_FILE), JSON.stringify(runtimeConfig), { mode: 0o644 });
    await tree.writeFile(['etc', 'hosts'], GUEST_HOSTS);
    await tree.writeFile(['etc', 'resolv.conf'], GUEST_RESOLV_CONF);
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'root']) await fs.mkdir(path.join(treeDir, d), { recursive: true }).catch(() => undefined);
    const imagePath = path.join(staging, 'rootfs.ext4');
    onProgress({ phase: 'image', message: `mkfs.ext4 (${diskMib} MiB)` });
    try {
      await runTool('mkfs.ext4', ['-q', '-F', '-L', 'forkd-root', '-m', '0', '-E', 'root_owner=0:0', '-d', treeDir, imagePath, `${diskMib}M`]);
    } catch (e) {
      throw new ForkdError('FORKD_E_IMAGE_TOO_LARGE', `the image does not fit a ${diskMib} MiB disk (mkfs.ext4 failed: ${(e as Error).message.slice(0, 300)})`, { disk_mib: diskMib }, { cause: e });
    }
    await fs.rm(treeDir, { recursive: true, force: true });
    const dir = imageDir(layout, key);
    const info: ImageInfo = {
      key,
      recipe: o.name,
      suite: 'oci',
      packages: [],
      disk_mib: diskMib,
      agent_sha256: agentSha,
      created_at: new Date().toISOString(),
      path: path.join(dir, 'rootfs.ext4'),
      build_ms: Date.now() - started,
      oci: { ref: src.describe, manifest_digest: img.manifestDigest, layers: img.layers.length, skipped_devices: tree.stats.skippedDevices, xattrs_skipped: tree.stats.xattrsSkipped },
    };
    await fs.chmod(imagePath, 0o444);
    await writeFileAtomic(path.join(staging, 'image.json'), JSON.stringify(info, null, 2));
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(staging, dir);
    onProgress({ phase: 'image', message: `image ${o.name} built in ${((Date.now() - started) / 1000).toFixed(1)} s`, fraction: 1 });
    return { ...info, cached: false };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

async function readBlob(src: ImageSource, d: BlobDescriptor, cap: number): Promise<Buffer> {
  if (d.size > cap) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `blob ${d.digest} is ${d.size} bytes (limit ${cap})`);
  const counter = new DigestCounter(d.digest, d.size, `blob ${d.digest}`);
  const parts: Buffer[] = [];
  for await (const c of src.blob(d.digest)) {
    counter.update(c);
    parts.push(Buffer.from(c));
  }
  counter.check();
  return Buffer.concat(parts);
}
