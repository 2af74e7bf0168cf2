/**
 * Where an OCI image comes from: a registry reference, an OCI image layout directory, or a
 * `docker save` archive. Each gives the chosen linux/amd64 manifest, its config and its layers
 * as blobs named by digest; every byte is checked against its digest by the reader (build.ts).
 */
import { promises as fs, createReadStream } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { RegistryClient, type RegistryClientOptions } from '../oci/registry.js';
import { parseReference, isDigest } from '../oci/reference.js';
import { sha256Digest } from '../oci/digest.js';
import { fileChunks } from '../oci/codec.js';
import { readLayerTar } from './layer-tar.js';
import { nameComponents } from './rootfs-tree.js';

export const IMAGE_MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
const ACCEPT = Object.values(IMAGE_MEDIA).join(', ');

const Descriptor = z.object({ mediaType: z.string().max(256), digest: z.string().refine(isDigest, 'not a sha256 digest'), size: z.number().int().nonnegative(), platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).passthrough().optional() }).passthrough();
const IndexDoc = z.object({ mediaType: z.string().optional(), manifests: z.array(Descriptor).max(1024) }).passthrough();
const ManifestDoc = z.object({ mediaType: z.string().optional(), config: Descriptor, layers: z.array(Descriptor).max(512) }).passthrough();
export type BlobDescriptor = z.output<typeof Descriptor>;

export interface ImageSource {
  describe: string;
  /** The top document (a tag's manifest or index), then manifests by digest. */
  document(reference: string | null): Promise<{ bytes: Buffer; digest: string; mediaType: string }>;
  blob(digest: string): AsyncIterable<Uint8Array>;
  /** Layers whose blob is the uncompressed tar whatever the manifest says (docker save's layer.tar). */
  readonly rawLayers?: boolean;
}

export interface ResolvedImage {
  manifestDigest: string;
  config: BlobDescriptor;
  layers: BlobDescriptor[];
}

function parseJson<T>(schema: z.ZodType<T>, bytes: Buffer, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what} is not JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what} is malformed: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

function kindOf(mediaType: string, bytes: Buffer): 'index' | 'manifest' | 'unknown' {
  let mt = mediaType;
  if (!mt || mt === 'application/json' || mt === 'application/octet-stream') {
    try {
      const d = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown; layers?: unknown };
      mt = d.mediaType ?? (d.manifests ? IMAGE_MEDIA.ociIndex : d.layers ? IMAGE_MEDIA.ociManifest : '');
    } catch {
      return 'unknown';
    }
  }
  if (mt === IMAGE_MEDIA.ociIndex || mt === IMAGE_MEDIA.dockerList) return 'index';
  if (mt === IMAGE_MEDIA.ociManifest || mt === IMAGE_MEDIA.dockerManifest) return 'manifest';
  return 'unknown';
}

/** The linux/amd64 image manifest behind a reference (through an index when there is one). */
export async function resolveImage(src: ImageSource, reference: string | null): Promise<ResolvedImage> {
  let doc = await src.document(reference);
  let kind = kindOf(doc.mediaType, doc.bytes);
  if (kind === 'index') {
    const index = parseJson(IndexDoc, doc.bytes, `the index of ${src.describe}`);
    const platforms = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : 'unknown'));
    const pick = index.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? (index.manifests.length === 1 && !index.manifests[0]!.platform ? index.manifests[0] : undefined);
    if (!pick) throw new ForkdError('FORKD_E_IMAGE_PLATFORM', `${src.describe} has no linux/amd64 image (it has ${platforms.join(', ') || 'none'}); forkd guests are linux/amd64`, { platforms });
    doc = await src.document(pick.digest);
    kind = kindOf(doc.mediaType || pick.mediaType, doc.bytes);
  }
  if (kind !== 'manifest') throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${src.describe}: unknown manifest type ${JSON.stringify(doc.mediaType || 'none')} (expected an OCI or Docker v2 image manifest)`, { media_type: doc.mediaType });
  const m = parseJson(ManifestDoc, doc.bytes, `the manifest of ${src.describe}`);
  return { manifestDigest: doc.digest, config: m.config, layers: m.layers };
}

export function registrySource(refText: string, opts: RegistryClientOptions = {}): ImageSource {
  const ref = parseReference(refText);
  const client = new RegistryClient(ref.registry, opts);
  return {
    describe: refText,
    async document(reference) {
      return client.manifest(ref.repository, reference ?? ref.reference, ACCEPT);
    },
    blob: (d) => client.blob(ref.repository, d),
  };
}

async function readCappedFile(p: string, cap: number, what: string): Promise<Buffer> {
  const st = await fs.stat(p).catch(() => null);
  if (!st?.isFile()) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what} is missing`);
  if (st.size > cap) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${what} is ${st.size} bytes (limit ${cap})`);
  return fs.readFile(p);
}

/** An OCI image layout directory: index.json, then blobs/sha256/<hex>. */
export function layoutDirSource(dir: string): ImageSource {
  const blobPath = (d: string) => {
    if (!isDigest(d)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `not a digest: ${d.slice(0, 80)}`);
    return path.join(dir, 'blobs', 'sha256', d.slice(7));
  };
  return {
    describe: dir,
    async document(reference) {
      if (reference === null) {
        const bytes = await readCappedFile(path.join(dir, 'index.json'), OCI_LIMITS.maxManifestBytes, `${dir}/index.json`);
        return { bytes, digest: sha256Digest(bytes), mediaType: IMAGE_MEDIA.ociIndex };
      }
      const bytes = await readCappedFile(blobPath(reference), OCI_LIMITS.maxManifestBytes, `manifest ${reference}`);
      const digest = sha256Digest(bytes);
      if (digest !== reference) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `manifest ${reference} has digest ${digest}`, { expected: reference, got: digest });
      return { bytes, digest, mediaType: '' };
    },
    async *blob(digest) {
      const p = blobPath(digest);
      if (!(await fs.stat(p).catch(() => null))) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${dir} lacks blob ${digest}`, { digest });
      yield* fileChunks(p);
    },
  };
}

const DockerSaveManifest = z.array(z.object({ Config: z.string().max(4096), Layers: z.array(z.string().max(4096)).max(512) }).passthrough()).min(1);

/**
 * A `docker save` archive, unpacked (regular files only, names checked) into staging: an OCI
 * layout when it has one (Docker 25+), else its manifest.json, whose config and layer.tar files
 * are presented as blobs named by their sha256 (the config's diff_ids then check the layers).
 */
export async function dockerArchiveSource(file: string, staging: string): Promise<ImageSource> {
  const files = new Map<string, string>();
  let n = 0;
  await readLayerTar(createReadStream(file), async (e, data) => {
    if (++n > OCI_LIMITS.maxPackEntries) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${file} has more than ${OCI_LIMITS.maxPackEntries} entries`);
    const parts = nameComponents(e.name);
    if (e.type === 'dir' || parts.length === 0) return;
    const key = parts.join('/');
    if (e.type === 'symlink' || e.type === 'hardlink') {
      // docker save links repeated layers to the first copy
      const target = e.type === 'symlink' ? nameComponents(path.posix.join(path.posix.dirname(key), e.linkname)).join('/') : nameComponents(e.linkname).join('/');
      const existing = files.get(target);
      if (!existing) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file}: ${key} links to ${target}, which comes later or not at all`);
      files.set(key, existing);
      return;
    }
    if (e.type !== 'file') throw new ForkdError('FORKD_E_ARTIFACT_ENTRY_TYPE', `${file}: ${key} is a ${e.type}`);
    if (files.has(key)) throw new ForkdError('FORKD_E_ARTIFACT_DUPLICATE', `${file} has ${key} twice`);
    const out = path.join(staging, `f${n}`);
    const fh = await fs.open(out, 'wx', 0o600);
    try {
      for await (const c of data) await fh.write(c);
    } finally {
      await fh.close();
    }
    files.set(key, out);
  });
  if (files.has('index.json') && [...files.keys()].some((k) => k.startsWith('blobs/sha256/'))) {
    return {
      describe: file,
      async document(reference) {
        const p = files.get(reference === null ? 'index.json' : `blobs/sha256/${reference.slice(7)}`);
        if (!p) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file} lacks ${reference ?? 'index.json'}`);
        const bytes = await readCappedFile(p, OCI_LIMITS.maxManifestBytes, `${reference ?? 'index.json'} in ${file}`);
        const digest = sha256Digest(bytes);
        if (reference !== null && digest !== reference) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `manifest ${reference} has digest ${digest}`);
        return { bytes, digest, mediaType: reference === null ? IMAGE_MEDIA.ociIndex : '' };
      },
      async *blob(digest) {
        const p = isDigest(digest) ? files.get(`blobs/sha256/${digest.slice(7)}`) : undefined;
        if (!p) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file} lacks blob ${digest}`);
        yield* fileChunks(p);
      },
    };
  }
  const mp = files.get('manifest.json');
  if (!mp) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file} is neither an OCI layout nor a docker save archive (no index.json, no manifest.json)`);
  const entry = parseJson(DockerSaveManifest, await readCappedFile(mp, OCI_LIMITS.maxManifestBytes, 'manifest.json'), `${file}'s manifest.json`)[0]!;
  const byDigest = new Map<string, string>();
  const describeFile = async (name: string, mediaType: string): Promise<BlobDescriptor> => {
    const p = files.get(nameComponents(name).join('/'));
    if (!p) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file} lacks ${name}`);
    const digest = await sha256File(p);
    byDigest.set(digest, p);
    return { mediaType, digest, size: (await fs.stat(p)).size };
  };
  const config = await describeFile(entry.Config, 'application/vnd.docker.container.image.v1+json');
  const layers: BlobDescriptor[] = [];
  for (const l of entry.Layers) layers.push(await describeFile(l, 'application/vnd.docker.image.rootfs.diff.tar'));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: IMAGE_MEDIA.dockerManifest, config, layers }));
  return {
    describe: file,
    rawLayers: true,
    async document() {
      return { bytes: manifest, digest: sha256Digest(manifest), mediaType: IMAGE_MEDIA.dockerManifest };
    },
    async *blob(digest) {
      const p = byDigest.get(digest);
      if (!p) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${file} lacks blob ${digest}`);
      yield* fileChunks(p);
    },
  };
}

async function sha256File(p: string): Promise<string> {
  const h = (await import('node:crypto')).createHash('sha256');
  for await (const c of fileChunks(p)) h.update(c);
  return `sha256:${h.digest('hex')}`;
}
